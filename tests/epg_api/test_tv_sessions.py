"""POST /api/epg/v1/tv-sessions/ (docs/interfaces.md §9): the EPG's server asks for a session of the TV pages;
its URL opens once within 120 s, then a cookie holds it for 30 minutes, bound to the account and the client."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from epg_api.models import EpgClient, TvSession
from epg_api.tasks import purge_ended_tv_sessions
from tests.epg_api.support import Api, error_of

BACK = "https://epg.example.com/vas/back?from=tv"


def open_session(api: Api, **body: object) -> dict[str, str]:
    body = {"tv_account": "tv1001", "return_url": BACK, **body}
    response = api.post("/tv-sessions/", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_a_session_is_a_one_time_url_that_expires_in_120_seconds(api):
    before = timezone.now()
    session = open_session(api)

    assert set(session) == {"session_id", "url", "expires_at"}
    assert urlsplit(session["url"]).path.startswith("/tv/launch/")
    expires = datetime.fromisoformat(session["expires_at"])
    assert timedelta(seconds=119) <= expires - before <= timedelta(seconds=121)
    row = TvSession.objects.get(session_id=session["session_id"])
    assert (row.tv_account, row.return_url, row.locale) == ("tv1001", BACK, "zh-Hans")
    assert row.client.name == "EPG test vendor"
    token = urlsplit(session["url"]).path.split("/")[3]
    assert token not in row.launch_token_hash  # only its hash is kept


def test_the_url_opens_once_and_sets_a_cookie_for_30_minutes(api):
    path = urlsplit(open_session(api)["url"]).path
    browser = Client()

    opened = browser.get(path)

    assert opened.status_code == 302 and opened["Location"] == "/tv/"
    cookie = opened.cookies["ipvas_tv"]
    assert (cookie["max-age"], cookie["path"], cookie["httponly"]) == (1800, "/tv/", True)
    assert browser.get("/tv/").status_code == 200
    again = Client().get(path)
    assert again.status_code == 410
    assert "tv1001" not in again.content.decode()


def test_an_expired_or_unknown_url_says_so(api, time_machine):
    path = urlsplit(open_session(api)["url"]).path
    time_machine.move_to(timezone.now() + timedelta(seconds=121))

    assert Client().get(path).status_code == 410
    assert Client().get("/tv/launch/not-a-token/").status_code == 403
    assert Client().get("/tv/launch/" + "x" * 200 + "/").status_code == 403


def test_the_cookie_ends_after_30_minutes(api, time_machine):
    browser = Client()
    browser.get(urlsplit(open_session(api)["url"]).path)
    time_machine.move_to(timezone.now() + timedelta(minutes=29))
    assert browser.get("/tv/").status_code == 200

    time_machine.move_to(timezone.now() + timedelta(minutes=2))
    assert browser.get("/tv/").status_code == 403


def test_a_revoked_client_ends_its_sessions(api):
    browser = Client()
    session = open_session(api)
    browser.get(urlsplit(session["url"]).path)
    EpgClient.objects.filter(pk=TvSession.objects.get().client_id).update(revoked=True)

    assert browser.get("/tv/").status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tv_account": "tv 1001"}, "tv_account"),
        ({"tv_account": 1001}, "tv_account"),
        ({"tv_account": None}, "tv_account"),
        ({"return_url": "ftp://epg.example.com/"}, "return_url"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
        ({"return_url": "/relative/path"}, "return_url"),
        ({"return_url": "https://epg.example.com/" + "a" * 500}, "return_url"),
        ({"return_url": "https://epg.example.com/a b"}, "return_url"),
        ({"return_url": "https://epg.example.com:99999/"}, "return_url"),
        ({"locale": "fr"}, "locale"),
        ({"content_id": "bad id"}, "content_id"),
        ({"product_code": "VIP-MONTH", "content_id": "MOVIE-001"}, "content_id"),
        ({"product_code": "PPV-MOVIE"}, "content_id"),
    ],
)
def test_bad_input_is_a_400_with_the_field(api, body, field):
    response = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK, **body})

    assert field in error_of(response, 400, "invalid")["fields"]
    assert not TvSession.objects.exists()


def test_missing_fields_unknown_product_no_key(api):
    assert {"tv_account", "return_url"} <= set(error_of(api.post("/tv-sessions/", {}), 400)["fields"])
    error_of(api.post("/tv-sessions/", raw="[]"), 400, "invalid")
    unknown = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK, "product_code": "NOPE"})
    error_of(unknown, 404, "product_not_found")
    error_of(Api("").post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK}), 401)


def test_english_and_a_named_product(api):
    session = open_session(api, locale="en", product_code="PPV-MOVIE", content_id="MOVIE-001")
    browser = Client()
    browser.get(urlsplit(session["url"]).path)

    page = browser.get("/tv/").content.decode()

    assert '<html lang="en">' in page and "MOVIE-001" in page and 'data-action="method:wechat_qr"' in page


def test_ended_sessions_are_purged_a_day_later(api, time_machine):
    open_session(api)
    browser = Client()
    browser.get(urlsplit(open_session(api)["url"]).path)
    time_machine.move_to(timezone.now() + timedelta(hours=23))
    assert purge_ended_tv_sessions() == 0

    time_machine.move_to(timezone.now() + timedelta(hours=2))
    assert purge_ended_tv_sessions() == 2
    assert not TvSession.objects.exists()
