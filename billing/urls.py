from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("notify/wechatpay/", views.wechatpay_notify, name="notify-wechatpay"),
    path("notify/alipay/", views.alipay_notify, name="notify-alipay"),
]
