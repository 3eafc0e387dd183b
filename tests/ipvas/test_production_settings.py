"""Production settings (IPVAS_PRODUCTION=1): a complete environment passes Django's deploy
checks; an embedded default, a simulator or a missing secret stops the start.

Each case runs ``manage.py check --deploy`` in a fresh process with a clean
environment, all at once, so the whole module takes about as long as one start.
"""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.keys import made_key, private_pem, public_pem

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))

PRODUCTION_ENV = {
    "IPVAS_PRODUCTION": "1",
    "SECRET_KEY": SECRET_KEY,
    "ALLOWED_HOSTS": "ipvas.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ipvas",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/2",
    "SMP_ADAPTER": "http",
    "SMP_URL": "https://smp.operator.example/api",
    "IPVAS_SANDBOX": "0",
    # Every outside system's real client: production refuses the simulators.
    "WECHATPAY_ADAPTER": "sdk",
    "ALIPAY_ADAPTER": "sdk",
    "SMS_ADAPTER": "http",
    "SMS_GATEWAY_URL": "https://sms.operator.example/api",
    "CRM_ADAPTER": "http",
    "CRM_URL": "https://crm.operator.example/api",
    # /metrics/ answers only with this bearer token (404 without one; `check --deploy` warns).
    "METRICS_TOKEN": "metrics-token-for-the-deploy-checks",
    # Where the providers and the set-top boxes reach us.
    "PUBLIC_BASE_URL": "https://ipvas.example.com",
    # What the real clients sign and verify with ({keys}: a directory the module writes them to).
    "WECHATPAY_MCHID": "1900000109",
    "WECHATPAY_APPID": "wxd678efh567hg6787",
    "WECHATPAY_MERCHANT_SERIAL_NO": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "WECHATPAY_PLATFORM_PUBLIC_KEY_ID": "PUB_KEY_ID_0114232134912410000000000000",
    "WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": "{keys}/wechatpay_merchant.pem",
    "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": "{keys}/wechatpay_platform_public.pem",
    "WECHATPAY_APIV3_KEY_FILE": "{keys}/wechatpay_apiv3.txt",
    "ALIPAY_APP_ID": "2021000000000009",
    "ALIPAY_SELLER_ID": "2088000000000009",
    "ALIPAY_APP_PRIVATE_KEY_FILE": "{keys}/alipay_app.pem",
    "ALIPAY_PUBLIC_KEY_FILE": "{keys}/alipay_public.pem",
    "CRM_SSO_PUBLIC_KEY_FILE": "{keys}/crm_sso_public.pem",
    "SMS_WEBHOOK_SECRET_FILE": "{keys}/sms_webhook_secret.txt",
}

# WeChat Pay's next key, beside the one PRODUCTION_ENV configures (WECHATPAY_PLATFORM_PUBLIC_KEY_ID's).
NEW_KEY_ID = "PUB_KEY_ID_0114232134912410000000000001"

# case -> changes to PRODUCTION_ENV that start as well as it does
PASSES: dict[str, dict[str, str | None]] = {
    # The single key as before, and the next one by id.
    "wechatpay-platform-keys-beside-the-single-key": {
        "WECHATPAY_PLATFORM_PUBLIC_KEYS": f"{NEW_KEY_ID}={{keys}}/alipay_public.pem",
    },
    # The sales dashboard on a streaming replica (ipvas/reports_database.py).
    "reports-replica": {"REPORTS_DATABASE_URL": "postgres://ipvas_reports@replica:5432/ipvas"},
    # Every key in a directory of <id>.pem files, our requests' among them.
    "wechatpay-platform-keys-in-a-directory": {
        "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": None,
        "WECHATPAY_PLATFORM_PUBLIC_KEYS": "{keys}/wechatpay_platform_keys",
    },
    # While the CRM and the SMS gateway switch: the other key and secret beside the current ones.
    "crm-and-sms-previous-key-and-secret": {
        "CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE": "{keys}/crm_sso_previous_public.pem",
        "SMS_WEBHOOK_SECRET_PREVIOUS_FILE": "{keys}/sms_webhook_secret_previous.txt",
    },
}

