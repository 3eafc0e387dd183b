from django.urls import path

from callbacks import views

app_name = "callbacks"

urlpatterns = [
    path("notify/wechatpay/", views.wechatpay_notify, name="notify-wechatpay"),
    path("notify/alipay/", views.alipay_notify, name="notify-alipay"),
]
