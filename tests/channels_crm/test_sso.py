"""CRM single sign-on (docs/interfaces.md §5): a ticket logs a clerk in once, or no one at all.

Tickets are signed here as the CRM signs them, with the sandbox's CRM key;
forged ones with a key made in the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import escape

from channels_crm.models import Clerk, SsoLogin, SsoTicketUse, Store
from ipvas.keyfiles import sandbox_public_key_pem
from sandbox.views.crm import sign_ticket
from tests.channels_crm.support import CRM_KEY, claims, sign, sign_in, sso, ticket
from tests.support.keys import made_key, private_pem, public_pem

NEW_ORDER = "/crm/orders/new/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(payload: dict) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the verifier's public key."""
    secret = sandbox_public_key_pem(CRM_KEY).encode()
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _unsigned(payload: dict) -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def _foreign_key_pem() -> str:
    return private_pem(made_key("a forger of CRM tickets"))


def assert_signed_out(client: Client) -> None:
    """No session: a clerk page says to come back from the CRM (the sign-in page cannot be framed)."""
    response = client.get(NEW_ORDER)
    assert response.status_code == 401, response.status_code
    assert "/accounts/login/" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- accepted ---------------------------------------------------------------------


def test_valid_ticket_signs_the_clerk_in_and_opens_the_new_order_page(demo):
    client = Client()
    token = ticket(sub="clerk77", name="王小明", store_code="NX-YC-009", virtual_staff_id="V0077")

    response = sso(client, token)

    assert response.status_code == 302
    assert response["Location"] == NEW_ORDER
    clerk = Clerk.objects.select_related("user", "store").get(staff_id="clerk77")
    assert (clerk.name, clerk.store.code, clerk.virtual_staff_id, clerk.role) == (
        "王小明",
        "NX-YC-009",
        "V0077",
        "clerk",
    )
    assert not clerk.user.is_staff and not clerk.user.is_superuser
    assert not clerk.user.has_usable_password()
    assert int(client.session["_auth_user_id"]) == clerk.user.pk
    page = client.get(NEW_ORDER)
    assert page.status_code == 200
    assert "王小明" in page.content.decode()
    login = SsoLogin.objects.get()
    assert (login.accepted, login.staff_id, login.store_code, login.reason, login.remote_addr) == (
        True,
        "clerk77",
        "NX-YC-009",
        "",
        "127.0.0.1",
    )
    assert login.jti and SsoTicketUse.objects.filter(jti=login.jti).exists()


def test_second_login_updates_the_clerk_and_their_store(demo):
    sign_in(sub="clerk77", name="王小明", store_code="NX-YC-009", virtual_staff_id="V0077")
    client = sign_in(sub="clerk77", name="王大明", store_code="NX-YC-010", virtual_staff_id="V0099")

    clerk = Clerk.objects.select_related("store").get(staff_id="clerk77")
    assert (clerk.name, clerk.store.code, clerk.virtual_staff_id) == ("王大明", "NX-YC-010", "V0099")
    assert Clerk.objects.filter(staff_id="clerk77").count() == 1
    assert get_user_model().objects.filter(username="crm-clerk77").count() == 1
    assert set(Store.objects.values_list("code", flat=True)) >= {"NX-YC-009", "NX-YC-010"}
    assert "NX-YC-010" in client.get(NEW_ORDER).content.decode()
    assert SsoLogin.objects.filter(accepted=True, staff_id="clerk77").count() == 2


def test_the_demo_clerk_signs_in_as_the_seeded_clerk(demo):
    client = sign_in()
    seeded = Clerk.objects.get(staff_id="clerk01")
    assert int(client.session["_auth_user_id"]) == seeded.user_id
    assert Clerk.objects.count() == 1


def test_a_ticket_issued_within_the_leeway_is_accepted(demo):
    now = int(time.time())
    assert sso(Client(), ticket(iat=now + 2, exp=now + 122)).status_code == 302


