"""WeChat Pay APIv2's algorithms, for the calls that only APIv2 has (委托代扣: pay and sign, end a contract) and
their notifications: XML bodies, signed with the APIv2 key.

Signature (WeChat Pay 签名生成算法): the non-empty parameters but ``sign``, sorted by name, joined as
``k=v&k=v``, then ``&key=<APIv2 key>``; MD5 of that (the default), or HMAC-SHA256 keyed with the APIv2 key
when ``sign_type`` says ``HMAC-SHA256``; upper-case hex. The XML is flat: ``<xml><k><![CDATA[v]]></k>…</xml>``.
Answers and notifications are untrusted XML: a document type, an entity or a nested element is refused
before anything else is read, so that no entity can expand.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from xml.etree import ElementTree

from ipvas.secrets_compare import same_secret

MD5 = "MD5"
HMAC_SHA256 = "HMAC-SHA256"
MAX_BYTES = 64 * 1024
_UNSAFE = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


# The contract is gone at WeChat Pay (the user ended it, or it never existed, or it expired: CONTRACTERROR
# 协议已过期): nothing to deduct, nothing to end.
CONTRACT_GONE_CODES = {
    "CONTRACT_NOT_EXIST",
    "CONTRACTNOTEXIST",
    "CONTRACT_ERROR",
    "CONTRACTERROR",
    "CONTRACT_TERMINATED",
}


def signing_string(params: Mapping[str, str], key: str) -> str:
    pairs = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] not in ("", None))
    return f"{pairs}&key={key}"


def sign(params: Mapping[str, str], key: str, *, sign_type: str = MD5) -> str:
    message = signing_string(params, key).encode()
    if sign_type == HMAC_SHA256:
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest().upper()
    if sign_type == MD5:
        return hashlib.md5(message, usedforsecurity=False).hexdigest().upper()
    raise ValueError(f"unknown sign_type {sign_type!r}")


def verify(params: Mapping[str, str], key: str) -> bool:
    """Whether ``params`` carry a good signature under ``key`` (by the ``sign_type`` they declare, MD5 if none)."""
    signature = params.get("sign") or ""
    try:
        expected = sign(params, key, sign_type=params.get("sign_type") or MD5)
    except ValueError:
        return False
    return bool(signature) and same_secret(signature.upper(), expected)


def signed(params: Mapping[str, str], key: str, *, sign_type: str = MD5) -> dict[str, str]:
    out = {k: str(v) for k, v in params.items() if v not in ("", None)}
    out["sign"] = sign(out, key, sign_type=sign_type)
    return out


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def to_xml(params: Mapping[str, str]) -> bytes:
    inner = "".join(f"<{k}>{_cdata(str(v))}</{k}>" for k, v in params.items())
    return f"<xml>{inner}</xml>".encode()


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The flat ``<xml>`` of APIv2 as a dict; ``ValueError`` for anything else."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BYTES:
        raise ValueError("the XML is too large")
    if _UNSAFE.search(raw):
        raise ValueError("a document type or entity declaration is not allowed")
    try:
        # Safe here: declarations are refused above (no entity can expand), and expat fetches nothing.
        root = ElementTree.fromstring(raw)  # noqa: S314
    except (ElementTree.ParseError, LookupError) as exc:  # LookupError: an encoding expat does not know
        raise ValueError(f"not XML: {exc}") from None
    if root.tag != "xml":
        raise ValueError("the root element must be <xml>")
    params: dict[str, str] = {}
    for child in root:
        if len(child):
            raise ValueError(f"<{child.tag}> must hold text only")
        params[child.tag] = child.text or ""
    return params
