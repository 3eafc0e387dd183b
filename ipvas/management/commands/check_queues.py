"""``manage.py check_queues``: exit 1 when a routed Celery queue has no worker (docs/operations.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ipvas.queues import consumed_queues, routed_queues, unconsumed


class Command(BaseCommand):
    help = "List the running Celery workers and their queues; fail when a routed queue has no worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the workers' answers")

    def handle(self, *args: Any, **options: Any) -> None:
        consumed = consumed_queues(timeout=options["timeout"])
        for worker, queues in sorted(consumed.items()):
            self.stdout.write(f"{worker}: {', '.join(sorted(queues))}")
        missing = unconsumed(routed_queues(), consumed)
        if not consumed:
            raise CommandError("no Celery worker answered: nothing will run (start one: docs/operations.md)")
        if missing:
            raise CommandError(f"no worker consumes {', '.join(missing)}: tasks routed there wait forever")
        self.stdout.write(f"every routed queue has a worker: {', '.join(sorted(routed_queues()))}")
