from django.urls import path

from channels_crm import payment_code_views, pin_views, subscription_views, views

app_name = "crm"

urlpatterns = [
    path("sso/", views.sso, name="sso"),
    path("", views.order_new, name="home"),
    path("orders/new/", views.order_new, name="order-new"),
    path("orders/", views.history, name="history"),
    path("orders/<str:order_no>/", views.order_detail, name="order"),
    path("orders/<str:order_no>/status.json", views.order_status, name="order-status"),
    path("orders/<str:order_no>/pay/", views.order_pay, name="order-pay"),
    path("orders/<str:order_no>/pay-code/", payment_code_views.order_pay_code, name="order-pay-code"),
    path("orders/<str:order_no>/cancel/", views.order_cancel_view, name="order-cancel"),
    path("orders/<str:order_no>/qr.png", views.order_qr, name="order-qr"),
    path("orders/<str:order_no>/receipt/", views.order_receipt, name="order-receipt"),
    path("subscriptions/", subscription_views.subscriptions, name="subscriptions"),
    path("purchase-pin/", pin_views.purchase_pin, name="purchase-pin"),
    path(
        "subscriptions/<str:subscription_no>/cancel/",
        subscription_views.subscription_cancel_view,
        name="subscription-cancel",
    ),
]
