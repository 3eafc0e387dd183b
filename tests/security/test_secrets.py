"""No secret in the repository, none in the logs (issue #6, point 7).

The repository: every file git tracks, or would add (untracked and not
ignored), is searched for PEM private keys, for long random values assigned
to a ``*_KEY`` / ``*SECRET*`` / ``*TOKEN*`` / password name, and for the
actual contents of the sandbox's generated keys and of Django's generated
``SECRET_KEY``.

The logs: the flows that handle secrets run (an SMS confirmation and its
signed reply, a WeChat Pay notification, SSO sign-ins, EPG requests with a
key) while every record goes through the console handler exactly as
``settings.LOGGING`` builds it (its redacting and context filters), written
both in the plain format and in production's JSON; no mobile number, API key,
ticket, APIv3 key, webhook secret or private key may come out, and numbers
come out masked (138****0001).
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import logging
import math
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError
from django.test import Client
from django.utils import timezone
from django.utils.module_loading import import_string

from ipvas.keyfiles import RSA_KEYS, SECRETS, sandbox_file
from ipvas.logs import RedactingFilter
from sandbox import faults
from tests.channels_crm.support import ticket
from tests.epg_api.support import Api, provider_pay, settle, sms_reply

ROOT = Path(__file__).resolve().parents[2]
PHONE, MASKED = "13800000001", "138****0001"
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

PEM_PRIVATE_KEY = re.compile(r"-{5}BEGIN ([A-Z0-9]+ )*PRIVATE KEY-{5}")
SECRET_NAME = r"[A-Za-z0-9_]*(?:KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)[A-Za-z0-9_]*"
# A public key, or the id, file or address of a key, is no secret.
PUBLIC_NAME = re.compile(r"(?i)(public|_id$|_file$|_url$|_name$|_path$)")
ASSIGNED = re.compile(
    rf"""(?i)\b({SECRET_NAME})["']?\s*(?::|=|,)\s*[bru]?["']([^"'\s]{{20,}})["']"""  # X = "v", "X": "v", ("X", "v")
)


# --- the repository ------------------------------------------------------------------------


