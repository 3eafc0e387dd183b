"""Deployment checks of our own (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def production_openings(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    found = []
    if settings.PRODUCTION and not settings.METRICS_TOKEN:
        found.append(
            Warning(
                "METRICS_TOKEN is not set: /metrics/ answers 404 until it is (Prometheus then sends it as a "
                "bearer token).",
                id="ipvas.W001",
            )
        )
    if settings.PRODUCTION and not settings.ADMIN_REQUIRE_MFA:
        found.append(Warning("ADMIN_REQUIRE_MFA is off: staff reach admin with a password alone.", id="ipvas.W002"))
    return found