# case -> (changes to PRODUCTION_ENV, None to remove a variable; what the refusal must name)
REFUSALS: dict[str, tuple[dict[str, str | None], str]] = {
    "no-secret-key": ({"SECRET_KEY": None}, "SECRET_KEY"),
    "sandbox-on": ({"IPVAS_SANDBOX": "1"}, "IPVAS_SANDBOX"),
    "smp-simulator": ({"SMP_ADAPTER": "simulator"}, "SMP_ADAPTER"),
    "smp-unset": ({"SMP_ADAPTER": None}, "SMP_ADAPTER"),
    "smp-without-address": ({"SMP_URL": None}, "SMP_URL"),
    "sms-gateway-without-address": ({"SMS_GATEWAY_URL": None}, "SMS_GATEWAY_URL"),
    "crm-without-address": ({"CRM_URL": None}, "CRM_URL"),
    "sms-simulator-by-path": ({"SMS_ADAPTER": "sandbox.simulators.sms.SimulatedSmsGateway"}, "SMS_ADAPTER"),
    "sqlite-database": ({"DATABASE_URL": "sqlite:////tmp/ipvas.sqlite3"}, "DATABASE_URL"),
    "no-database-url": ({"DATABASE_URL": None}, "DATABASE_URL"),
    "no-redis": ({"REDIS_URL": None}, "REDIS_URL"),
    "debug-on": ({"DEBUG": "1"}, "DEBUG"),
    # Unset, a notification's seller_id and a statement's account were not checked at all.
    "no-alipay-seller-id": ({"ALIPAY_SELLER_ID": None}, "ALIPAY_SELLER_ID"),
    "no-allowed-hosts": ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS"),
    "no-broker": ({"CELERY_BROKER_URL": None}, "CELERY_BROKER_URL"),
    # Started silently before, and failed later: at the first payment, notification, sign-in or log line.
    "no-public-base-url": ({"PUBLIC_BASE_URL": None}, "PUBLIC_BASE_URL"),
    "public-base-url-typo": ({"PUBLIC_BASE_URL": "https//ipvas.example.com"}, "PUBLIC_BASE_URL"),
    "database-url-typo": ({"DATABASE_URL": "postgress://postgres@127.0.0.1:5432/ipvas"}, "DATABASE_URL"),
    "reports-database-url-typo": (
        {"REPORTS_DATABASE_URL": "postgress://postgres@replica:5432/ipvas"},
        "REPORTS_DATABASE_URL",
    ),
    "reports-database-not-postgresql": (
        {"REPORTS_DATABASE_URL": "sqlite:////tmp/reports.sqlite3"},
        "REPORTS_DATABASE_URL",
    ),
    "redis-url-typo": ({"REDIS_URL": "redis//127.0.0.1:6379/1"}, "REDIS_URL"),
    "broker-url-typo": ({"CELERY_BROKER_URL": "amqq://ipvas:secret@rabbitmq/ipvas"}, "CELERY_BROKER_URL"),
    "timeout-not-a-number": ({"WECHATPAY_TIMEOUT_SECONDS": "5s"}, "WECHATPAY_TIMEOUT_SECONDS"),
    "log-format-typo": ({"LOG_FORMAT": "jsno"}, "LOG_FORMAT"),
    "log-level-typo": ({"LOG_LEVEL": "INFORMATION"}, "LOG_LEVEL"),
    "wechatpay-without-mchid": ({"WECHATPAY_MCHID": None}, "WECHATPAY_MCHID"),
    "wechatpay-without-platform-key-id": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEY_ID": None},
        "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
    ),
    "wechatpay-without-merchant-key": ({"WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": None}, "WECHATPAY_MERCHANT_PRIVATE_KEY"),
    "wechatpay-merchant-key-unreadable": (
        {"WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": "{keys}/unreadable.pem"},
        "WECHATPAY_MERCHANT_PRIVATE_KEY_FILE",
    ),
    "wechatpay-platform-key-missing-file": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": "{keys}/no-such-file.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE",
    ),
    "wechatpay-platform-key-is-a-private-key": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": "{keys}/wechatpay_merchant.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEY",
    ),
    "wechatpay-apiv3-key-too-short": (
        {"WECHATPAY_APIV3_KEY_FILE": None, "WECHATPAY_APIV3_KEY": "short"},
        "WECHATPAY_APIV3_KEY",
    ),
    # WeChat Pay's keys by id (a switch of keys): each file read and a public key, and our requests' id has one.
    "wechatpay-platform-keys-file-missing": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEYS": f"{NEW_KEY_ID}={{keys}}/no-such-file.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEYS",
    ),
    "wechatpay-platform-keys-entry-is-a-private-key": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEYS": f"{NEW_KEY_ID}={{keys}}/wechatpay_merchant.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEYS",
    ),
    "wechatpay-platform-keys-not-a-directory": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEYS": "{keys}/no-such-directory"},
        "WECHATPAY_PLATFORM_PUBLIC_KEYS",
    ),
    "wechatpay-platform-keys-directory-without-keys": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEYS": "{keys}/unreadable.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEYS",
    ),
    "wechatpay-platform-keys-without-our-requests-key": (
        {
            "WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": None,
            "WECHATPAY_PLATFORM_PUBLIC_KEYS": f"{NEW_KEY_ID}={{keys}}/alipay_public.pem",
        },
        "WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
    ),
    "alipay-without-public-key": ({"ALIPAY_PUBLIC_KEY_FILE": None}, "ALIPAY_PUBLIC_KEY"),
    "alipay-app-key-is-a-public-key": (
        {"ALIPAY_APP_PRIVATE_KEY_FILE": "{keys}/alipay_public.pem"},
        "ALIPAY_APP_PRIVATE_KEY",
    ),
    "crm-sso-without-key": ({"CRM_SSO_PUBLIC_KEY_FILE": None}, "CRM_SSO_PUBLIC_KEY"),
    "sms-webhook-without-secret": ({"SMS_WEBHOOK_SECRET_FILE": None}, "SMS_WEBHOOK_SECRET"),
    # The other key or secret accepted while the CRM or the gateway switches: read, and a public key.
    "crm-sso-previous-key-missing-file": (
        {"CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE": "{keys}/no-such-file.pem"},
        "CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE",
    ),
    "crm-sso-previous-key-is-a-private-key": (
        {"CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE": "{keys}/crm_sso.pem"},
        "CRM_SSO_PUBLIC_KEY_PREVIOUS",
    ),
    "crm-sso-previous-key-is-not-a-key": (
        {"CRM_SSO_PUBLIC_KEY_PREVIOUS": "not a key"},
        "CRM_SSO_PUBLIC_KEY_PREVIOUS",
    ),
    "sms-webhook-previous-secret-unreadable": (
        {"SMS_WEBHOOK_SECRET_PREVIOUS_FILE": "{keys}/unreadable.pem"},
        "SMS_WEBHOOK_SECRET_PREVIOUS_FILE",
    ),
    "sms-webhook-previous-secret-empty": (
        {"SMS_WEBHOOK_SECRET_PREVIOUS_FILE": "{keys}/empty.txt"},
        "SMS_WEBHOOK_SECRET_PREVIOUS_FILE",
    ),
}


