"""EPG clients in admin: revoking a key is confirmed, because it stops the EPG at once and cannot be undone."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from epg_api.models import EpgClient
from tests.epg_api.support import Api

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def admin() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("keys-admin", email="", password="unused-pw-1"))
    return client


def change(admin: Client, client: EpgClient, **fields: str):  # type: ignore[no-untyped-def]
    form = {"name": client.name, "tv_frame_origins": "", "expiry_date_0": "", "expiry_date_1": "", **fields}
    return admin.post(f"/admin/epg_api/epgclient/{client.prefix}/change/", form, **EN)


def test_revoking_a_key_without_its_confirmation_changes_nothing(admin, demo):
    client, key = EpgClient.objects.create_key(name="vendor")

    answer = change(admin, client, revoked="on")

    assert answer.status_code == 200
    assert "Tick this too to revoke the key: it cannot be undone." in answer.content.decode()
    client.refresh_from_db()
    assert client.revoked is False
    assert Api(key).products().status_code == 200


def test_revoking_a_key_with_its_confirmation_stops_it_at_once(admin, demo):
    client, key = EpgClient.objects.create_key(name="vendor")
    page = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/change/", **EN).content.decode()
    assert "cannot be restored" in page

    answer = change(admin, client, revoked="on", confirm_revoke="on")

    assert answer.status_code == 302
    client.refresh_from_db()
    assert client.revoked is True
    assert Api(key).products().status_code == 401
    page = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/change/", **EN).content.decode()
    assert 'name="confirm_revoke"' not in page  # nothing left to confirm


def test_changing_a_keys_name_needs_no_confirmation(admin, demo):
    client, _key = EpgClient.objects.create_key(name="vendor")

    assert change(admin, client, name="vendor B").status_code == 302
    client.refresh_from_db()
    assert (client.name, client.revoked) == ("vendor B", False)
