"""Secrets are compared in constant time (issue #6, point 5).

A signature, MAC, token, API key or ticket compared with ``==`` lets a caller
learn it byte by byte from the answer's timing. The source of every app is
read with ``ast``: a comparison (``==``, ``!=``, ``in``, ``not in``) with a
secret-bearing value on one side is refused unless it is listed below with
why it holds no secret. RSA verification goes through ``cryptography``
(constant time there) and is not a comparison in our code.

The sites that must compare with ``hmac.compare_digest`` are also checked to
do so, and to answer a hostile header with a refusal, not a 500:
``compare_digest`` raises ``TypeError`` on a non-ASCII ``str``, and HTTP
headers reach Django as latin-1 text.
"""

from __future__ import annotations

import ast
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from django.test import Client

from ipvas.credentials import secret

ROOT = Path(__file__).resolve().parents[2]
APPS = ["billing", "channels_crm", "epg_api", "ipvas", "orders", "sandbox"]

# Words that name a secret, or a value derived from one, in identifiers and in the string keys
# a value is read under (headers["X-Signature"], params.get("sign")).
SECRET_WORD = re.compile(
    r"(?i)(?<![a-z])(sign|signature|signed|hmac|mac|token|secret|password|passwd|api_?key|private_?key|"
    r"apiv3|ticket|authorization|credentials?|x-signature)(?![a-z])"
)
# ...unless they name something public about it: its algorithm, its key's id, its serial number.
PUBLIC_QUALIFIER = re.compile(r"(?i)(_|-)(type|algorithm|alg|id|serial|no|url|file|name)s?$")
# Calls whose result is secret: an HMAC, a configured secret, a private key.
SECRET_CALLS = re.compile(r"(^|\.)(hmac\.new|hmac\.digest|secret|private_key_pem|sandbox_secret|sandbox_file)$")
# Calls that only re-encode their argument: a secret stays a secret through them.
TRANSPARENT_CALLS = re.compile(r"^(str|bytes|bytearray|base64\.\w+|binascii\.\w+|codecs\.\w+)$")
TRIVIAL = (None, "", b"", True, False)

# (file, function, comparison source) -> why it holds no secret.
NOT_SECRET: dict[tuple[str, str, str], str] = {
    (
        "sandbox/views/provider_fakes_wechatpay.py",
        "_authorization",
        "scheme != AUTH_SCHEME",
    ): "the scheme word of the simulated WeChat Pay's Authorization header; the signature is RSA-verified",
    (
        "sandbox/views/provider_fakes_wechatpay.py",
        "_verify_request",
        "fields['mchid'] != settings.WECHATPAY_MCHID",
    ): "the merchant id named in the Authorization header: a public identifier",
    (
        "sandbox/views/provider_fakes_wechatpay.py",
        "_verify_request",
        "fields['serial_no'] != settings.WECHATPAY_MERCHANT_SERIAL_NO",
    ): "the serial number of the merchant's certificate named in the Authorization header: public",
    (
        "sandbox/views/provider_fakes_alipay.py",
        "_wap_pay_page",
        "agreement.get('personal_product_code') != 'CYCLE_PAY_AUTH_P'",
    ): "a product code inside Alipay's agreement_sign_params (the terms of the agreement to sign), not a signature",
}

# Sites that must verify with hmac.compare_digest: (file, function).
MUST_COMPARE_DIGEST = [
    ("callbacks/views.py", "sms_inbound"),
    ("sandbox/http.py", "serve_api"),  # the simulated SMP, SMS gateway and CRM APIs
    ("ipvas/metrics.py", "metrics_view"),
]


