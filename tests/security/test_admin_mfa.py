"""Admin's second factor, enforced (issue #11, item 4; ipvas/mfa.py).

Two-factor existed but was optional, in production too. With
``ADMIN_REQUIRE_MFA`` (on by default in production, off in the embedded demo)
a staff user sets up TOTP at the first sign-in before anything of admin, and
signs in with a code (or one of allauth's recovery codes) after; a session
without the second factor does not reach admin.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, TOTP, format_hotp_value, hotp_value
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.ipvas.test_production_settings import environment, write_keys

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = secrets.token_urlsafe(16)  # made for the run: no password is kept in the repository
PERIOD = 30
MARGIN = 3  # seconds


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("mfa-admin", email="", password=PASSWORD)


@pytest.fixture
def enforced(settings):
    settings.ADMIN_REQUIRE_MFA = True


def code_for(secret: str) -> str:
    """The authenticator app's code, made at least MARGIN s before its period ends, so that the server checks it
    in the same period a moment later (made in a period's last instant, it failed now and then in CI)."""
    left = PERIOD - timezone.now().timestamp() % PERIOD
    if left < MARGIN:
        time.sleep(left + 0.05)
    return format_hotp_value(hotp_value(secret, int(timezone.now().timestamp()) // PERIOD))


def sign_in_with_password(client: Client) -> str:
    response = client.post("/accounts/login/", {"login": "mfa-admin", "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def enrol(client: Client) -> str:
    """Set up TOTP as the pages ask: the password once more (allauth's reauthentication before a change of
    factors), then the authenticator app's secret and its current code. Returns the secret."""
    page = client.get("/accounts/2fa/totp/activate/")
    if page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/"):
        again = client.post(page["Location"], {"password": PASSWORD})
        assert again.status_code == 302, again.content[:500]
        page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post("/accounts/2fa/totp/activate/", {"code": code_for(secret)})
    assert response.status_code == 302, response.content[:1000]
    return secret


@pytest.mark.django_db(transaction=True)  # allauth announces the new factor on commit, within the request
def test_the_first_sign_in_leads_to_setting_up_totp_and_admin_only_after(staff, enforced):
    client = Client()
    sign_in_with_password(client)

    before = client.get("/admin/")
    reports_before = client.get("/admin/reports/")
    enrol(client)
    codes = client.get("/accounts/2fa/recovery-codes/")
    after = client.get("/admin/")

    assert before.status_code == 302 and before["Location"] == "/accounts/2fa/totp/activate/"
    assert reports_before.status_code == 302 and reports_before["Location"] == "/accounts/2fa/totp/activate/"
    assert codes.status_code == 200  # allauth shows the recovery codes set up with TOTP
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert after.status_code == 200


def test_after_enrolment_a_sign_in_needs_the_code_and_then_admin_opens(staff, enforced):
    client = Client()
    sign_in_with_password(client)
    secret = enrol(client)
    client.post("/accounts/logout/")

    with time_machine.travel(timezone.now() + timedelta(seconds=PERIOD), tick=True):  # a fresh code
        stage = sign_in_with_password(client)
        halfway = client.get("/admin/")
        client.post(stage, {"code": code_for(secret)})
        signed_in = client.get("/admin/")

    assert stage == "/accounts/2fa/authenticate/"
    assert halfway.status_code == 302 and halfway["Location"].startswith("/admin/login/")  # not signed in yet
    assert signed_in.status_code == 200


def test_a_recovery_code_signs_in_when_the_phone_is_lost(staff, enforced):
    TOTP.activate(staff, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    recovery = RecoveryCodes.activate(staff)
    client = Client()

    stage = sign_in_with_password(client)
    client.post(stage, {"code": recovery.get_unused_codes()[0]})

    assert client.get("/admin/").status_code == 200


def test_a_session_without_the_second_factor_is_asked_for_a_code_before_admin(staff, enforced):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(staff, secret)
    client = Client()
    client.force_login(staff)  # a session that never gave the code

    refused = client.get("/admin/orders/order/")
    client.post("/accounts/2fa/reauthenticate/", {"code": code_for(secret)})
    admitted = client.get("/admin/orders/order/")

    assert refused.status_code == 302
    assert refused["Location"] == "/accounts/2fa/reauthenticate/?next=%2Fadmin%2Forders%2Forder%2F"
    assert admitted.status_code == 200


def test_staff_without_totp_reach_no_admin_page(staff, enforced):
    client = Client()
    client.force_login(staff)

    for path in ("/admin/", "/admin/orders/order/", "/admin/billing/workitem/", "/admin/reports/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/", path


def test_not_enforced_when_off(staff, settings):
    settings.ADMIN_REQUIRE_MFA = False
    client = Client()
    client.force_login(staff)

    assert client.get("/admin/").status_code == 200


def test_on_by_default_in_production_and_off_in_the_embedded_demo(tmp_path):
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "print(json.dumps(settings.ADMIN_REQUIRE_MFA))"
    )
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": "ipvas.settings"}

    def setting(env: dict[str, str]) -> bool:
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    (tmp_path / "keys").mkdir()
    write_keys(tmp_path / "keys")
    production = setting(environment({}, tmp_path / "p", tmp_path / "keys"))
    embedded = setting({**base, "IPVAS_VAR_DIR": str(tmp_path / "e")})

    assert (production, embedded) == (True, False)
