"""Debian's Chromium through Playwright, as every browser test drives it (never a downloaded browser)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def need_chromium() -> None:
    """Fail in CI, skip elsewhere, when Debian's chromium package is not installed."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing")


@contextmanager
def playwright_started() -> Iterator[Any]:
    """Playwright's sync API, with Django's ORM allowed between browser steps.

    The sync API keeps an event loop on this thread, inside which Django refuses ORM calls; the calls the tests
    make between key presses (run_due_tasks, a look at an order) are synchronous all the same."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        yield playwright
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@contextmanager
def chromium_launched() -> Iterator[Any]:
    """A headless Chromium, closed afterwards."""
    with playwright_started() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
