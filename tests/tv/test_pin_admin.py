"""Purchase PINs in admin (docs/interfaces.md §9): set, change and clear through the audited service; the
audit trail listed, read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orders.models import PurchasePin, PurchasePinEvent

ADMIN = "/admin/orders/purchasepin/"


@pytest.fixture
def admin(db) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("pinadmin", email="", password="unused-password-1"))
    return client


def test_add_change_delete_are_set_change_clear(admin):
    answer = admin.post(f"{ADMIN}add/", {"tv_account": "tv1001", "pin": "1234", "pin_again": "1234"})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    row = PurchasePin.objects.get()
    assert "1234" not in row.pin_hash and (row.set_by_kind, row.set_by_id) == ("admin", "pinadmin")

    page = admin.get(f"{ADMIN}{row.pk}/change/").content.decode()
    assert row.pin_hash not in page and "purchasepinevent/?tv_account=tv1001" in page
    assert admin.post(f"{ADMIN}{row.pk}/change/", {"pin": "5678", "pin_again": "5678"}).status_code == 302
    mismatch = admin.post(f"{ADMIN}{row.pk}/change/", {"pin": "5678", "pin_again": "8765"})
    assert mismatch.status_code == 200 and "errorlist" in mismatch.content.decode()
    assert admin.post(f"{ADMIN}{row.pk}/delete/", {"post": "yes"}).status_code == 302

    assert not PurchasePin.objects.exists()
    assert list(PurchasePinEvent.objects.order_by("at", "pk").values_list("action", "actor_id")) == [
        ("set", "pinadmin"),
        ("changed", "pinadmin"),
        ("cleared", "pinadmin"),
    ]


def test_the_audit_trail_is_listed_and_read_only(admin):
    admin.post(f"{ADMIN}add/", {"tv_account": "tv1001", "pin": "1234", "pin_again": "1234"})
    admin.post(f"{ADMIN}add/", {"tv_account": "tv1002", "pin": "1234", "pin_again": "1234"})

    listing = admin.get("/admin/orders/purchasepinevent/", {"tv_account": "tv1001"})

    assert listing.status_code == 200
    assert [e.tv_account for e in listing.context["cl"].result_list] == ["tv1001"]
    event = PurchasePinEvent.objects.first()
    assert admin.get(f"/admin/orders/purchasepinevent/{event.pk}/delete/").status_code == 403
    assert admin.get("/admin/orders/purchasepinevent/add/").status_code == 403


def test_epg_clients_name_the_origins_that_may_frame_the_tv_pages(admin):
    from epg_api.models import EpgClient

    client, _key = EpgClient.objects.create_key(name="vendor")
    page = admin.get(f"/admin/epg_api/epgclient/{client.pk}/change/").content.decode()
    assert 'name="tv_frame_origins"' in page
