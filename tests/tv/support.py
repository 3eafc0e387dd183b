"""Driving the TV pages: a set-top box's browser (keyboard only), the EPG's server, the sandbox's world."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from tests.support.tasks import run_due_tasks

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "tv"
TV = (1280, 720)


class Shots:
    """Screenshots of the TV screen, named <test>-<step>.png."""

    def __init__(self, test_name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.test_name = test_name.replace("[", "-").replace("]", "")

    def __call__(self, page: Any, step: str) -> Path:
        path = SHOTS / f"{self.test_name}-{step}.png"
        page.screenshot(path=str(path))
        return path


def open_tv(browser: Any, size: tuple[int, int] = TV) -> Any:
    """A set-top box's browser: no pointer is used anywhere in these tests."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, has_touch=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.console_errors = []

    def on_console(message: Any) -> None:
        where = (message.location or {}).get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):
            page.console_errors.append(f"{message.text} at {where}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    return page


def return_url(site: str) -> str:
    """The EPG's page that the TV pages hand back to: any page of the live server that answers 200."""
    return f"{site}/healthz/?from=epg"


def new_session(site: str, key: str, **body: Any) -> str:
    """POST /api/epg/v1/tv-sessions/ as the EPG's server does; the launch URL on the live server."""
    body.setdefault("tv_account", "tv1001")
    body.setdefault("return_url", return_url(site))
    answer = requests.post(
        f"{site}/api/epg/v1/tv-sessions/", json=body, headers={"Authorization": f"Api-Key {key}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    return site + urlsplit(answer.json()["url"]).path


def focused(page: Any) -> str:
    """The data-action of the document's active element (DOM focus)."""
    return page.evaluate("() => document.activeElement && document.activeElement.getAttribute('data-action')") or ""


def press(page: Any, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def press_to_load(page: Any, key: str = "Enter") -> None:
    """Press a key that leaves the page (a link, a form, Back), and wait until the next page has loaded: the
    test's own database work must not race the server's handling of that request (SQLite in the tests)."""
    with page.expect_navigation():
        page.keyboard.press(key)


def wait_for(page: Any, selector: str, *, seconds: float = 20) -> None:
    """Run the due work as the worker would until ``selector`` shows (the page polls and reloads itself)."""
    locator = page.locator(selector)
    for _ in range(int(seconds * 5)):
        run_due_tasks()
        try:
            if locator.count() and locator.first.is_visible():
                return
        except Exception:  # the page is reloading  # noqa: S110
            pass
        page.wait_for_timeout(200)
    raise AssertionError(f"{selector} did not appear in {seconds} s; the page says: {page.inner_text('body')[:500]}")


def sandbox_post(site: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(f"{site}/sandbox/{path}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def decode_qr(png: bytes) -> str:
    """The text of the one QR code in a PNG (a screenshot of the TV), as a phone's camera reads it."""
    import io
    import os

    import pytest
    from PIL import Image

    try:
        from pyzbar.pyzbar import decode
    except ImportError as exc:  # pyzbar needs the zbar shared library
        if os.environ.get("CI"):
            pytest.fail(f"QR decoding needs pyzbar and libzbar in CI: {exc}")
        pytest.skip(f"QR decoding needs pyzbar and libzbar: {exc}")
    symbols = decode(Image.open(io.BytesIO(png)))
    assert len(symbols) == 1, symbols
    return symbols[0].data.decode()


def active_id(page: Any) -> str:
    return page.evaluate("() => document.activeElement && document.activeElement.id") or ""


def type_digits(page: Any, digits: str) -> None:
    for digit in digits:
        page.keyboard.press(digit)


def to_qr_screen(page: Any, site: str, key: str) -> str:
    """A new session for VIP-MONTH, WeChat Pay chosen and confirmed: its QR screen. Returns the order number."""
    page.goto(new_session(site, key, product_code="VIP-MONTH"))
    page.locator(".screen-product").wait_for()
    assert focused(page) == "method:wechat_qr"
    press_to_load(page)
    wait_for(page, ".screen-confirm")
    press_to_load(page)
    wait_for(page, ".screen-qr")
    return page.url.split("/orders/")[1].split("/")[0]
