"""EPG clients in admin: revoking a key is confirmed, because it stops the EPG at once and cannot be undone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

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


# --- a new key for the same client (a rotation) ---------------------------------------------------------


def shown_key(answer) -> str:  # type: ignore[no-untyped-def]
    [message] = [str(m) for m in answer.context["messages"] if "shown this once" in str(m)]
    return message.split(" is: ")[1].split(" — ")[0]


def test_a_new_key_is_issued_on_the_clients_page_shown_once_and_the_old_key_expires(admin, demo, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    client, key = EpgClient.objects.create_key(name="vendor")
    order = Api(key).create("tv1001", "VIP-MONTH").json()
    page = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/change/", **EN).content.decode()
    assert f'href="/admin/epg_api/epgclient/{client.prefix}/new-key/"' in page
    form = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/new-key/", **EN).content.decode()
    assert 'name="old_expires_in_days"' in form and 'value="7"' in form
    chinese = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/new-key/").content.decode()
    assert "旧密钥继续可用（天）" in chinese and 'value="签发新密钥"' in chinese
    assert "该接入方的密钥" in admin.get(f"/admin/epg_api/epgclient/{client.prefix}/change/").content.decode()

    answer = admin.post(f"/admin/epg_api/epgclient/{client.prefix}/new-key/", {"old_expires_in_days": "7"}, **EN)

    assert answer.status_code == 302
    new = EpgClient.objects.get(acts_for=client)
    assert answer["Location"] == f"/admin/epg_api/epgclient/{new.prefix}/change/"
    shown = admin.get(answer["Location"], **EN)
    new_key = shown_key(shown)
    assert new_key.startswith(new.prefix + ".")
    assert new_key not in admin.get(answer["Location"], **EN).content.decode()  # shown once
    client.refresh_from_db()
    assert client.expiry_date == timezone.now() + timedelta(days=7)
    assert Api(new_key).get(f"/orders/{order['order_no']}/").status_code == 200
    history = admin.get(f"/admin/epg_api/epgclient/{client.prefix}/history/", **EN).content.decode()
    assert f"Changed: expires at: (empty) → {timezone.localtime(client.expiry_date):%Y-%m-%d %H:%M}." in history
    assert f"A new key was issued for the client: {new.prefix}." in history


def test_the_list_and_each_keys_page_show_which_keys_are_the_clients(admin, demo):
    first, _key = EpgClient.objects.create_key(name="vendor")
    later = first.issue_key()[0]
    other, _key = EpgClient.objects.create_key(name="another vendor")

    listing = admin.get("/admin/epg_api/epgclient/", **EN).content.decode()
    assert listing.count(f'<td class="field-client_first_key">{first.prefix}</td>') == 1
    assert listing.count('<td class="field-client_first_key">this key</td>') == 2
    page = admin.get(f"/admin/epg_api/epgclient/{later.prefix}/change/", **EN).content.decode()
    assert f'href="/admin/epg_api/epgclient/{first.prefix}/change/">{first.prefix}</a> · first key' in page
    assert f"{later.prefix}</a> · issued later · in use (this key)" in page
    assert other.prefix not in page
    assert 'name="name"' not in page and 'name="tv_frame_origins"' not in page  # the client's: on its first key
    assert change(admin, later, expiry_date_0="2030-01-01", expiry_date_1="00:00:00").status_code == 302
    later.refresh_from_db()
    assert later.expiry_date is not None and later.name == "vendor"


def test_revoking_the_first_key_leaves_the_later_ones_working_and_says_so(admin, demo):
    first, key = EpgClient.objects.create_key(name="vendor")
    later, later_key = first.issue_key()
    assert change(admin, first, name="vendor B").status_code == 302  # the client's name, on every key
    later.refresh_from_db()
    assert later.name == "vendor B"

    answer = change(admin, first, name="vendor B", revoked="on", confirm_revoke="on")

    assert answer.status_code == 302
    messages = [str(m) for m in admin.get(answer["Location"], **EN).context["messages"]]
    assert f"The client's other key {later.prefix} still works: revoke it too to stop the client." in messages
    assert Api(key).products().status_code == 401
    assert Api(later_key).products().status_code == 200
