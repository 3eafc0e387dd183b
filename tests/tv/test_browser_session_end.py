"""Found by a review of the TV pages (2026-12-06), fixed in tv.js (a 403 or 410 reloads).

The session's 30 minutes end while a screen waits for its order (the QR or SMS screen): the screen's poll
answers 403, which ``tv.js`` takes for a network hiccup (anything but 200 is retried, forever), so the QR
screen stays up with its countdown run out ("checking the payment…"): a payment made now is never shown,
"Watch now" never comes, and the viewer is not told that the session ended nor given the way back to the EPG
that the ended page has (docs/interfaces.md, IPVAS §9: "a page after the 30 minutes ... 403. Each says so on a
TV-sized page, with a way back to return_url?result=cancel")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from epg_api.models import TvSession
from tests.tv.support import to_qr_screen

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_waiting_screen_says_so_when_the_session_ends(site, epg_key, tv):
    page = tv
    to_qr_screen(page, site, epg_key)

    TvSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))  # the 30 minutes are over

    page.locator(".screen-ended").wait_for(timeout=8000)  # the screen's next polls meet the end of the session
    assert "result=cancel" in page.locator("[data-action=back]").get_attribute("href")
