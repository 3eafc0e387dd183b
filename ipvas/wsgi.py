import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipvas.settings")
django.setup(set_prefix=False)  # as django.core.wsgi.get_wsgi_application does

from ipvas.handlers import LeanPathsHandler  # noqa: E402 - Django must be set up first

# The entitlement check, the set-top box's hot path, skips the middleware that has nothing to do with an
# API-key GET: sessions, CSRF, users, messages, admin's second factor, static files, and django-prometheus's
# per-request metrics (ipvas/handlers.py; docs/decisions.md, issue #17).
LEAN_PATHS = ["/api/epg/v1/entitlements/"]
LEAN_PATHS_SKIP = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "ipvas.mfa.AdminSecondFactorMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

application = LeanPathsHandler(paths=LEAN_PATHS, skip=LEAN_PATHS_SKIP)
