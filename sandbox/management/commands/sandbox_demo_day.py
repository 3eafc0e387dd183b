"""``manage.py sandbox_demo_day [--day YYYY-MM-DD]``: a finished day of demo sales, reconciled (sandbox/demo_day.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.demo_day import build_demo_day


class Command(BaseCommand):
    help = (
        "Live a day in the sandbox (yesterday by default): demo orders on the TV and at the counter through the "
        "system's own services, with the clock set back, then reconcile it three ways. Idempotent per day."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", type=date.fromisoformat, default=None, help="a day that is over (YYYY-MM-DD)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            build_demo_day(options["day"], say=self.stdout.write)
        except (RuntimeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
