"""Admin's lists show a customer's mobile number masked (PIPL: shown only as far as needed; review of 2026-12-07).

The orders' and subscriptions' lists did (138****0001); the SMS confirmations' and SMS replies' lists showed the
whole number in a column, to anyone who may view them. The whole number stays where one record is opened, and a
search by the whole number still finds its rows.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from billing.models import SmsConfirmation, SmsInbound
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db
PHONE, MASKED = "13800000001", "138****0001"


@pytest.fixture
def viewer() -> Client:
    """A staff member who may view the SMS records and nothing of the money."""
    user = get_user_model().objects.create_user("sms-viewer", password="unused-password-1", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_smsconfirmation", "view_smsinbound"], content_type__app_label="billing"
        )
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reply() -> SmsInbound:
    confirmation = SmsConfirmation.objects.create(
        order=OrderFactory(phone=PHONE), phone=PHONE, text="Reply Y", expires_at=timezone.now(), status="confirmed"
    )
    return SmsInbound.objects.create(
        digest="0" * 64,
        sender=PHONE,
        text="Y",
        received_at=timezone.now(),
        confirmation=confirmation,
        outcome="confirmed",
    )


@pytest.mark.parametrize("path", ["/admin/billing/smsconfirmation/", "/admin/billing/smsinbound/"])
def test_the_sms_lists_show_the_number_masked(viewer, reply, path):
    listed = viewer.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert listed.status_code == 200
    text = listed.content.decode()
    assert MASKED in text and PHONE not in text

    found = viewer.get(path, {"q": PHONE}, HTTP_ACCEPT_LANGUAGE="en")
    assert found.status_code == 200
    assert MASKED in found.content.decode()  # the whole number still finds its row
    assert "0 results" not in found.content.decode()


def test_one_record_shows_the_whole_number(viewer, reply):
    opened = viewer.get(f"/admin/billing/smsinbound/{reply.pk}/change/", HTTP_ACCEPT_LANGUAGE="en")
    assert opened.status_code == 200
    assert PHONE in opened.content.decode()