# case -> (changes to PRODUCTION_ENV, the deploy-check warning that must be given)
WARNINGS: dict[str, tuple[dict[str, str | None], str]] = {
    "no-metrics-token": ({"METRICS_TOKEN": None}, "ipvas.W001"),
    "admin-without-mfa": ({"ADMIN_REQUIRE_MFA": "0"}, "ipvas.W002"),
}


def environment(changes: dict[str, str | None], var_dir: Path, keys: Path) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "ipvas.settings",
        "IPVAS_VAR_DIR": str(var_dir),
        **PRODUCTION_ENV,
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return {name: value.replace("{keys}", str(keys)) for name, value in env.items()}


def write_keys(keys: Path) -> None:
    """The partners' keys as an operator installs them: PEM files, and the secrets in text files."""
    for name in ("wechatpay_merchant", "wechatpay_platform", "alipay_app", "alipay", "crm_sso"):
        key = made_key(f"the operator's {name}")
        (keys / f"{name}.pem").write_text(private_pem(key))
        (keys / f"{name}_public.pem").write_text(public_pem(key))
    (keys / "wechatpay_apiv3.txt").write_text(secrets.token_hex(16) + "\n")
    (keys / "sms_webhook_secret.txt").write_text(secrets.token_urlsafe(32))
    # The CRM's and the gateway's other key and secret, while they switch.
    (keys / "crm_sso_previous_public.pem").write_text(public_pem(made_key("the operator's crm_sso_previous")))
    (keys / "sms_webhook_secret_previous.txt").write_text(secrets.token_urlsafe(32) + "\n")
    (keys / "empty.txt").write_text("\n")
    # Not readable as a file, even by root (a secret mounted as a directory, say).
    (keys / "unreadable.pem").mkdir()
    # WeChat Pay's keys by id, as an operator installs them for a switch of keys.
    ring = keys / "wechatpay_platform_keys"
    ring.mkdir()
    (ring / f"{PRODUCTION_ENV['WECHATPAY_PLATFORM_PUBLIC_KEY_ID']}.pem").write_bytes(
        (keys / "wechatpay_platform_public.pem").read_bytes()
    )
    (ring / f"{NEW_KEY_ID}.pem").write_bytes((keys / "alipay_public.pem").read_bytes())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    cases = {
        "complete": {},
        **PASSES,
        **{name: changes for name, (changes, _) in REFUSALS.items()},
        **{name: changes for name, (changes, _) in WARNINGS.items()},
    }
    var_dirs = {name: tmp_path_factory.mktemp(name) for name in cases}
    keys = tmp_path_factory.mktemp("keys")
    write_keys(keys)

    def check(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=ROOT,
            env=environment(cases[name], var_dirs[name], keys),
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(cases, pool.map(check, cases), strict=True))


