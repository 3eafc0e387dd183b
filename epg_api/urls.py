from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from epg_api import subscriptions, tv_sessions, views

app_name = "epg_api"

urlpatterns = [
    # First: the entitlement check is nearly all of the traffic, and Django tries the routes in order.
    path("entitlements/", views.entitlements, name="entitlements"),
    # The same URL for the OpenAPI document only, which sees DRF views alone: the route above answers it.
    path("entitlements/", views.EntitlementsDoc.as_view()),
    path("products/", views.ProductListView.as_view(), name="products"),
    path("orders/", views.OrderCreateView.as_view(), name="orders"),
    path("orders/<str:order_no>/", views.OrderDetailView.as_view(), name="order"),
    path("orders/<str:order_no>/payment/", views.OrderPaymentView.as_view(), name="order-payment"),
    path("orders/<str:order_no>/qr.png", views.OrderQrView.as_view(), name="order-qr"),
    path("orders/<str:order_no>/cancel/", views.OrderCancelView.as_view(), name="order-cancel"),
    path("subscriptions/", subscriptions.SubscriptionListView.as_view(), name="subscriptions"),
    path("subscriptions/<str:subscription_no>/", subscriptions.SubscriptionDetailView.as_view(), name="subscription"),
    path(
        "subscriptions/<str:subscription_no>/cancel/",
        subscriptions.SubscriptionCancelView.as_view(),
        name="subscription-cancel",
    ),
    path("tv-sessions/", tv_sessions.TvSessionCreateView.as_view(), name="tv-sessions"),
    path("schema/", SpectacularAPIView.as_view(urlconf="epg_api.urls_schema"), name="schema"),
    # The split view serves its start-up script as a file, so the docs work under our CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="epg_api:schema"), name="docs"),
    # Last: every other address under the prefix is the API's JSON 404 (no HTML, no slash-appending redirect).
    re_path(r"^(?P<path>.+)$", views.unknown_path, name="unknown"),
]
