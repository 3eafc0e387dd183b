"""Order numbers: unique, at most 32 characters of [A-Za-z0-9], not guessable in sequence.

``20261125195030`` (local time, for people reading statements) followed by
10 random base-62 characters (about 59 bits): 24 characters, which leaves
room for the suffix a repeated provider order needs (billing.services).
"""

from __future__ import annotations

import secrets
import string

from django.utils import timezone

ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 10
ORDER_NO_LENGTH = 14 + RANDOM_LENGTH


def new_order_no() -> str:
    stamp = timezone.localtime().strftime("%Y%m%d%H%M%S")
    return stamp + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