def test_a_complete_production_environment_passes_the_deploy_checks(runs):
    result = runs["complete"]
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("case", list(PASSES))
def test_production_starts_with_keys_beside_the_current_ones(runs, case):
    result = runs[case]
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


@pytest.mark.parametrize("case", list(REFUSALS))
def test_production_refuses_to_start(runs, case):
    result = runs[case]
    _, names = REFUSALS[case]
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-2000:]
    assert names in last_line, last_line


@pytest.mark.parametrize("case", list(WARNINGS))
def test_production_warns_of_what_it_leaves_open(runs, case):
    result = runs[case]
    _, warning = WARNINGS[case]
    assert result.returncode != 0  # --fail-level WARNING
    assert warning in result.stderr + result.stdout, result.stderr[-2000:]


# --- any set-up ------------------------------------------------------------------------

# case -> (a key given outside production, not of its kind; what the refusal must name). The sandbox generates
# the keys not given; one given is the operator's, and a wrong one refuses the start as in production.
EMBEDDED_REFUSALS: dict[str, tuple[dict[str, str], str]] = {
    "crm-sso-key-is-a-private-key": ({"CRM_SSO_PUBLIC_KEY_FILE": "{keys}/crm_sso.pem"}, "CRM_SSO_PUBLIC_KEY"),
    "alipay-public-key-is-not-a-key": ({"ALIPAY_PUBLIC_KEY": "not a key"}, "ALIPAY_PUBLIC_KEY"),
    "wechatpay-merchant-key-is-a-public-key": (
        {"WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": "{keys}/wechatpay_merchant_public.pem"},
        "WECHATPAY_MERCHANT_PRIVATE_KEY",
    ),
    "wechatpay-platform-keys-entry-is-a-private-key": (
        {"WECHATPAY_PLATFORM_PUBLIC_KEYS": f"{NEW_KEY_ID}={{keys}}/wechatpay_merchant.pem"},
        "WECHATPAY_PLATFORM_PUBLIC_KEYS",
    ),
    "crm-sso-previous-key-is-not-a-key": ({"CRM_SSO_PUBLIC_KEY_PREVIOUS": "not a key"}, "CRM_SSO_PUBLIC_KEY_PREVIOUS"),
}
# The same settings with keys of their kind start.
EMBEDDED_KEYS = {
    "CRM_SSO_PUBLIC_KEY_FILE": "{keys}/crm_sso_public.pem",
    "CRM_SSO_PUBLIC_KEY_PREVIOUS_FILE": "{keys}/crm_sso_previous_public.pem",
    "ALIPAY_PUBLIC_KEY_FILE": "{keys}/alipay_public.pem",
    "WECHATPAY_MERCHANT_PRIVATE_KEY_FILE": "{keys}/wechatpay_merchant.pem",
    "WECHATPAY_PLATFORM_PUBLIC_KEYS": "{keys}/wechatpay_platform_keys",
}


@pytest.fixture(scope="module")
def embedded_runs(tmp_path_factory) -> dict[str, subprocess.CompletedProcess[str]]:
    cases = {"embedded-keys": EMBEDDED_KEYS, **{name: changes for name, (changes, _) in EMBEDDED_REFUSALS.items()}}
    keys = tmp_path_factory.mktemp("embedded-keys")
    write_keys(keys)

    def check(name: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DJANGO_SETTINGS_MODULE": "ipvas.settings",
            "IPVAS_VAR_DIR": str(tmp_path_factory.mktemp(name)),
            **{setting: value.replace("{keys}", str(keys)) for setting, value in cases[name].items()},
        }
        return subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(cases, pool.map(check, cases), strict=True))


def test_keys_of_their_kind_start_outside_production(embedded_runs):
    result = embedded_runs["embedded-keys"]
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]


@pytest.mark.parametrize("case", list(EMBEDDED_REFUSALS))
def test_a_key_not_of_its_kind_refuses_any_start(embedded_runs, case):
    result = embedded_runs[case]
    _, name = EMBEDDED_REFUSALS[case]
    assert result.returncode != 0, "started with a key not of its kind"
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr[-2000:]
    assert name in last_line, last_line


# --- the health check -----------------------------------------------------------------


@pytest.mark.django_db
def test_health_answers_200_when_the_database_and_the_cache_answer(client):
    response = client.get("/healthz/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok"}}
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


@pytest.mark.django_db
def test_health_answers_503_when_the_cache_is_down(client, settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    response = client.get("/healthz/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["cache"].startswith("error")
