from django.urls import path

from tv import views

app_name = "tv"

urlpatterns = [
    path("launch/<str:token>/", views.launch, name="launch"),
    path("", views.home, name="home"),
    path("products/<str:code>/", views.product, name="product"),
    path("products/<str:code>/order/", views.order_start, name="order-start"),
    path("orders/<str:order_no>/", views.order_page, name="order"),
    path("orders/<str:order_no>/confirm/", views.confirm, name="order-confirm"),
    path("orders/<str:order_no>/back/", views.back, name="order-back"),
    path("orders/<str:order_no>/status.json", views.order_status, name="order-status"),
    path("orders/<str:order_no>/qr.png", views.order_qr, name="order-qr"),
]
