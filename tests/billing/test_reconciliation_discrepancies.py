"""Issue #18, points 5 and 6: every discrepancy reaches a person, every source is accounted for.

A discrepancy opens a ``Discrepancy`` (one per discrepancy, kept across the
re-runs of its day, closed when a later run matches it); a person annotates
or resolves it with a reason, audited; a pair that straddles midnight is
closed on the other day instead of staying open on both; the runs list, the
dashboard and the logs say which sources a run compared and never call a day
clean while one is missing.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import date, datetime, timedelta
from typing import BinaryIO
from zoneinfo import ZoneInfo

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client, TestCase

from billing.models import Discrepancy, LedgerEntry, ReconciliationRun
from billing.reconciliation import services
from billing.reconciliation.discrepancies import discrepancy_annotate, discrepancy_resolve
from billing.reconciliation.importer import statement_import
from billing.reconciliation.services import reconcile_day
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidInput, InvalidState
from lifecycle.paying import payment_choose
from orders.models import Order
from sandbox import statements as sandbox_statements
from sandbox.models import SimSmpSubscription, SimTrade
from tests.billing.test_reconciliation_audit import EPG, epg_buy, epg_order
from tests.epg_api.support import provider_pay, settle

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 25)
NEXT = DAY + timedelta(days=1)
LOCAL = ZoneInfo("Asia/Shanghai")
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
PERSON = Actor(ActorKind.ADMIN, "finance")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LOCAL)


def text_of(page: bytes) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.decode()))).strip()


@pytest.fixture
def lost_subscription(demo, time_machine) -> Order:
    """A day where the SMP's list lost one paid order's subscription: one discrepancy."""
    time_machine.move_to(local("2026-11-25 10:00:00"), tick=True)
    epg_buy("wechat_qr")
    lost = epg_buy("alipay_qr")
    SimSmpSubscription.objects.filter(order_no=lost.order_no).update(created_at=local("2026-11-24 10:00:00"))
    time_machine.move_to(local("2026-11-26 09:00:00"), tick=True)
    return lost


def test_a_discrepancy_opens_once_stays_open_across_runs_and_closes_when_a_later_run_matches(lost_subscription):
    run = reconcile_day(DAY)
    assert run.paid_not_provisioned == 1
    (discrepancy,) = Discrepancy.objects.all()
    assert (discrepancy.day, discrepancy.source, discrepancy.kind, discrepancy.outcome, discrepancy.order_no) == (
        DAY, "smp", "subscription", "paid_not_provisioned", lost_subscription.order_no,
    )  # fmt: skip
    assert discrepancy.status == "open" and discrepancy.our_amount_fen == 2500
    assert list(discrepancy.events.values_list("action", "actor_kind", "actor_id")) == [
        ("opened", "system", "reconciliation")
    ]
    for _ in range(2):  # the same run again: the same discrepancy, refreshed, not a second one
        again = reconcile_day(DAY, triggered_by="again")
        discrepancy.refresh_from_db()
        assert Discrepancy.objects.count() == 1 and discrepancy.seen_in_run == again.pk
        assert discrepancy.events.count() == 1 and discrepancy.status == "open"
    # The SMP sends a corrected list: the next run matches, and closes it.
    SimSmpSubscription.objects.filter(order_no=lost_subscription.order_no).update(
        created_at=local("2026-11-25 10:01:00")
    )
    corrected = sandbox_statements.statement_file("smp", DAY)
    statement_import(source="smp", day=DAY, stream=corrected, file_name="corrected.csv", replace=True)
    run = reconcile_day(DAY, fetch=False, triggered_by="admin:finance")
    assert run.clean
    discrepancy.refresh_from_db()
    assert discrepancy.status == "matched_later" and discrepancy.closed_by == "system:reconciliation"
    assert discrepancy.events.last().action == "matched"
    # Found again (the first list comes back): opened again, the same row.
    SimSmpSubscription.objects.filter(order_no=lost_subscription.order_no).update(
        created_at=local("2026-11-24 10:00:00")
    )
    statement_import(source="smp", day=DAY, stream=sandbox_statements.statement_file("smp", DAY), replace=True)
    reconcile_day(DAY, fetch=False)
    discrepancy.refresh_from_db()
    assert discrepancy.status == "open" and Discrepancy.objects.count() == 1
    assert list(discrepancy.events.values_list("action", flat=True)) == ["opened", "matched", "reopened"]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_matches_a_discrepancy_a_person_is_resolving_leaves_it_resolved(lost_subscription):
    """A person resolves while a run finds the line matched: the run waits for the person's commit and leaves
    the resolution alone (it used to overwrite it with 'matched later' and its own note)."""
    import threading
    import time

    from django.db import connection, transaction

    from tests.support.concurrency import require_postgresql

    require_postgresql()
    reconcile_day(DAY)
    (discrepancy,) = Discrepancy.objects.all()
    SimSmpSubscription.objects.filter(order_no=lost_subscription.order_no).update(
        created_at=local("2026-11-25 10:01:00")
    )
    corrected = sandbox_statements.statement_file("smp", DAY)
    statement_import(source="smp", day=DAY, stream=corrected, file_name="corrected.csv", replace=True)
    resolving, errors = threading.Event(), []

    def person() -> None:
        try:
            with transaction.atomic():
                discrepancy_resolve(discrepancy_id=discrepancy.pk, note="subscribed by hand, ticket 4712", actor=PERSON)
                resolving.set()
                time.sleep(1.5)  # the run meanwhile reaches the discrepancy and waits for this commit
        except BaseException as exc:
            errors.append(exc)
            resolving.set()
        finally:
            connection.close()

    thread = threading.Thread(target=person)
    thread.start()
    assert resolving.wait(30)
    run = reconcile_day(DAY, fetch=False, triggered_by="admin:finance")
    thread.join(30)
    assert not errors and run.clean
    discrepancy.refresh_from_db()
    assert (discrepancy.status, discrepancy.resolution) == ("resolved", "subscribed by hand, ticket 4712")
    assert list(discrepancy.events.values_list("action", flat=True)) == ["opened", "resolved"]


def test_a_person_resolves_or_annotates_with_a_reason_and_it_is_kept(lost_subscription):
    reconcile_day(DAY)
    discrepancy = Discrepancy.objects.get()
    with pytest.raises(InvalidInput):
        discrepancy_resolve(discrepancy_id=discrepancy.pk, note="  ", actor=PERSON)
    discrepancy_annotate(discrepancy_id=discrepancy.pk, note="asked the SMP for its list again", actor=PERSON)
    discrepancy.refresh_from_db()
    assert discrepancy.status == "open" and discrepancy.last_note == "asked the SMP for its list again"
    discrepancy_resolve(discrepancy_id=discrepancy.pk, note="subscribed by hand at the SMP, ticket 4711", actor=PERSON)
    with pytest.raises(InvalidState):
        discrepancy_resolve(discrepancy_id=discrepancy.pk, note="again", actor=PERSON)
    discrepancy.refresh_from_db()
    assert (discrepancy.status, discrepancy.closed_by, discrepancy.resolution) == (
        "resolved", "admin:finance", "subscribed by hand at the SMP, ticket 4711",
    )  # fmt: skip
    assert list(discrepancy.events.values_list("action", "actor_kind", "actor_id", "note")) == [
        ("opened", "system", "reconciliation", "task"),
        ("annotated", "admin", "finance", "asked the SMP for its list again"),
        ("resolved", "admin", "finance", "subscribed by hand at the SMP, ticket 4711"),
    ]
    # A later run that still finds it leaves a person's decision alone.
    reconcile_day(DAY)
    discrepancy.refresh_from_db()
    assert discrepancy.status == "resolved" and discrepancy.events.count() == 3
    with pytest.raises(Exception, match="append-only"):
        discrepancy.events.first().delete()


@pytest.fixture
def staff(db, django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("finance", "finance@example.com", "pw"))
    return client


def test_the_admin_settles_a_discrepancy_with_a_reason_audited(lost_subscription, staff, django_user_model):
    reconcile_day(DAY)
    discrepancy = Discrepancy.objects.get()
    listing = staff.get("/admin/billing/discrepancy/", {"status__exact": "open"}, **EN)
    assert listing.status_code == 200
    text = text_of(listing.content)
    assert lost_subscription.order_no in text and "paid, not provisioned" in text
    assert f"not in the SMP's list of {DAY}" in text
    runs = staff.get("/admin/billing/reconciliationrun/", **EN).content.decode()
    link = f"/admin/billing/discrepancy/?day={DAY}&amp;status__exact=open"
    assert link in runs  # the runs list counts the day's open discrepancies and leads to them
    assert lost_subscription.order_no in staff.get(html.unescape(link), **EN).content.decode()
    url = f"/admin/billing/discrepancy/{discrepancy.pk}/act/"
    assert staff.get(url, **EN).status_code == 200
    refused = staff.post(url, {"action": "resolve", "note": ""}, **EN)
    assert refused.status_code == 200 and Discrepancy.objects.get().status == "open"
    done = staff.post(url, {"action": "resolve", "note": "the SMP re-sent its list; fine"}, **EN)
    assert done.status_code == 302
    discrepancy.refresh_from_db()
    assert discrepancy.status == "resolved" and discrepancy.closed_by == "admin:finance"
    assert LogEntry.objects.filter(object_id=str(discrepancy.pk), change_message__contains="resolve").exists()
    assert staff.get(f"/admin/billing/discrepancy/{discrepancy.pk}/change/", **EN).status_code == 200
    # Reading needs the view permission; settling needs billing.change_discrepancy.
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_discrepancy"))
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/billing/discrepancy/").status_code == 200
    assert client.post(url, {"action": "annotate", "note": "x"}).status_code == 403
    # The work queue leads to them.
    queue = staff.get("/admin/billing/workitem/", **EN).content.decode()
    assert "/admin/billing/discrepancy/?status__exact=open" in queue


# --- across midnight -----------------------------------------------------------------------------


def test_a_payment_and_its_subscription_on_two_days_are_paired_not_left_open_on_both(demo, time_machine):
    """Paid at 23:59:58, provisioned at 00:00:02: the first day's run cannot know; the next day's closes it."""
    time_machine.move_to(local("2026-11-25 23:59:50"), tick=False)
    order = epg_order()
    payment_choose(order_id=order.pk, method="wechat_qr", actor=EPG)
    settle()
    time_machine.move_to(local("2026-11-25 23:59:58"), tick=False)
    # The notification is recorded now; provisioning is a task that runs after midnight.
    with TestCase.captureOnCommitCallbacks(execute=False):
        assert provider_pay("wechat_qr", order.order_no)["delivered"] is True
    assert LedgerEntry.objects.get(order=order).created_at == local("2026-11-25 23:59:58")
    time_machine.move_to(local("2026-11-26 00:00:02"), tick=False)
    settle()
    order.refresh_from_db()
    assert order.status == "completed"
    time_machine.move_to(local("2026-11-26 09:00:00"), tick=False)
    first = reconcile_day(DAY)
    assert first.paid_not_provisioned == 1  # the SMP's list of the 26th does not exist yet
    (left_open,) = Discrepancy.objects.filter(status="open")
    time_machine.move_to(local("2026-11-27 09:00:00"), tick=False)
    second = reconcile_day(NEXT)
    assert second.clean
    item = second.items.get(source="smp", kind="subscription")
    assert (item.outcome, item.paired_day) == ("matched", DAY)
    left_open.refresh_from_db()
    assert left_open.status == "matched_later" and left_open.events.last().action == "paired"
    # The first day run again now sees the list of the 26th: matched there too, nothing opens.
    again = reconcile_day(DAY)
    assert again.clean and again.items.get(source="smp").paired_day == NEXT
    assert not Discrepancy.objects.filter(status="open").exists()


def test_a_payment_listed_by_the_provider_before_midnight_and_booked_here_after_is_matched_on_both_days(
    demo, time_machine
):
    time_machine.move_to(local("2026-11-26 00:00:01"), tick=False)
    order = epg_buy("wechat_qr")
    # WeChat Pay's clock: paid before midnight (its bill of the 25th lists it); ours booked it after.
    SimTrade.objects.filter(out_trade_no=order.order_no).update(paid_at=local("2026-11-25 23:59:59"))
    time_machine.move_to(local("2026-11-27 09:00:00"), tick=False)
    first = reconcile_day(DAY)
    payment = first.items.get(source="wechatpay")
    assert (payment.outcome, payment.paired_day, payment.our_amount_fen) == ("matched", NEXT, 2500)
    second = reconcile_day(NEXT)
    payment = second.items.get(source="wechatpay")
    assert (payment.outcome, payment.paired_day) == ("matched", DAY)
    assert first.clean and second.clean and not Discrepancy.objects.exists()


# --- every source accounted for ------------------------------------------------------------------------


def test_a_skipped_source_is_never_a_clean_day(demo, staff, time_machine, settings, caplog):
    time_machine.move_to(local("2026-11-26 09:00:00"), tick=True)
    statement_import(source="smp", day=DAY, stream=sandbox_statements.statement_file("smp", DAY))
    with caplog.at_level(logging.INFO, logger="billing.reconciliation.services"):
        run = reconcile_day(DAY, fetch=False, triggered_by="admin:finance")
    assert run.discrepancies == 0 and not run.clean and run.uncompared == ["wechatpay", "alipay"]
    (record,) = [r for r in caplog.records if r.name == "billing.reconciliation.services"]
    assert record.levelno == logging.WARNING
    assert "incomplete; sources wechatpay=missing alipay=missing smp=compared" in record.getMessage()
    # A run by hand reports a missing source as a discrepancy of its own.
    assert set(Discrepancy.objects.values_list("source", "outcome", "status")) == {
        ("wechatpay", "not_compared", "open"),
        ("alipay", "not_compared", "open"),
    }
    page = text_of(staff.get("/admin/billing/reconciliationrun/", **EN).content)
    assert "Incomplete: not compared: WeChat Pay trade bill (missing: not compared)" in page
    assert "Clean" not in page
    dashboard = text_of(staff.get("/admin/reports/", **EN).content)
    assert f"{DAY}: Incomplete: not compared" in dashboard
    assert "WeChat Pay trade bill missing: not compared" in dashboard
    # Compared later: clean, and the missing-source discrepancies close.
    run = reconcile_day(DAY, fetch=True)
    assert run.clean
    assert set(Discrepancy.objects.values_list("status", flat=True)) == {"matched_later"}
    page = text_of(staff.get("/admin/billing/reconciliationrun/", **EN).content)
    assert "Clean: every source compared, nothing differs" in page


def test_the_morning_job_reports_a_missing_source_only_when_it_gives_up(db, time_machine, settings, caplog):
    time_machine.move_to(local("2026-11-26 09:00:00"), tick=False)
    settings.WECHATPAY_ADAPTER = "adapters.wechatpay.client.WechatPayClient"
    settings.WECHATPAY_GATEWAY = "http://127.0.0.1:9"  # nothing listens there
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.5
    result = services.reconcile_scheduled(day=DAY.isoformat(), attempt=0)
    assert result.endswith("not compared: wechatpay; again later")
    assert not Discrepancy.objects.exists()  # it will look again in 30 minutes
    result = services.reconcile_scheduled(day=DAY.isoformat(), attempt=services.MAX_ATTEMPTS - 1)
    assert result == "2026-11-25: 0 matched, 0 discrepancies; not compared: wechatpay"
    (missing,) = Discrepancy.objects.all()
    assert (missing.source, missing.outcome, missing.status) == ("wechatpay", "not_compared", "open")
    run = ReconciliationRun.objects.get()
    assert (run.wechatpay_state, run.alipay_state, run.smp_state) == ("missing", "compared", "compared")


def test_a_refused_statement_is_shown_as_refused(demo, time_machine, monkeypatch):
    time_machine.move_to(local("2026-11-26 09:00:00"), tick=True)

    def maintenance_page(day: date, out: BinaryIO) -> int:  # each simulator answers, but not with a statement
        return out.write(b"<html>maintenance</html>\r\n")

    monkeypatch.setattr(sandbox_statements, "WRITERS", dict.fromkeys(sandbox_statements.WRITERS, maintenance_page))
    run = reconcile_day(DAY)
    assert run.source_states() == {"wechatpay": "refused", "alipay": "refused", "smp": "refused"}
    assert "smp: the fetched file was refused (line 1: not an SMP provisioning list" in run.notes
    assert not run.clean and set(Discrepancy.objects.values_list("outcome", flat=True)) == {"not_compared"}


def test_the_dashboard_shows_the_latest_runs_counts_and_sources(lost_subscription, staff):
    reconcile_day(DAY)
    page = staff.get("/admin/reports/", **EN)
    assert page.status_code == 200
    text = text_of(page.content)
    assert f"{DAY}: 1 discrepancy" in text
    assert "paid, not provisioned 1" in text
    assert "WeChat Pay trade bill compared" in text and "SMP provisioning list compared" in text
    assert "Open discrepancies: 1 of this day, 1 in all" in text
    assert 'class="reconciliation-outcome-paid_not_provisioned"' in page.content.decode()