@dataclass(frozen=True)
class Comparison:
    file: str
    function: str
    source: str
    line: int


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _key_names_secret(node: ast.AST) -> bool:
    """A string key a value is read under: headers["X-Signature"], params.get("sign")."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and _names_secret(node.value)


def _names_secret(word: str) -> bool:
    return bool(SECRET_WORD.search(word)) and not PUBLIC_QUALIFIER.search(word)


class _Function:
    """One function: which local names hold secrets, and which comparisons touch them."""

    def __init__(self, file: str, function: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.file = file
        self.function = function
        self.tainted: set[str] = set()

    def secret_bearing(self, node: ast.AST) -> bool:
        """Whether the value of ``node`` is (or is derived from) a secret.

        A call's result is secret when the call makes one (an HMAC, a configured secret), when it
        is a method of a secret value (``expected.lower()``), when it reads a secret key
        (``headers.get("X-Signature")``) or when it only re-encodes its argument (``str``,
        ``base64``); passing a secret to anything else (an HTTP client) does not make the answer secret.
        """
        match node:
            case ast.Name(id=name):
                return name in self.tainted or _names_secret(name)
            case ast.Attribute(value=ast.Name(id=enum), attr=_) if enum.endswith("Status"):
                return False  # a member of a status enum (SimContractStatus.SIGNED): a state's name
            case ast.Attribute(value=value, attr=attr):
                return _names_secret(attr) or self.secret_bearing(value)
            case ast.Subscript(value=value, slice=key):
                return self.secret_bearing(value) or _key_names_secret(key)
            case ast.Call(func=func, args=args):
                dotted = _dotted(func)
                if SECRET_CALLS.search(dotted):
                    return True
                if TRANSPARENT_CALLS.search(dotted):
                    return any(self.secret_bearing(a) for a in args)
                if isinstance(func, ast.Attribute):
                    return self.secret_bearing(func) or (
                        func.attr in ("get", "getlist", "pop") and any(_key_names_secret(a) for a in args[:1])
                    )
                return _names_secret(dotted.rsplit(".", 1)[-1])
            case ast.JoinedStr(values=values):
                return any(self.secret_bearing(v) for v in values)
            case ast.FormattedValue(value=value):
                return self.secret_bearing(value)
            case ast.BinOp(left=left, right=right):
                return self.secret_bearing(left) or self.secret_bearing(right)
            case ast.BoolOp(values=values) | ast.Tuple(elts=values) | ast.List(elts=values):
                return any(self.secret_bearing(v) for v in values)
            case ast.IfExp(body=body, orelse=orelse):
                return self.secret_bearing(body) or self.secret_bearing(orelse)
            case ast.Await(value=value) | ast.Starred(value=value):
                return self.secret_bearing(value)
        return False

    def taint(self) -> None:
        """Names assigned from a secret-bearing value (to a fixpoint: x = secret; y = f(x))."""
        assignments: list[tuple[list[ast.expr], ast.AST]] = []
        for node in ast.walk(self.function):
            if isinstance(node, ast.Assign):
                assignments.append((node.targets, node.value))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and node.value is not None:
                assignments.append(([node.target], node.value))
        changed = True
        while changed:
            changed = False
            for targets, value in assignments:
                if not self.secret_bearing(value):
                    continue
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and name.id not in self.tainted:
                            self.tainted.add(name.id)
                            changed = True

    def comparisons(self) -> list[Comparison]:
        self.taint()
        found = []
        for node in ast.walk(self.function):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            meaningful = [
                o for o in operands if not (isinstance(o, ast.Constant) and o.value in TRIVIAL) and not _is_len(o)
            ]
            if len(meaningful) < 2:
                continue  # a presence check: compared with None, "" or a length
            if any(self.secret_bearing(o) for o in meaningful):
                found.append(Comparison(self.file, self.function.name, ast.unparse(node), node.lineno))
        return found


def _is_len(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) == "len"


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _sources() -> dict[str, ast.AST]:
    trees = {}
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).as_posix()
            trees[rel] = ast.parse(path.read_text(), filename=rel)
    return trees


@cache
def secret_comparisons() -> list[Comparison]:
    found = []
    for rel, tree in _sources().items():
        for function in _functions(tree):
            # A nested function is visited on its own; its comparisons are also inside its parent's walk.
            found.extend(_Function(rel, function).comparisons())
    return sorted(set(found), key=lambda c: (c.file, c.line, c.function))


def _innermost(comparisons: list[Comparison]) -> list[Comparison]:
    """The same comparison seen from a function and from its enclosing one: keep one."""
    seen: dict[tuple[str, int, str], Comparison] = {}
    for c in comparisons:
        seen.setdefault((c.file, c.line, c.source), c)
    return list(seen.values())


# --- the checker itself ------------------------------------------------------------------


def _check(source: str) -> list[str]:
    tree = ast.parse(source)
    return [c.source for f in _functions(tree) for c in _Function("x.py", f).comparisons()]


@pytest.mark.parametrize(
    "source",
    [
        "def f(request, body, key):\n    expected = hmac.new(key, body, sha256).hexdigest()\n"
        "    return expected == request.headers['X-Signature']",
        "def f(request):\n    return request.headers.get('Authorization', '') != f'Bearer {settings.METRICS_TOKEN}'",
        "def f(params, computed):\n    return params['sign'] == computed",
        "def f(token, known):\n    return token in known",
        "def f(body):\n    mac = hmac.digest(secret('X', sandbox_file='x'), body, 'sha256')\n"
        "    return mac == body[:32]",
        "def f(a, b):\n    signature = a\n    copy = signature\n    return copy == b",
    ],
)
def test_the_checker_finds_a_secret_compared_with_equals(source):
    assert _check(source), source


@pytest.mark.parametrize(
    "source",
    [
        "def f(request, expected):\n    return hmac.compare_digest(request.headers['X-Signature'], expected)",
        "def f(signature):\n    return signature is None or signature == ''",
        "def f(params):\n    return params.get('sign_type') != 'RSA2'",
        "def f(serial):\n    return serial != settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID",
        "def f(record, fingerprint):\n    return record.fingerprint != fingerprint",
        "def f(token):\n    return len(token) == 32",
    ],
)
def test_the_checker_leaves_public_comparisons_alone(source):
    assert not _check(source), source


# --- the code base ---------------------------------------------------------------------------


def test_no_secret_is_compared_with_equals():
    comparisons = _innermost(secret_comparisons())
    refused = [
        f"{c.file}:{c.line} in {c.function}(): {c.source}"
        for c in comparisons
        if (c.file, c.function, c.source) not in NOT_SECRET
    ]
    assert not refused, "use hmac.compare_digest (or list it in NOT_SECRET with why it is public):\n" + "\n".join(
        refused
    )


def test_every_listed_exception_still_exists():
    """An exception that no longer matches anything is removed, so that the list stays a review of real code."""
    found = {(c.file, c.function, c.source) for c in secret_comparisons()}
    assert set(NOT_SECRET) <= found, set(NOT_SECRET) - found


@pytest.mark.parametrize(("file", "function"), MUST_COMPARE_DIGEST)
def test_the_verification_sites_use_compare_digest(file, function):
    tree = ast.parse((ROOT / file).read_text())
    [node] = [f for f in _functions(tree) if f.name == function]
    calls = [_dotted(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)]
    # Directly, or through ipvas.secrets_compare.same_secret, which compares bytes with it.
    assert "hmac.compare_digest" in calls or "same_secret" in calls, (file, function, sorted(set(calls)))


def test_same_secret_compares_in_constant_time_and_never_raises():
    from ipvas.secrets_compare import same_secret

    tree = ast.parse((ROOT / "ipvas/secrets_compare.py").read_text())
    calls = [_dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert "hmac.compare_digest" in calls
    assert same_secret("abc", "abc") and not same_secret("abd", "abc")
    assert not same_secret("签名", "abc") and not same_secret("\udc80", "abc")


def test_signatures_elsewhere_are_verified_by_the_libraries():
    """The RSA signatures (WeChat Pay, Alipay, the CRM's tickets) are checked by cryptography / PyJWT."""
    sources = {
        "adapters/wechatpay/crypto.py": ".verify(",
        "adapters/alipay/crypto.py": ".verify(",
        "channels_crm/sso.py": "jwt.decode(",
    }
    for file, call in sources.items():
        assert call in (ROOT / file).read_text(), file


# --- and at run time: a hostile header is refused, not a 500 --------------------------------

NON_ASCII = "\u00e9" * 64  # what a latin-1 byte in a header becomes in Django


@pytest.mark.django_db
def test_sms_inbound_refuses_a_non_ascii_signature_with_403():
    body = json.dumps({"from": "13800000001", "text": "Y"}).encode()
    client = Client(raise_request_exception=False)
    response = client.post("/sms/inbound/", data=body, content_type="application/json", HTTP_X_SIGNATURE=NON_ASCII)
    assert response.status_code == 403


@pytest.mark.django_db
def test_sms_inbound_still_accepts_the_right_signature_and_refuses_a_wrong_one():
    body = json.dumps({"from": "13800000009", "text": "Y", "received_at": "2026-11-25T12:00:00+08:00"}).encode()
    key = secret("SMS_WEBHOOK_SECRET", sandbox_file="sms_webhook_secret.txt").encode()
    good = hmac.new(key, body, hashlib.sha256).hexdigest()
    client = Client()
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert client.post("/sms/inbound/", body, "application/json", HTTP_X_SIGNATURE=wrong).status_code == 403
    response = client.post("/sms/inbound/", body, "application/json", HTTP_X_SIGNATURE=good.upper())
    assert response.status_code == 200, response.content
    assert response.json() == {"outcome": "none_pending"}


@pytest.mark.django_db
def test_sms_inbound_compares_with_both_secrets_whichever_signed(settings, monkeypatch):
    """While the gateway switches secrets (SMS_WEBHOOK_SECRET_PREVIOUS), a signature is compared in constant
    time with each secret, every time: a reply under the current one does not answer sooner than one under the
    previous, nor a forged one sooner than either."""
    from callbacks import views

    compared: list[int] = []

    def counting(given: str, expected: str) -> bool:
        compared.append(1)
        return views_same_secret(given, expected)

    views_same_secret = views.same_secret
    monkeypatch.setattr(views, "same_secret", counting)
    previous = secrets.token_urlsafe(32)
    settings.SMS_WEBHOOK_SECRET_PREVIOUS = previous
    current = secret("SMS_WEBHOOK_SECRET", sandbox_file="sms_webhook_secret.txt")
    client = Client()
    answers = []
    for n, key in enumerate((current, previous, secrets.token_urlsafe(32))):
        body = json.dumps({"from": f"1380000009{n}", "text": "Y", "received_at": "2026-11-25T12:00:00+08:00"}).encode()
        compared.clear()
        response = client.post(
            "/sms/inbound/",
            body,
            "application/json",
            HTTP_X_SIGNATURE=hmac.new(key.encode(), body, "sha256").hexdigest(),
        )
        answers.append((response.status_code, len(compared)))

    assert answers == [(200, 2), (200, 2), (403, 2)]


@pytest.mark.django_db
def test_metrics_refuses_a_non_ascii_token_with_401(settings):
    settings.METRICS_TOKEN = "metrics-token-for-the-test"
    response = Client(raise_request_exception=False).get("/metrics/", HTTP_AUTHORIZATION=f"Bearer {NON_ASCII}")
    assert response.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["smp/api/precheck", "sms/api/messages", "crm/api/activities"])
def test_the_sandbox_apis_refuse_a_non_ascii_token_with_401(path):
    response = Client(raise_request_exception=False).post(
        f"/sandbox/{path}", data="{}", content_type="application/json", HTTP_AUTHORIZATION=NON_ASCII
    )
    assert response.status_code == 401
