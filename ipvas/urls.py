from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from callbacks import views as callbacks_views
from ipvas import views
from ipvas.metrics import metrics_view
from orders.metrics import OrdersCollector

# Admins sign in through django-allauth; with ADMIN_REQUIRE_MFA (on in production) only with TOTP (ipvas/mfa.py).
admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]
admin.site.site_header = "IPVAS"
admin.site.site_title = "IPVAS"

urlpatterns = [
    # First: the EPG API's entitlement check is nearly all of the traffic, and Django tries the routes in order.
    path("api/epg/v1/", include("epg_api.urls")),
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon),
    path("healthz/", views.health, name="health"),
    path("healthz/workers/", views.workers_health, name="health-workers"),
    path("metrics/", metrics_view(OrdersCollector()), name="metrics"),
    path("admin/reports/", include("backoffice.reports.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("billing/", include("callbacks.urls")),  # the notify URLs the providers were given
    path("crm/", include("channels_crm.urls")),
    path("tv/", include("tv.urls")),  # the TV pages the EPG embeds (docs/interfaces.md §9)
    path("sms/inbound/", callbacks_views.sms_inbound, name="sms-inbound"),
    path("sandbox/", include("sandbox.urls")),
]

# What escapes the views is answered in each caller's shape: JSON on the API, the providers' own on the
# notify URLs, 503 with Retry-After when an outside dependency is down (ipvas/answers.py).
handler400 = views.bad_request
handler404 = views.page_not_found
handler500 = views.server_error

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/bare/", views.bench_bare, name="bench-bare"))
