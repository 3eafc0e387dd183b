"""Shared set-up of the security suite (issue #6, points 5-8)."""

from __future__ import annotations

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.contrib.auth import get_user_model
from django.test import Client

from tests import quick
from tests.epg_api.support import Api, new_api_key

ADMIN_NAME = "sec-admin"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture(autouse=True)
def _quick(monkeypatch, settings):
    """Speed only, behaviour unchanged: Celery's Django fix-up runs django.setup() (which configures
    logging afresh) and every system check each time run_due_tasks imports the task modules, where a
    worker does it once at start; no static-file scan for every new test client; and the partners'
    public keys configured as production configures them instead of derived from the sandbox's
    private keys on every call."""
    quick.speed_up(monkeypatch, settings)
    monkeypatch.setattr(DjangoWorkerFixup, "django_setup", lambda self: None)
    settings.CRM_SSO_PUBLIC_KEY = quick.public_pem("crm_sso_private_key.pem")


@pytest.fixture
def api(demo) -> Api:
    """An EPG vendor with a fresh key, over the demo data."""
    return Api(new_api_key("EPG security tests"))


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser(ADMIN_NAME, email="", password="unused-password-1")


@pytest.fixture
def admin(admin_user) -> Client:
    """A superuser signed in to admin."""
    client = Client()
    client.force_login(admin_user)
    return client
