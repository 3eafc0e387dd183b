from django.urls import path

from sandbox.views import providers, smp

app_name = "sandbox"

urlpatterns = [
    path("smp/api/precheck", smp.precheck, name="smp-precheck"),
    path("smp/api/subscribe", smp.subscribe, name="smp-subscribe"),
    path("smp/api/authorize", smp.authorize, name="smp-authorize"),
    path("smp/api/unsubscribe", smp.unsubscribe, name="smp-unsubscribe"),
    path("smp/faults/", smp.set_faults, name="smp-faults"),
    path("wechatpay/pay/", providers.wechatpay_pay, name="wechatpay-pay"),
    path("alipay/pay/", providers.alipay_pay, name="alipay-pay"),
    path("sms/reply/", providers.sms_reply, name="sms-reply"),
    path("sms/outbox/", providers.sms_outbox, name="sms-outbox"),
]
