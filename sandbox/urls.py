from django.urls import path

from sandbox.views import crm, pins, provider_fakes_alipay, provider_fakes_wechatpay, providers, smp, subscriptions

app_name = "sandbox"

# WeChat Pay API v3 and Alipay's gateway as the real clients call them (WECHATPAY_GATEWAY,
# ALIPAY_GATEWAY): the WeChat paths below the prefix are exactly the API's.
WECHATPAY_FAKE = "wechatpay/fake/v3"

urlpatterns = [
    path("smp/api/precheck", smp.precheck, name="smp-precheck"),
    path("smp/api/subscribe", smp.subscribe, name="smp-subscribe"),
    path("smp/api/authorize", smp.authorize, name="smp-authorize"),
    path("smp/api/unsubscribe", smp.unsubscribe, name="smp-unsubscribe"),
    path("smp/api/reschedule", smp.reschedule, name="smp-reschedule"),
    path("smp/api/provisioning-list", smp.provisioning_list, name="smp-provisioning-list"),
    path("smp/faults/", smp.set_faults, name="smp-faults"),
    # The same fault modes for every other simulated system (sandbox/faults.py).
    path("wechatpay/faults/", smp.set_faults, {"system": "wechatpay"}, name="wechatpay-faults"),
    path("alipay/faults/", smp.set_faults, {"system": "alipay"}, name="alipay-faults"),
    path("sms/faults/", smp.set_faults, {"system": "sms"}, name="sms-faults"),
    path("crm/faults/", smp.set_faults, {"system": "crm"}, name="crm-faults"),
    path("smp/accounts/<str:tv_account>/", subscriptions.smp_account, name="smp-account"),
    path("accounts/<str:tv_account>/purchase-pin/", pins.purchase_pin, name="purchase-pin"),
    path("subscriptions/<str:subscription_no>/advance/", subscriptions.advance, name="subscription-advance"),
    path("wechatpay/pay/", providers.wechatpay_pay, name="wechatpay-pay"),
    path("alipay/pay/", providers.alipay_pay, name="alipay-pay"),
    path("sms/reply/", providers.sms_reply, name="sms-reply"),
    path("sms/outbox/", providers.sms_outbox, name="sms-outbox"),
    path("crm/launch/", crm.launch, name="crm-launch"),
    path("crm/frame/", crm.frame, name="crm-frame"),
    path(
        f"{WECHATPAY_FAKE}/pay/transactions/native",
        provider_fakes_wechatpay.native_order,
        name="wechatpay-fake-native",
    ),
    path(
        f"{WECHATPAY_FAKE}/pay/transactions/out-trade-no/<str:out_trade_no>",
        provider_fakes_wechatpay.query,
        name="wechatpay-fake-query",
    ),
    path(
        f"{WECHATPAY_FAKE}/pay/transactions/out-trade-no/<str:out_trade_no>/close",
        provider_fakes_wechatpay.close,
        name="wechatpay-fake-close",
    ),
    path(f"{WECHATPAY_FAKE}/pay/transactions/codepay", provider_fakes_wechatpay.codepay, name="wechatpay-fake-codepay"),
    path(
        f"{WECHATPAY_FAKE}/pay/transactions/out-trade-no/<str:out_trade_no>/reverse",
        provider_fakes_wechatpay.reverse,
        name="wechatpay-fake-reverse",
    ),
    path(f"{WECHATPAY_FAKE}/refund/domestic/refunds", provider_fakes_wechatpay.refund, name="wechatpay-fake-refund"),
    path(
        f"{WECHATPAY_FAKE}/refund/domestic/refunds/<str:out_refund_no>",
        provider_fakes_wechatpay.query_refund,
        name="wechatpay-fake-refund-query",
    ),
    path("alipay/fake/gateway.do", provider_fakes_alipay.gateway, name="alipay-fake-gateway"),
]
