"""``python manage.py reconcile --date YYYY-MM-DD [--wechatpay FILE] [--alipay FILE] [--smp FILE] [--no-fetch]``"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.translation import gettext

from billing.models.reconciliation import COMPARED_STATES
from billing.reconciliation.parsers import StatementError
from billing.reconciliation.refusals import notes_text
from billing.reconciliation.services import ReconciliationBusy, reconcile_day, statements_import, summary


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date {value!r} is not a date like 2026-11-25") from None


class Command(BaseCommand):
    help = (
        "Reconcile a day: import the given statement files (each whole or not at all, replacing the one of "
        "that kind imported before), fetch the missing ones unless --no-fetch, and compare them with the "
        "ledger. Running a day again replaces its previous result."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", required=True, help="the day, YYYY-MM-DD (local time)")
        parser.add_argument("--wechatpay", type=Path, help="WeChat Pay's trade bill of the day (CSV)")
        parser.add_argument("--alipay", type=Path, help="Alipay's …_业务明细.csv of the day (GBK)")
        parser.add_argument("--smp", type=Path, help="the SMP's provisioning list of the day (CSV)")
        parser.add_argument(
            "--no-fetch", action="store_true", help="do not download statements that are not imported yet"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = _day(options["date"])
        if day >= timezone.localdate():
            raise CommandError(f"{day} is not over yet: only a past day can be reconciled")
        paths = {source: options[source] for source in ("wechatpay", "alipay", "smp") if options[source]}
        for source, file in paths.items():
            if not file.is_file():
                raise CommandError(f"--{source} {file}: no such file")
        try:
            with ExitStack() as stack:
                files = {source: (file.name, stack.enter_context(file.open("rb"))) for source, file in paths.items()}
                for statement in statements_import(day=day, files=files, imported_by="command"):
                    self.stdout.write(f"imported {statement.source} {statement.file_name}: {statement.row_count} rows")
            run = reconcile_day(day, fetch=not options["no_fetch"], triggered_by="command")
        except StatementError as exc:
            # The refusal in the process's language (settings.LANGUAGE_CODE), as admin says it in the reader's.
            where = f"--{exc.source} {paths[exc.source]}: " if exc.source in paths else ""
            raise CommandError(gettext("%(refusal)s; nothing was imported") % {"refusal": f"{where}{exc}"}) from exc
        except ReconciliationBusy as exc:
            raise CommandError(str(exc)) from exc
        for source, state in run.source_states().items():
            line = f"{source}: {state}"
            self.stdout.write(line if state in COMPARED_STATES else self.style.WARNING(line))
        for note in filter(None, notes_text(run.notes, run.refusals).splitlines()):
            self.stdout.write(self.style.WARNING(note))
        for outcome, count in run.counts().items():
            self.stdout.write(f"{outcome}: {count}")
        self.stdout.write(summary(run) if run.clean else self.style.WARNING(summary(run)))
