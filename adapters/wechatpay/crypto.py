"""WeChat Pay API v3's algorithms: SHA256withRSA signatures, AEAD_AES_256_GCM resources.

Message signed: "<timestamp>\\n<nonce>\\n<body>\\n". Resource: AES-256-GCM with
the 32-byte APIv3 key, a 12-character nonce and the associated data, the
ciphertext base64 of ciphertext||tag. The same as the wechatpayv3 SDK
(tests check both ways).
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256


def _message(timestamp: str, nonce: str, body: bytes | str) -> bytes:
    raw = body.encode() if isinstance(body, str) else body
    return timestamp.encode() + b"\n" + nonce.encode() + b"\n" + raw + b"\n"


def sign(private_key: RSAPrivateKey, *, timestamp: str, nonce: str, body: bytes | str) -> str:
    signature = private_key.sign(_message(timestamp, nonce, body), padding.PKCS1v15(), SHA256())
    return base64.b64encode(signature).decode()


def verify(public_key: RSAPublicKey, *, timestamp: str, nonce: str, body: bytes | str, signature: str) -> bool:
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        public_key.verify(raw_signature, _message(timestamp, nonce, body), padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def encrypt_resource(apiv3_key: str, *, nonce: str, associated_data: str, plaintext: str) -> str:
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return base64.b64encode(sealed).decode()


def decrypt_resource(apiv3_key: str, *, nonce: str, associated_data: str, ciphertext: str) -> str | None:
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return AESGCM(apiv3_key.encode()).decrypt(nonce.encode(), sealed, associated_data.encode()).decode()
    except (InvalidTag, ValueError, UnicodeDecodeError):
        return None
