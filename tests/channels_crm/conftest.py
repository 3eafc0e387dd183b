from __future__ import annotations

import pytest
from django.test import Client

from ipvas.keyfiles import sandbox_public_key_pem
from tests.channels_crm.support import CRM_KEY, sign_in


@pytest.fixture(autouse=True)
def _crm_public_key(settings) -> None:
    """Verify tickets with a configured CRM public key, as production does (the sandbox key's public half).

    Without it the sandbox derives the public key from the private key file on
    every sign-in; tests of that fallback set CRM_SSO_PUBLIC_KEY back to "".
    """
    settings.CRM_SSO_PUBLIC_KEY = sandbox_public_key_pem(CRM_KEY)


@pytest.fixture
def clerk(demo) -> Client:
    """The demo clerk (clerk01, store NX-YC-001, virtual staff id V0001), signed in by a real ticket."""
    return sign_in()


@pytest.fixture
def clock(time_machine):
    """Time as it is now, ticking, and ready to be moved by ``clock.shift(...)``."""
    from django.utils import timezone

    time_machine.move_to(timezone.now(), tick=True)
    return time_machine
