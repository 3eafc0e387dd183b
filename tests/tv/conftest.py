"""The TV pages in Debian's Chromium (Playwright), against the live server, driven by the keyboard alone.

The live server has no Celery worker: the tests run the due work themselves while they wait for a screen
(``support.wait_for``); the pages follow the order on their own (they poll), never by a reload from the test.
Every screen visited is saved under test-artifacts/tv/.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from tests.epg_api.support import new_api_key
from tests.tv.support import CHROMIUM, Shots, open_tv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the tests make between
    # key presses (run_due_tasks) are synchronous all the same.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
    )
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


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