def test_sandbox_sign_ticket_is_accepted(demo, settings):
    settings.CRM_SSO_PUBLIC_KEY = ""
    token = sign_ticket(staff_id="clerk01", store_code="NX-YC-001", virtual_staff_id="V0001", name="演示")
    assert sso(Client(), token).status_code == 302


# --- refused ----------------------------------------------------------------------


def _refusals() -> list:
    return [
        pytest.param(lambda: sign(claims(), key=_foreign_key_pem()), "signature", id="forged"),
        pytest.param(lambda: ticket(iat=int(time.time()) - 200, exp=int(time.time()) - 80), "expired", id="expired"),
        pytest.param(lambda: ticket(exp=int(time.time()) + 121), "120", id="lives-too-long"),
        pytest.param(
            lambda: ticket(iat=int(time.time()) + 60, exp=int(time.time()) + 120),
            "issued in the future",
            id="issued-in-the-future",
        ),
        pytest.param(lambda: ticket(aud="another-app"), "audience", id="wrong-aud"),
        pytest.param(lambda: ticket(iss="not-the-crm"), "issued", id="wrong-iss"),
        pytest.param(lambda: ticket(sub=None), "sub", id="missing-sub"),
        pytest.param(lambda: ticket(name=None), "name", id="missing-name"),
        pytest.param(lambda: ticket(store_code=None), "store_code", id="missing-store_code"),
        pytest.param(lambda: ticket(virtual_staff_id=None), "virtual_staff_id", id="missing-virtual_staff_id"),
        pytest.param(lambda: ticket(jti=None), "jti", id="missing-jti"),
        pytest.param(lambda: ticket(iat=None), "iat", id="missing-iat"),
        pytest.param(lambda: ticket(exp=None), "exp", id="missing-exp"),
        pytest.param(lambda: ticket(sub=""), "sub", id="empty-sub"),
        pytest.param(lambda: ticket(store_code="S" * 33), "store_code", id="store_code-too-long"),
        pytest.param(lambda: _unsigned(claims()), "InvalidAlgorithmError", id="alg-none"),
        pytest.param(lambda: _hs256_with_public_key(claims()), "InvalidAlgorithmError", id="hs256-with-the-public-key"),
        pytest.param(lambda: "garbage", "DecodeError", id="garbage"),
        pytest.param(lambda: "a.b.c", "DecodeError", id="three-garbage-segments"),
        pytest.param(lambda: "", "no ticket", id="empty"),
        pytest.param(lambda: "x" * 5000, "longer than 4096", id="oversized"),
    ]


@pytest.mark.parametrize(("make", "reason_word"), _refusals())
def test_invalid_ticket_is_refused_with_its_reason_and_no_session(demo, make, reason_word):
    client = Client()

    response = sso(client, make())

    assert response.status_code == 403
    login = SsoLogin.objects.get()
    assert not login.accepted and login.reason
    assert reason_word in login.reason
    html = response.content.decode()
    assert escape(login.reason) in html
    assert "登录被拒绝" in html
    assert_signed_out(client)
    assert not Clerk.objects.exclude(staff_id="clerk01").exists()
    assert not SsoTicketUse.objects.exists()


def test_a_forged_ticket_is_refused_by_the_sandbox_key_too(demo, settings):
    settings.CRM_SSO_PUBLIC_KEY = ""
    client = Client()
    assert sso(client, sign(claims(), key=_foreign_key_pem())).status_code == 403
    assert_signed_out(client)


# --- the CRM switching keys: CRM_SSO_PUBLIC_KEY_PREVIOUS accepted beside CRM_SSO_PUBLIC_KEY ----------------


NEXT_CRM_KEY = "the key the CRM switches to"


def _next_crm_key_pem() -> str:
    return private_pem(made_key(NEXT_CRM_KEY))


def assert_refused_for_its_signature(token: str) -> None:
    client = Client()
    response = sso(client, token)
    assert response.status_code == 403
    assert "signature" in SsoLogin.objects.filter(accepted=False).latest("pk").reason
    assert_signed_out(client)


