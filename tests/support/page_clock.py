"""Playwright's clock for a browser context's pages, standing still until the test moves it."""

from __future__ import annotations

from typing import Any

SOME_MOMENT = 1_780_000_000_000  # ms since the epoch: any moment will do


def stop_the_page_clock(context: Any) -> None:
    """From now on the pages' timers fire only when the test moves their clock (``page.clock.run_for``): what a
    test checks is when a page acts, not how fast this machine happens to be."""
    context.clock.install(time=SOME_MOMENT)
    context.clock.pause_at(SOME_MOMENT + 1000)
