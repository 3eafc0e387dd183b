"""The sales dashboard in a real browser: Debian's Chromium, headless, through Playwright.

Skipped where /usr/bin/chromium is missing, failing instead in CI. The
screenshot is left in test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from tests.backoffice.test_reports_subscriptions import build_subscription_fixture
from tests.billing.test_reports import build_sales_fixture
from tests.support.browser import chromium_launched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

CHARTS = [
    "chart-revenue-by-day",
    "chart-orders-by-day",
    "chart-revenue-by-channel",
    "chart-revenue-by-method",
    "chart-revenue-by-product",
    "chart-revenue-by-store",
    "chart-funnel",
    "chart-renewals-by-day",
    "chart-renewal-revenue-by-day",
    "chart-subscriptions-by-day",
    "chart-renewal-stops",
]


def root_session() -> str:
    """The session cookie's value of a superuser signed in (made before the browser starts)."""
    admin = get_user_model().objects.create_superuser("root", email="", password="unused-password-1")
    client = Client()
    client.force_login(admin)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def watched_page(browser, site: str, session: str, problems: list[str]):  # type: ignore[no-untyped-def]
    """A page signed in with ``session`` at 1280 px in English; what goes wrong on it is added to ``problems``:
    an error in the console, a request that failed, an answer of 400 or more but /favicon.ico's (the browser
    asks for it on its own, and the site has none: not the page's doing)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": site}])
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status}: {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None
        ),
    )
    return page


def test_the_dashboard_charts_render_in_chromium(live_server):
    # Everything the database needs happens before the browser starts.
    first_day = timezone.localdate() - timedelta(days=2)
    build_sales_fixture(first_day)
    session = root_session()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / "reports-dashboard.png"

    problems: list[str] = []
    with chromium_launched() as browser:
        page = watched_page(browser, live_server.url, session, problems)
        response = page.goto(f"{live_server.url}/admin/reports/?day={first_day.isoformat()}")
        assert response is not None and response.status == 200
        assert page.title().startswith("Sales dashboard")
        assert page.locator("h1").inner_text() == "Sales dashboard"

        for chart_id in CHARTS:
            chart = page.locator(f"svg#{chart_id}")
            assert chart.count() == 1, chart_id
            box = chart.bounding_box()
            assert box is not None and box["width"] >= 300 and box["height"] >= 60, (chart_id, box)
            assert chart.locator("title").first.text_content()
        # Data reached the charts: a line with a point per day, bars with a height.
        assert page.locator("#chart-revenue-by-day circle").count() == 2 * 30
        heights = page.locator("#chart-orders-by-day rect").evaluate_all("rects => rects.map(r => r.getBBox().height)")
        assert sum(1 for h in heights if h > 1) >= 6
        # The stylesheet was served and applied (no CDN: it is ours).
        display = page.locator(".reports-totals").evaluate("e => getComputedStyle(e).display")
        assert display == "flex"
        assert page.locator("#table-cash_totals td", has_text="张三").count() == 1

        page.screenshot(path=str(screenshot), full_page=True)
        # The first screen at full size, where the details of the charts can be seen.
        page.screenshot(path=str(SCREENSHOTS / "reports-dashboard-top.png"))
    assert problems == []
    assert screenshot.stat().st_size > 10_000


def test_the_subscription_charts_render_in_chromium(live_server):
    """The renewals and subscriptions of the lived fixture (tests/backoffice/test_reports_subscriptions.py)."""
    import io

    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    build_subscription_fixture()
    session = root_session()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    problems: list[str] = []
    with chromium_launched() as browser:
        page = watched_page(browser, live_server.url, session, problems)
        response = page.goto(f"{live_server.url}/admin/reports/?start=2026-01-25&end=2026-02-14")
        assert response is not None and response.status == 200
        for chart_id in (*CHARTS[-4:], "chart-renewal-failures"):
            chart = page.locator(f"svg#{chart_id}")
            assert chart.count() == 1, chart_id
            box = chart.bounding_box()
            assert box is not None and box["width"] >= 300 and box["height"] >= 60, (chart_id, box)
        # A point per day and series on the line of subscriptions; the renewal bars have heights.
        assert page.locator("#chart-subscriptions-by-day circle").count() == 2 * 21
        heights = page.locator("#chart-renewals-by-day rect").evaluate_all(
            "rects => rects.map(r => r.getBBox().height)"
        )
        assert sum(1 for h in heights if h > 1) >= 5
        assert page.locator("#table-renewal_failures td", has_text="account_suspended").count() == 1
        section = page.locator("#report-renewals_by_day")
        section.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "reports-subscriptions.png"), full_page=True)
        page.locator("#report-subscriptions_by_day").screenshot(
            path=str(SCREENSHOTS / "reports-subscriptions-by-day.png")
        )
        section.screenshot(path=str(SCREENSHOTS / "reports-renewals-by-day.png"))
    assert problems == []
