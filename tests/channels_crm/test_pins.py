"""The clerk sets or clears a household's purchase PIN at the counter (docs/interfaces.md §9): only with the
customer present, 4 digits typed twice, hashed, and audited under the clerk's staff id."""

from __future__ import annotations

import pytest
from django.test import Client

from ipvas.actors import Actor, ActorKind
from lifecycle.pins import PurchasePinLocked, PurchasePinWrong, pin_check, pin_set
from orders.models import PurchasePin, PurchasePinEvent

PAGE = "/crm/purchase-pin/"


def post(clerk: Client, **data: str):  # type: ignore[no-untyped-def]
    return clerk.post(PAGE, {"tv_account": "tv1001", **data}, HTTP_ACCEPT_LANGUAGE="en")


def test_the_page_is_a_tab_and_looks_up_an_account(clerk):
    home = clerk.get("/crm/orders/new/")
    assert f'href="{PAGE}"' in home.content.decode()

    page = clerk.get(PAGE, {"tv_account": "tv1001"}).content.decode()

    assert 'data-pin-state="none"' in page and 'name="pin_again"' in page
    assert 'name="clear-customer_present"' not in page  # nothing to clear


def test_set_change_and_clear(clerk):
    answer = post(clerk, action="set", pin="1234", pin_again="1234", customer_present="yes")

    assert answer.status_code == 302 and answer["Location"] == f"{PAGE}?tv_account=tv1001"
    page = clerk.get(PAGE, {"tv_account": "tv1001"}).content.decode()
    assert 'data-pin-state="set"' in page and "1234" not in page
    row = PurchasePin.objects.get()
    assert "1234" not in row.pin_hash and (row.set_by_kind, row.set_by_id) == ("clerk", "clerk01")

    assert post(clerk, action="set", pin="5678", pin_again="5678", customer_present="yes").status_code == 302
    assert post(clerk, action="clear", **{"clear-customer_present": "yes"}).status_code == 302
    assert not PurchasePin.objects.exists()
    events = PurchasePinEvent.objects.order_by("at", "pk")
    assert [e.action for e in events] == ["set", "changed", "cleared"]
    assert {(e.actor_kind, e.actor_id) for e in events} == {("clerk", "clerk01")}
    assert "NX-YC-001" in events[0].reason


def test_refused_without_the_customer_or_with_a_bad_pin(clerk):
    for data in [
        {"action": "set", "pin": "1234", "pin_again": "1234"},  # customer not confirmed present
        {"action": "set", "pin": "12a4", "pin_again": "12a4", "customer_present": "yes"},
        {"action": "set", "pin": "1234", "pin_again": "4321", "customer_present": "yes"},
        {"action": "set", "pin": "123", "pin_again": "123", "customer_present": "yes"},
    ]:
        answer = post(clerk, **data)
        assert answer.status_code == 400, data
        assert 'class="error"' in answer.content.decode()
    pin_set(tv_account="tv1001", pin="1234", actor=Actor.system())
    assert post(clerk, action="clear").status_code == 400  # customer not confirmed present
    assert PurchasePin.objects.exists()
    bad = clerk.get(PAGE, {"tv_account": "tv 1001"}, HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="account-error"' in bad.content.decode()


def test_a_lock_shows_and_a_new_pin_lifts_it(clerk):
    pin_set(tv_account="tv1001", pin="1234", actor=Actor.system())
    for attempt in range(5):
        refusal = PurchasePinLocked if attempt == 4 else PurchasePinWrong  # the fifth wrong PIN locks
        with pytest.raises(refusal):
            pin_check(tv_account="tv1001", pin="0000", actor=Actor(ActorKind.EPG_CLIENT, "x"), channel="tv")
    page = clerk.get(PAGE, {"tv_account": "tv1001"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Locked after wrong PINs" in page

    post(clerk, action="set", pin="2468", pin_again="2468", customer_present="yes")

    assert PurchasePin.objects.get().locked_until is None
    pin_check(tv_account="tv1001", pin="2468", actor=Actor(ActorKind.EPG_CLIENT, "x"), channel="tv")


def test_only_clerks(client, demo):
    assert client.get(PAGE).status_code == 401
