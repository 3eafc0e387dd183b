"""The TV pages in Debian's Chromium (Playwright), against the live server, driven by the keyboard alone.

The live server has no Celery worker: the tests run the due work themselves while they wait for a screen
(``support.wait_for``); the pages follow the order on their own (they poll), never by a reload from the test.
Every screen visited is saved under test-artifacts/tv/.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from tests.epg_api.support import new_api_key
from tests.support.browser import chromium_launched
from tests.tv.support import Shots, open_tv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_launched() as chromium:
        yield chromium


@pytest.fixture
def site(live_server, transactional_db) -> str:
    call_command("seed_demo", stdout=io.StringIO())
    return live_server.url


@pytest.fixture
def epg_key(site) -> str:
    return new_api_key("EPG on the set-top box")


@pytest.fixture
def shot(request) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def tv(browser) -> Iterator[Any]:
    page = open_tv(browser)
    yield page
    page.context.close()