def test_while_the_crm_switches_keys_a_ticket_under_either_signs_the_clerk_in(demo, settings, tmp_path, caplog):
    """CRM_SSO_PUBLIC_KEY is the CRM's next key, CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE the one it signs with until it
    switches (the sandbox's here): the tickets name no key, and each signs its clerk in. A third key is refused."""
    settings.CRM_SSO_PUBLIC_KEY = public_pem(made_key(NEXT_CRM_KEY))
    (tmp_path / "crm_sso_previous.pem").write_text(sandbox_public_key_pem(CRM_KEY))
    settings.CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE = str(tmp_path / "crm_sso_previous.pem")

    before_the_switch = Client()
    assert sso(before_the_switch, ticket()).status_code == 302
    assert int(before_the_switch.session["_auth_user_id"]) == Clerk.objects.get(staff_id="clerk01").user_id
    assert "SSO ticket signed with CRM_SSO_PUBLIC_KEY_PREVIOUS" in caplog.text  # the CRM has not switched yet
    after_the_switch = Client()
    assert sso(after_the_switch, sign(claims(sub="clerk77", name="王小明"), key=_next_crm_key_pem())).status_code == 302
    assert int(after_the_switch.session["_auth_user_id"]) == Clerk.objects.get(staff_id="clerk77").user_id
    assert after_the_switch.get(NEW_ORDER).status_code == 200

    assert_refused_for_its_signature(sign(claims(sub="clerk78"), key=_foreign_key_pem()))
    assert not Clerk.objects.filter(staff_id="clerk78").exists()
    assert SsoLogin.objects.filter(accepted=True).count() == 2


def test_once_the_crms_previous_key_is_removed_its_tickets_are_refused(demo, settings, tmp_path):
    """After the switch: the previous key's file removed before the restart that unsets it, then the setting
    unset. Either way a ticket under it is refused (not an error), and the current key goes on."""
    previous = tmp_path / "crm_sso_previous.pem"
    previous.write_text(sandbox_public_key_pem(CRM_KEY))
    settings.CRM_SSO_PUBLIC_KEY = public_pem(made_key(NEXT_CRM_KEY))
    settings.CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE = str(previous)
    assert sso(Client(), ticket()).status_code == 302

    previous.unlink()
    assert_refused_for_its_signature(ticket())
    settings.CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE = ""
    assert_refused_for_its_signature(ticket())

    assert sso(Client(), sign(claims(), key=_next_crm_key_pem())).status_code == 302


def test_a_request_without_a_ticket_is_refused(demo):
    client = Client()
    response = client.get("/crm/sso/")
    assert response.status_code == 403
    assert SsoLogin.objects.filter(accepted=False).count() == 1
    assert_signed_out(client)


def test_a_replayed_ticket_is_refused(demo):
    token = ticket()
    assert sso(Client(), token).status_code == 302

    thief = Client()
    response = sso(thief, token)

    assert response.status_code == 403
    assert "used already" in response.content.decode()
    assert_signed_out(thief)
    assert list(SsoLogin.objects.order_by("pk").values_list("accepted", flat=True)) == [True, False]


def assert_still_signed_in(client: Client, staff_id: str = "clerk01") -> None:
    response = client.get(NEW_ORDER)
    assert response.status_code == 200, response.status_code
    assert response.context["clerk"].staff_id == staff_id


def assert_leads_nowhere(response) -> None:
    """The refusal page shows no clerk and no link into the session the browser may still hold."""
    html = response.content.decode()
    assert 'href="/crm/' not in html, html
    assert "clerk01" not in html and "演示营业员" not in html


# Chromium's headers (Fetch Metadata) for the CRM's frame opening our page, and for an <img> of another site.
CRM_FRAME = {"HTTP_SEC_FETCH_DEST": "iframe", "HTTP_SEC_FETCH_MODE": "navigate", "HTTP_SEC_FETCH_SITE": "cross-site"}
THIRD_PARTY_IMAGE = {
    "HTTP_SEC_FETCH_DEST": "image",
    "HTTP_SEC_FETCH_MODE": "no-cors",
    "HTTP_SEC_FETCH_SITE": "cross-site",
}


