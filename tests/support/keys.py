"""RSA keys the tests make for the partners that are not the sandbox's (a forger, a key a partner switches to,
an operator's installed keys), as each partner makes its own: never in the repo, one per role and test run."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@cache
def made_key(role: str) -> rsa.RSAPrivateKey:
    """The key of ``role``, made on first use (~0.1 s), the same one for the rest of the run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