def repository_files() -> dict[str, str]:
    """Tracked files, and the untracked ones a `git add -A` would take."""
    names = []
    for extra in ([], ["--others", "--exclude-standard"]):
        listing = subprocess.run(
            ["git", "ls-files", "-z", *extra], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        names += [n for n in listing.split("\0") if n]
    return {n: (ROOT / n).read_bytes().decode("utf-8", errors="replace") for n in names if (ROOT / n).is_file()}


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _has_run(value: str, length: int = 5) -> bool:
    """An ascending run like 01234 or abcde: a test vector someone typed, not a generated secret."""
    run = 1
    for a, b in itertools.pairwise(value):
        run = run + 1 if ord(b) == ord(a) + 1 else 1
        if run >= length:
            return True
    return False


def looks_random(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    if re.fullmatch(r"[0-9a-fA-F]{32,}", value):  # hex carries at most 4 bits a character
        return _entropy(value) >= 3.0 and not _has_run(value)
    return classes >= 2 and _entropy(value) >= 3.5 and not _has_run(value) and "/" not in value[:1]


def random_assignments(text: str) -> list[tuple[str, str]]:
    return [
        (m.group(1), m.group(2))
        for m in ASSIGNED.finditer(text)
        if looks_random(m.group(2)) and not PUBLIC_NAME.search(m.group(1))
    ]


def test_the_scan_finds_what_it_looks_for():
    # Values like generated ones, made from fixed input so that the check is the same every run.
    token = base64.urlsafe_b64encode(hashlib.sha256(b"not a secret").digest()).decode().rstrip("=")
    hex_token = hashlib.sha1(b"not a secret either", usedforsecurity=False).hexdigest()
    assert random_assignments(f'API_TOKEN = "{token}"') == [("API_TOKEN", token)]
    assert random_assignments(f'env_str("SMS_WEBHOOK_SECRET", "{token}")') == [("SMS_WEBHOOK_SECRET", token)]
    assert random_assignments(f"{{'client_secret': '{hex_token}'}}") == [("client_secret", hex_token)]
    assert not random_assignments('password="unused-password-1"')
    assert not random_assignments('apiv3_key = "0123456789abcdefABCDEF0123456789"')
    assert not random_assignments('CRM_KEY = "crm_sso_private_key.pem"')
    assert not random_assignments('PLATFORM_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012026112500000000000001"')
    assert PEM_PRIVATE_KEY.search("-" * 5 + "BEGIN RSA PRIVATE KEY" + "-" * 5)
    assert PEM_PRIVATE_KEY.search("-" * 5 + "BEGIN PRIVATE KEY" + "-" * 5)


def test_no_private_key_and_no_random_secret_is_in_the_repository():
    found = {}
    for name, text in repository_files().items():
        if name == THIS_FILE:
            continue  # its patterns and self-test values (made at run time) are what it looks for
        hits = [m.group(0) for m in PEM_PRIVATE_KEY.finditer(text)] + [
            f"{k} = {v[:6]}…" for k, v in random_assignments(text)
        ]
        if hits:
            found[name] = hits
    assert not found, found


def _generated_secrets() -> dict[str, str]:
    """What must never be committed: each sandbox key (its base64 lines) and the generated SECRET_KEY."""
    values = {}
    for name in sorted(RSA_KEYS):
        lines = [line for line in sandbox_file(name).decode().splitlines() if line and not line.startswith("-----")]
        for index, line in enumerate(lines):
            if len(line) >= 40:
                values[f"{name} line {index}"] = line
    for name in sorted(SECRETS):
        values[name] = sandbox_file(name).decode().strip()
    values["SECRET_KEY"] = settings.SECRET_KEY
    embedded = ROOT / "var" / "sandbox"  # a developer's embedded set-up, if there is one
    for path in sorted(embedded.glob("*")) if embedded.is_dir() else []:
        content = path.read_text(errors="replace")
        for index, line in enumerate(content.splitlines()):
            if len(line) >= 32 and not line.startswith("-----"):
                values[f"var/sandbox/{path.name} line {index}"] = line.strip()
    if (ROOT / "var" / "secret_key.txt").is_file():
        values["var/secret_key.txt"] = (ROOT / "var" / "secret_key.txt").read_text().strip()
    return values


def test_the_generated_keys_are_in_no_file_of_the_repository():
    generated = _generated_secrets()
    assert len(generated) > len(RSA_KEYS) + len(SECRETS)
    files = repository_files()
    found = [(what, name) for what, value in generated.items() for name, text in files.items() if value in text]
    assert not found, found


def test_the_generated_keys_live_where_git_ignores_them():
    """Where the generated keys are written inside the checkout, git ignores them. IPVAS_VAR_DIR may put them
    outside it (a test run's own directory, /var/lib/ipvas), where no commit can take them: git check-ignore
    refuses such a path, so it is not asked."""
    for path in [Path(settings.SANDBOX_DIR), ROOT / "var" / "sandbox", Path(settings.VAR_DIR) / "secret_key.txt"]:
        if not path.resolve().is_relative_to(ROOT.resolve()):
            continue
        ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{path} is not ignored by git"


# --- the logs ----------------------------------------------------------------------------------


@pytest.fixture
def production_logs() -> Iterator[Callable[[], str]]:
    """Every record, at DEBUG, through the configured console handler's own filters, twice: in the
    handler's plain format and in production's JSON format (which also writes a record's extras)."""
    root = logging.getLogger()
    [console] = [h for h in root.handlers if h.get_name() == "console"]
    assert [type(f) for f in console.filters][:1] == [RedactingFilter], console.filters
    conf = settings.LOGGING
    assert conf["handlers"]["console"]["filters"][0] == "redact"
    spec = dict(conf["formatters"]["json"])
    json_formatter = import_string(spec.pop("()"))(**spec)
    plain, as_json = io.StringIO(), io.StringIO()
    json_handler = logging.StreamHandler(as_json)
    json_handler.setFormatter(json_formatter)
    for log_filter in console.filters:
        json_handler.addFilter(log_filter)
    levels = {name: logging.getLogger(name).level for name in ["", *conf["loggers"]]}
    old_stream = console.setStream(plain)
    root.handlers.insert(0, json_handler)  # first, as production's only handler: it sees the record unfiltered
    root.setLevel(logging.DEBUG)
    try:
        yield lambda: plain.getvalue() + "\n" + as_json.getvalue()
    finally:
        root.removeHandler(json_handler)
        console.setStream(old_stream)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _forbidden(api_key: str, tickets: list[str]) -> dict[str, str]:
    values = {
        "mobile number": PHONE,
        "API key": api_key,
        "API key's secret part": api_key.split(".", 1)[-1],
        "APIv3 key": sandbox_file("wechatpay_apiv3_key.txt").decode().strip(),
        "SMS webhook secret": sandbox_file("sms_webhook_secret.txt").decode().strip(),
        "SECRET_KEY": settings.SECRET_KEY,
    }
    for index, token in enumerate(tickets):
        values[f"SSO ticket {index}"] = token
        values[f"SSO ticket {index} signature"] = token.rsplit(".", 1)[-1]
    for name in sorted(RSA_KEYS):
        body = [line for line in sandbox_file(name).decode().splitlines() if line and not line.startswith("-----")]
        values[f"{name} (first line)"] = body[0]
    return values


def _leaks(output: str, forbidden: dict[str, str]) -> dict[str, str]:
    leaks = {}
    for what, value in forbidden.items():
        at = output.find(value)
        if at >= 0:
            leaks[what] = output[max(0, at - 200) : at + len(value) + 40]
    return leaks


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    return time_machine


def test_no_secret_reaches_the_logs(api, production_logs, clock):
    # An SMS confirmation (the gateway fails once: the retry is logged) and its signed reply.
    order = api.place("tv1001", "VIP-MONTH")
    faults.set_mode("sms", "flaky")
    api.pay_with(order["order_no"], "phone_bill_sms")
    settle()
    clock.shift(timedelta(seconds=3))
    settle()
    assert sms_reply(PHONE, "Y")["delivered"] is True
    settle()
    assert api.order(order["order_no"])["status"] == "completed"
    # A WeChat Pay notification, signed and encrypted, through the real verification.
    paid = api.place("tv1001", "VIP-QUARTER")
    shown = api.pay_with(paid["order_no"], "wechat_qr")
    assert provider_pay("wechat_qr", shown["payment"]["out_trade_no"])["delivered"] is True
    settle()
    assert api.order(paid["order_no"])["status"] == "completed"
    # SSO: a ticket accepted, the same ticket again (refused: used), and the EPG with the key and with a wrong one.
    accepted = ticket()
    assert Client().get("/crm/sso/", {"ticket": accepted}).status_code == 302
    assert api.products().status_code == 200
    assert api.entitlements(tv_account="tv1001").status_code == 200
    assert Api(api.key[:-4] + "AAAA").products().status_code == 401
    # What code anywhere might write about them, in the forms the redaction knows.
    log = logging.getLogger("lifecycle.confirmations")
    log.info("reply from %s for order %s", PHONE, order["order_no"])
    log.debug("calling with Authorization: Api-Key %s", api.key)
    log.debug("redirect to /crm/sso/?ticket=%s", accepted)

    output = production_logs()

    assert not _leaks(output, _forbidden(api.key, [accepted])), _leaks(output, _forbidden(api.key, [accepted]))
    assert MASKED in output
    assert re.search(r"SMS to 138\*{4}0001 not sent", output), output[-3000:]
    assert "Unauthorized: /api/epg/v1/products/" in output


def test_refused_requests_do_not_log_their_query_strings(demo, production_logs, clock):
    expired = ticket(iat=int(time.time()) - 600, exp=int(time.time()) - 480)
    assert Client().get("/crm/sso/", {"ticket": expired}).status_code == 403
    assert Client().get("/crm/orders/", {"phone": PHONE}).status_code == 401

    output = production_logs()

    leaks = _leaks(output, {"SSO ticket": expired, "its signature": expired.rsplit(".", 1)[-1], "mobile": PHONE})
    assert not leaks, leaks


def test_logged_exceptions_are_redacted_too(production_logs):
    try:
        raise IntegrityError(f"duplicate key value violates unique constraint\nDETAIL:  Key (phone)=({PHONE}) exists.")
    except IntegrityError:
        logging.getLogger("lifecycle.due").exception("sweep: order %s (%s) failed", 42, "provisioning")

    output = production_logs()

    assert "sweep: order 42 (provisioning) failed" in output
    assert PHONE not in output, output


def test_a_mobile_number_with_its_country_code_is_masked_too(production_logs):
    # A partner's answer or a gateway's sender may write the number as +86…, 86… or 0086…: the digits before
    # it made the number look like a longer one, and it came out whole.
    log = logging.getLogger("adapters.smp.http")
    log.error("SMP /accounts refused our request: HTTP 400 %s", '{"msisdn": "+8613800000001"}')
    log.error("gateway said: from 8613800000001, to 0086-13800000001, %s", "%2B8613800000001")

    output = production_logs()

    assert PHONE not in output, output
    assert '"msisdn": "+86138****0001"' in output
    assert "from 86138****0001, to 0086-138****0001, %2B86138****0001" in output


# What a customer's payment app shows (docs/interfaces.md §10): each is a one-time bearer credential.
WECHAT_CODE, ALIPAY_CODE = "134567890123450000", "28123456789012345678"


def test_a_payment_code_is_masked_in_the_logs(production_logs):
    # A scanner fired into the wrong field (the history's search: a GET, so the request line holds it), or a
    # message about a scan: the code comes out as its first and last four digits, as admin shows it.
    logging.getLogger("lifecycle.payment_code").warning("code %s, code %s", WECHAT_CODE, ALIPAY_CODE)

    output = production_logs()

    assert WECHAT_CODE not in output and ALIPAY_CODE not in output, output
    assert "code 1345**********0000, code 2812************5678" in output
    # Longer numbers are not codes: a provider's transaction id (28 digits) stays whole.
    logging.getLogger("callbacks.views").info("transaction %s", "4200001234202612070123456789")
    assert "transaction 4200001234202612070123456789" in production_logs()
    # Nor are a duration's decimals (Celery's "succeeded in …s").
    logging.getLogger("celery.app.trace").info("Task t[outbox-1] succeeded in %ss: 'sent'", 0.2512345678901234)
    assert "succeeded in 0.2512345678901234s" in production_logs()


def test_the_development_servers_request_lines_are_redacted(production_logs):
    # runserver (dev.py up) writes each request line through its own logger, which Django's defaults give a
    # handler of its own: the lines missed the redaction (an SSO ticket, a number searched for) and the format.
    accepted = ticket()
    server = logging.getLogger("django.server")
    server.info('"%s" %s %s', f"GET /crm/sso/?ticket={accepted} HTTP/1.1", "302", "0")
    server.info('"%s" %s %s', f"GET /crm/subscriptions/?phone={PHONE} HTTP/1.1", "200", "1801")
    server.info('"%s" %s %s', f"GET /crm/orders/?q={WECHAT_CODE} HTTP/1.1", "200", "6714")

    output = production_logs()

    assert f"GET /crm/subscriptions/?phone={MASKED} HTTP/1.1" in output, output
    assert "GET /crm/orders/?q=1345**********0000" in output
    leaks = _leaks(output, {"ticket": accepted, "signature": accepted.rsplit(".", 1)[-1], "mobile": PHONE})
    assert not leaks, leaks
    assert WECHAT_CODE not in output