def _another_clerks_refused_tickets() -> list:
    return [
        pytest.param(lambda: ticket(sub="clerk02", aud="another-app"), id="for-another-audience"),
        pytest.param(
            lambda: ticket(sub="clerk02", iat=int(time.time()) - 200, exp=int(time.time()) - 80), id="expired"
        ),
        pytest.param(lambda: ticket(sub="clerk02", name=None), id="lacking-a-claim"),
        pytest.param(lambda: ticket(sub="clerk02", exp=int(time.time()) + 121), id="lives-too-long"),
    ]


@pytest.mark.parametrize("make", _another_clerks_refused_tickets())
def test_another_clerks_refused_ticket_ends_the_previous_session(demo, make):
    """The next clerk at a shared counter PC, whose ticket the CRM signed but we refused, does not go on as the
    previous clerk: the CRM's frame opening our page with it ends the session."""
    client = sign_in()
    assert_still_signed_in(client)

    response = client.get("/crm/sso/", {"ticket": make()}, **CRM_FRAME)

    assert response.status_code == 403
    assert_leads_nowhere(response)
    assert_signed_out(client)
    assert SsoLogin.objects.filter(accepted=False).get().staff_id == "clerk02"  # the audit says whose it was


def test_another_clerks_used_ticket_ends_the_previous_session(demo):
    token = ticket(sub="clerk02")
    assert sso(Client(), token).status_code == 302
    client = sign_in()

    assert sso(client, token).status_code == 403  # no Fetch Metadata: an older browser, taken as a page

    assert_signed_out(client)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: sign(claims(sub="clerk02"), key=_foreign_key_pem()), id="forged"),
        pytest.param(lambda: _unsigned(claims(sub="clerk02")), id="alg-none"),
        pytest.param(lambda: "garbage", id="garbage"),
        pytest.param(lambda: "", id="empty"),
    ],
)
def test_a_ticket_anyone_could_write_signs_no_one_out(demo, make):
    """A page of another site that makes the clerk's browser load /crm/sso/?ticket=… (an <img>, a hidden frame)
    does not sign the clerk out mid-sale; the refusal page leads nowhere into the session it leaves."""
    client = sign_in()

    for headers in (THIRD_PARTY_IMAGE, CRM_FRAME, {}):
        response = client.get("/crm/sso/", {"ticket": make()}, **headers)
        assert response.status_code == 403
        assert_leads_nowhere(response)
        assert_still_signed_in(client)
    assert set(SsoLogin.objects.filter(accepted=False).values_list("staff_id", flat=True)) == {""}


def test_another_clerks_refused_ticket_loaded_as_an_image_signs_no_one_out(demo):
    """A clerk's own used or expired ticket, put in an <img> on a page their colleagues open, signs no one out
    either: only a page or a frame opened with it does (Chromium, Firefox and Safari say which)."""
    client = sign_in()

    response = client.get("/crm/sso/", {"ticket": ticket(sub="clerk02", aud="another-app")}, **THIRD_PARTY_IMAGE)

    assert response.status_code == 403
    assert_still_signed_in(client)


def test_the_same_clerks_refused_ticket_keeps_their_session(demo):
    """The CRM's page reloaded (its ticket used already), or left open past the ticket's two minutes: the same
    clerk, who goes on in their session from the CRM's next ticket."""
    token = ticket()
    client = Client()
    assert sso(client, token).status_code == 302

    assert client.get("/crm/sso/", {"ticket": token}, **CRM_FRAME).status_code == 403
    expired = ticket(iat=int(time.time()) - 200, exp=int(time.time()) - 80)
    assert client.get("/crm/sso/", {"ticket": expired}, **CRM_FRAME).status_code == 403

    assert_still_signed_in(client)


def test_only_get_is_accepted(demo):
    assert Client().post("/crm/sso/", {"ticket": ticket()}).status_code == 405
    assert not SsoLogin.objects.exists()


