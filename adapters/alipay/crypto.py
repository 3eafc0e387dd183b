"""Alipay's RSA2 algorithm: SHA256withRSA over the sorted "key=value" pairs joined by "&".

``sign`` and ``sign_type`` are left out of the signed string; values are
taken as received (URL-decoded), as python-alipay-sdk and Alipay's own SDKs do.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256


def signing_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))


def sign(private_key: RSAPrivateKey, params: Mapping[str, str]) -> str:
    signature = private_key.sign(signing_string(params).encode(), padding.PKCS1v15(), SHA256())
    return base64.b64encode(signature).decode()


def sign_string(private_key: RSAPrivateKey, content: str) -> str:
    signature = private_key.sign(content.encode(), padding.PKCS1v15(), SHA256())
    return base64.b64encode(signature).decode()


def verify(public_key: RSAPublicKey, params: Mapping[str, str], signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key.verify(raw, signing_string(params).encode(), padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True
