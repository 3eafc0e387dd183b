from django.urls import path

from callbacks import views

app_name = "callbacks"

urlpatterns = [
    path("notify/wechatpay/", views.wechatpay_notify, name="notify-wechatpay"),
    path("notify/alipay/", views.alipay_notify, name="notify-alipay"),
    # WeChat Pay 委托代扣 (APIv2): the pay-and-sign order's payment, and the contract's signing and end.
    path("notify/wechatpay/v2/", views.wechatpay_v2_notify, name="notify-wechatpay-v2"),
    path("notify/wechatpay/contract/", views.wechatpay_contract_notify, name="notify-wechatpay-contract"),
]