def test_a_ticket_never_signs_in_as_an_existing_staff_account(demo):
    admin = get_user_model().objects.create_superuser("crm-boss", password="x-Strong-Pass-123")
    client = Client()

    response = sso(client, ticket(sub="boss"))

    signed_in_as = client.session.get("_auth_user_id")
    assert response.status_code == 403 or int(signed_in_as) != admin.pk
    assert client.get("/admin/").status_code != 200


@pytest.mark.parametrize("made", ["staff", "superuser", "disabled"])
def test_a_ticket_never_signs_in_as_a_staff_account_even_with_a_clerk(demo, made):
    """An admin linked a clerk row to an operator's account (or gave a clerk's account admin rights, or
    disabled it): the check used to be made only when the staff id had no clerk yet, and a ticket the CRM
    signed opened that superuser's session without its password (found by a counter review)."""
    user = get_user_model().objects.create_user("ops-wang", password="x-Strong-Pass-123")
    user.is_staff, user.is_superuser, user.is_active = made == "staff", made == "superuser", made != "disabled"
    user.save()
    store = Store.objects.get(code="NX-YC-001")
    Clerk.objects.create(user=user, staff_id="wang", name="王", store=store, virtual_staff_id="V0077")
    client = Client()

    response = sso(client, ticket(sub="wang", name="王", virtual_staff_id="V0077"))

    assert response.status_code == 403
    assert client.session.get("_auth_user_id") is None
    assert not SsoLogin.objects.filter(accepted=True).exists()


def test_a_clerk_cannot_reach_admin(clerk):
    response = clerk.get("/admin/")
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert "login" in response["Location"]
    final = clerk.get("/admin/", follow=True)
    assert final.request["PATH_INFO"] != "/admin/"
    assert 'id="recent-actions-module"' not in final.content.decode()


def test_a_signed_in_non_clerk_sees_not_a_clerk_page(demo):
    client = Client()
    client.force_login(get_user_model().objects.create_user("someone"))
    response = client.get(NEW_ORDER)
    assert response.status_code == 403
    assert "非营业厅账号" in response.content.decode()


# --- the sandbox's CRM ------------------------------------------------------------

LAUNCH = {"staff_id": "clerk01", "store_code": "NX-YC-001", "virtual_staff_id": "V0001", "name": "演示"}


def test_sandbox_launch_signs_a_working_ticket(demo, settings):
    settings.CRM_SSO_PUBLIC_KEY = ""  # the sandbox's own key pair, as an integrator's set-up has it
    client = Client()

    response = client.get("/sandbox/crm/launch/", LAUNCH)

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/crm/sso/"
    (token,) = parse_qs(location.query)["ticket"]
    signed = jwt.decode(token, sandbox_public_key_pem(CRM_KEY), algorithms=["RS256"], audience="ipvas")
    assert {k: signed[k] for k in ("iss", "sub", "name", "store_code", "virtual_staff_id")} == {
        "iss": "crm",
        "sub": "clerk01",
        "name": "演示",
        "store_code": "NX-YC-001",
        "virtual_staff_id": "V0001",
    }
    assert signed["exp"] - signed["iat"] <= 120 and signed["jti"]
    landing = client.get(response["Location"])
    assert landing.status_code == 302 and landing["Location"] == NEW_ORDER
    assert client.get(NEW_ORDER).status_code == 200
    assert Clerk.objects.get(staff_id="clerk01").name == "演示"
    assert SsoLogin.objects.get().accepted


@pytest.mark.parametrize("missing", ["staff_id", "store_code", "virtual_staff_id"])
def test_sandbox_launch_without_a_parameter_is_a_400(demo, missing):
    params = {k: v for k, v in LAUNCH.items() if k != missing}
    response = Client().get("/sandbox/crm/launch/", params)
    assert response.status_code == 400
    assert missing in response.json()["error"]["message"]


def test_sandbox_frame_embeds_the_launch_url(demo):
    response = Client().get("/sandbox/crm/frame/", LAUNCH)
    assert response.status_code == 200
    assert '<iframe src="/sandbox/crm/launch/?staff_id=clerk01' in response.content.decode()


