from django.urls import path

from sandbox.views import (
    crm,
    crm_api,
    pins,
    provider_fakes_alipay,
    provider_fakes_wechatpay,
    providers,
    smp,
    sms_gateway,
    subscriptions,
)

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
    path("sms/api/messages", sms_gateway.messages, name="sms-api-messages"),
    path("crm/api/activities", crm_api.activities, name="crm-api-activities"),
    path("crm/api/activities/reverse", crm_api.reverse, name="crm-api-reverse"),
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
    path("wechatpay/contracts/terminate/", providers.wechatpay_contract_terminate, name="wechatpay-terminate"),
    path("alipay/contracts/terminate/", providers.alipay_contract_terminate, name="alipay-terminate"),
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
    path(
        f"{WECHATPAY_FAKE}/papay/contracts/<str:contract_id>/notify",
        provider_fakes_wechatpay.deduct_notice,
        name="wechatpay-fake-deduct-notice",
    ),
    # WeChat Pay APIv2 (委托代扣's pay and sign, deduction and termination): below the gateway, without /v3.
    path(
        "wechatpay/fake/pay/contractorder", provider_fakes_wechatpay.contract_order, name="wechatpay-fake-contractorder"
    ),
    path("wechatpay/fake/pay/pappayapply", provider_fakes_wechatpay.pappay_apply, name="wechatpay-fake-pappayapply"),
    path(
        "wechatpay/fake/pay/paporderquery",
        provider_fakes_wechatpay.pap_order_query,
        name="wechatpay-fake-paporderquery",
    ),
    path(
        "wechatpay/fake/papay/deletecontract",
        provider_fakes_wechatpay.delete_contract,
        name="wechatpay-fake-deletecontract",
    ),
    path("alipay/fake/gateway.do", provider_fakes_alipay.gateway, name="alipay-fake-gateway"),
]