@pytest.mark.parametrize("path", ["/sandbox/crm/launch/", "/sandbox/crm/frame/"])
def test_sandbox_crm_is_404_when_the_sandbox_is_off(demo, settings, path):
    settings.SANDBOX = False
    assert Client().get(path, LAUNCH).status_code == 404


# --- what a session opened by a ticket is (found by a counter review, 2026-12-06) -----------------------------


def test_a_session_acts_for_the_store_its_ticket_named(demo):
    """A manager helps at NX-YC-002 in the morning, then signs in at home (NX-YC-001). The browser left at
    NX-YC-002 used to take the clerk's latest store: it became the home store's manager (its orders shown)
    and booked its sales to NX-YC-001. It stays what its own ticket said."""
    from django.db.models import F

    from orders.models import Order
    from tests.channels_crm.support import new_order

    home_order = new_order(sign_in(sub="clerk02", name="同店营业员", virtual_staff_id="V0002"), "13800000002")
    sign_in()  # clerk01 of NX-YC-001
    Clerk.objects.filter(staff_id="clerk01").update(role="manager", managed_store=F("store"))

    elsewhere = sign_in(store_code="NX-YC-002")
    at_home = sign_in()

    assert elsewhere.get(f"/crm/orders/{home_order.order_no}/").status_code == 404
    assert at_home.get(f"/crm/orders/{home_order.order_no}/").status_code == 200  # the manager, at home
    sale = new_order(elsewhere, "13800000001")
    assert Order.objects.get(pk=sale.pk).store_code == "NX-YC-002"


def test_a_ticket_signs_a_clerk_in_for_a_shift_not_for_days(demo, time_machine, settings):
    """A ticket lives two minutes; the session it opened lived Django's two weeks on a shared counter PC."""
    from datetime import timedelta

    from django.utils import timezone

    time_machine.move_to(timezone.now(), tick=True)
    clerk = sign_in()
    assert clerk.get(NEW_ORDER).status_code == 200
    time_machine.shift(timedelta(seconds=settings.CRM_SESSION_SECONDS - 60))
    assert clerk.get(NEW_ORDER).status_code == 200
    time_machine.shift(timedelta(seconds=120))
    assert clerk.get(NEW_ORDER).status_code == 401


def test_a_session_in_use_still_ends_a_shift_after_its_ticket(demo, time_machine, settings):
    """Django's expiry counts from the session's last save, which every message renews: a counter PC in use
    stayed signed in for good. The shift counts from the ticket (found by a review, 2026-12-06 night)."""
    from datetime import timedelta

    from django.utils import timezone

    from tests.channels_crm.support import new_order

    time_machine.move_to(timezone.now(), tick=False)
    clerk = sign_in()
    step = timedelta(seconds=settings.CRM_SESSION_SECONDS * 0.6)
    time_machine.shift(step)
    order = new_order(clerk, "13800000001")
    clerk.post(f"/crm/orders/{order.order_no}/pay/", {"method": "cash"})  # refused (no "received"): a message
    time_machine.shift(step)  # 1.2 shifts after the ticket, 0.6 after the last save
    assert clerk.get(NEW_ORDER).status_code == 401
    assert clerk.get(f"/crm/orders/{order.order_no}/").status_code == 401  # signed out, not only refused once
    assert sign_in().get(NEW_ORDER).status_code == 200  # a new ticket opens a new shift


def test_cash_is_billed_under_the_virtual_staff_id_of_the_session_that_took_it(demo, settings, monkeypatch):
    """clerk01 opened the pages at NX-YC-001 as V0001, then at NX-YC-002 as V0009 in another browser. Cash
    taken in the first browser was billed at the CRM under V0009, the clerk's latest ticket's."""
    from sandbox.models import SimCrmActivity
    from tests import quick
    from tests.channels_crm.support import new_order, pay, settle

    quick.speed_up(monkeypatch, settings)
    home = sign_in()
    sign_in(store_code="NX-YC-002", virtual_staff_id="V0009")
    order = new_order(home, "13800000001")
    pay(home, order, "cash", cash_received="yes")
    settle()
    assert SimCrmActivity.objects.get(order_no=order.order_no).virtual_staff_id == "V0001"
