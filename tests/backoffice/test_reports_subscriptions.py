"""The subscription figures of the sales dashboard (backoffice.reports.subscriptions) against a fixture
computed by hand.

The fixture is lived, not planted: twelve customers subscribe to VIP-MONTH (25.00 a month) by auto-renewing
phone-bill orders through the real services, and time travels from December 2025 to 13 February 2026
while the beat's sweep and the worker do what is due (reminders, renewal orders, retries, lapses, ends).
Along the way a balance runs short, an account is suspended, the SMP goes down while a renewal is being
pre-checked, and customers cancel by SMS, on the TV, at the business hall and in admin. The expected
figures below were worked out on paper from the timeline in ``build_subscription_fixture``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db.models import Min
from django.utils import timezone, translation

from backoffice.reports import queries, subscriptions
from backoffice.reports.subscriptions import RenewalFailure, RenewalRow, RenewalStop, SubscriptionDay
from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from lifecycle.confirmations import sms_reply_received
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription
from sandbox import faults
from sandbox.models import SimSmpAccount
from tests.support.made_once import made_once
from tests.support.tasks import run_due_tasks

pytestmark = pytest.mark.django_db

LOCAL = ZoneInfo("Asia/Shanghai")
EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
CLERK = Actor(ActorKind.CLERK, "crm-c001")
ADMIN = Actor(ActorKind.ADMIN, "boss")
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
URL = "/admin/reports/"

D0, D1, D2, D3, D4, D5 = (date(2026, 2, 8) + timedelta(days=n) for n in range(6))
RANGE = {"start": D1.isoformat(), "end": D4.isoformat()}


def at(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=LOCAL)


# --- living through the timeline --------------------------------------------------------------


class Life:
    """Time travel with the beat's sweep and the worker: every subscription step and every outbox
    message runs at the instant it is due, as they would with a beat every few seconds."""

    def __init__(self, traveller: time_machine.travel) -> None:
        self.traveller = traveller
        self.clock = traveller.start()

    def until(self, moment: datetime) -> None:
        while True:
            due = [
                Subscription.objects.aggregate(at=Min("due_at"))["at"],
                OutboxMessage.objects.filter(relayed_at__isnull=True).aggregate(at=Min("due_at"))["at"],
            ]
            next_due = min((d for d in due if d is not None), default=None)
            if next_due is None or next_due > moment:
                break
            if next_due > timezone.now():
                self.clock.move_to(next_due)
            subscriptions_sweep()
            run_due_tasks()
        self.clock.move_to(moment)

    def stop(self) -> None:
        self.traveller.stop()


def account(tv_account: str, phone: str) -> None:
    SimSmpAccount.objects.create(tv_account=tv_account, phone=phone, status="active", balance_fen=1_000_000)


def subscribe(life: Life, when: datetime, tv_account: str) -> Subscription:
    life.until(when)
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account=tv_account, actor=EPG, auto_renew=True)
    run_due_tasks()
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    run_due_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is not None, order.failure_code
    return order.subscription


def cancel(life: Life, when: datetime, subscription: Subscription, channel: str, actor: Actor) -> None:
    life.until(when)
    subscription_cancel(subscription_id=subscription.pk, channel=channel, actor=actor, reason="test")


@dataclass
class Fixture:
    subscriptions: dict[str, Subscription]


def build_subscription_fixture() -> Fixture:
    """The timeline (local time, Asia/Shanghai; every subscription VIP-MONTH by phone bill; a month's
    period ends a calendar month after it starts, its renewal is due 24 h before, 3 tries 8 h apart):

    | sub | started | what happens | renewal orders (local) |
    |---|---|---|---|
    | I | 2025-12-20 10:00 | cancelled in admin 12-21; ended 01-20 10:00 | - |
    | K | 01-09 23:30 | renewed | 02-08 23:30 completed (D0) |
    | M | 01-10 00:30 | renewed | 02-09 00:30 completed (16:30 UTC on 02-08) |
    | A | 01-10 10:00 | renewed | 02-09 10:00 completed |
    | B | 01-10 11:00 | balance 1.00 from 01-11; lapsed 02-10 03:00, ended 11:00 | 02-09 11:00, 19:00, |
    |   |             |                                                          | 02-10 03:00 failed  |
    | C | 01-11 10:00 | TD by SMS 02-09 09:00; ended 02-11 10:00 | - |
    | D | 01-11 12:00 | suspended 02-10 08:00; lapsed 02-11 04:00, ended 12:00 | 02-10 12:00, 20:00, |
    |   |             |                                                        | 02-11 04:00 rejected |
    | E | 01-12 14:00 | SMP down at its renewal; cancelled on the TV 02-11 14:00:10; | 02-11 14:00 |
    |   |             | ended 02-12 14:00                                            | cancelled   |
    | L | 01-14 10:00 | renewed | 02-13 10:00 completed (D5) |
    | H | 01-20 10:00 | cancelled in admin 01-25; ends 02-20 | - |
    | F | 02-10 15:00 | cancelled at the business hall 02-11 16:00 | - |
    | G | 02-11 09:00 | active | - |

    B fails with insufficient_balance, D is rejected with account_suspended; accounts tv3001 (A) to
    tv3012 (M), by the letter's place in the alphabet without J.

    Time stops at 2026-02-13 12:00.
    """
    names = {"A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8, "I": 9, "K": 10, "L": 11, "M": 12}
    for n in names.values():
        account(f"tv30{n:02d}", f"139000030{n:02d}")
    tv = {name: f"tv30{n:02d}" for name, n in names.items()}
    life = Life(time_machine.travel(at(2025, 12, 20, 9), tick=False))
    s: dict[str, Subscription] = {}
    try:
        s["I"] = subscribe(life, at(2025, 12, 20, 10), tv["I"])
        cancel(life, at(2025, 12, 21, 10), s["I"], CancelChannel.ADMIN, ADMIN)
        s["K"] = subscribe(life, at(2026, 1, 9, 23, 30), tv["K"])
        s["M"] = subscribe(life, at(2026, 1, 10, 0, 30), tv["M"])
        s["A"] = subscribe(life, at(2026, 1, 10, 10), tv["A"])
        s["B"] = subscribe(life, at(2026, 1, 10, 11), tv["B"])
        s["C"] = subscribe(life, at(2026, 1, 11, 10), tv["C"])
        life.until(at(2026, 1, 11, 11))
        SimSmpAccount.objects.filter(tv_account=tv["B"]).update(balance_fen=100)
        s["D"] = subscribe(life, at(2026, 1, 11, 12), tv["D"])
        s["E"] = subscribe(life, at(2026, 1, 12, 14), tv["E"])
        s["L"] = subscribe(life, at(2026, 1, 14, 10), tv["L"])
        s["H"] = subscribe(life, at(2026, 1, 20, 10), tv["H"])
        cancel(life, at(2026, 1, 25, 10), s["H"], CancelChannel.ADMIN, ADMIN)

        life.until(at(2026, 2, 9, 9))
        sms_reply_received(sender="13900003003", text="TD", received_at=timezone.now(), raw=b"td-C")
        life.until(at(2026, 2, 10, 8))
        SimSmpAccount.objects.filter(tv_account=tv["D"]).update(status="suspended")
        s["F"] = subscribe(life, at(2026, 2, 10, 15), tv["F"])
        s["G"] = subscribe(life, at(2026, 2, 11, 9), tv["G"])

        # E's renewal is being pre-checked while the SMP is down; the customer cancels on the TV meanwhile.
        life.until(at(2026, 2, 11, 13, 59, 59))
        faults.set_mode("smp", "down")
        life.until(at(2026, 2, 11, 14))
        assert Order.objects.get(subscription=s["E"], channel=Channel.RENEWAL).status == OrderStatus.PRECHECKING
        life.clock.move_to(at(2026, 2, 11, 14, 0, 10))
        subscription_cancel(subscription_id=s["E"].pk, channel=CancelChannel.EPG, actor=EPG)
        faults.set_mode("smp", "ok")

        cancel(life, at(2026, 2, 11, 16), s["F"], CancelChannel.CRM, CLERK)
        life.until(at(2026, 2, 13, 12))
    finally:
        life.stop()
    for sub in s.values():
        sub.refresh_from_db()
    return Fixture(subscriptions=s)


@pytest.fixture
def lived() -> Fixture:
    """The timeline, lived once per process and its rows put back for the later tests (tests.support.made_once)."""
    pks = made_once("subscription_timeline", _live_the_timeline)
    by_pk = Subscription.objects.in_bulk(pks.values())
    return Fixture(subscriptions={name: by_pk[pk] for name, pk in pks.items()})


def _live_the_timeline() -> dict[str, int]:
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    return {name: sub.pk for name, sub in build_subscription_fixture().subscriptions.items()}


@pytest.fixture
def en():
    with translation.override("en"):
        yield


# --- the expected figures, worked out by hand ----------------------------------------------------

RENEWALS_BY_DAY = [
    # A 10:00 and M 00:30 completed, 25.00 each; B 11:00 and 19:00 failed.
    RenewalRow("2026-02-09", "2026-02-09", orders=4, completed=2, ended=4, gross_fen=5000),
    # B 03:00 failed; D 12:00 and 20:00 rejected.
    RenewalRow("2026-02-10", "2026-02-10", orders=3, completed=0, ended=3),
    # D 04:00 rejected; E 14:00 cancelled before its charge.
    RenewalRow("2026-02-11", "2026-02-11", orders=2, completed=0, ended=2),
    RenewalRow("2026-02-12", "2026-02-12"),
]
RENEWAL_FAILURES = [
    RenewalFailure("account_suspended", "This TV account is suspended.", 3),
    RenewalFailure("insufficient_balance", "The phone bill balance is not enough for this product.", 3),
    RenewalFailure("cancelled", "The order was cancelled.", 1),
]
SUBSCRIPTION_DAYS = [
    # At 00:00 on 02-09: I, K, M, A, B, C, D, E, L, H started (10); I and H cancelled, I ended:
    # 8 active, 1 not renewing (H).
    SubscriptionDay("2026-02-09", "2026-02-09", started=0, cancelled=1, lapsed=0, ended=0, active=7, not_renewing=2),
    SubscriptionDay("2026-02-10", "2026-02-10", started=1, cancelled=0, lapsed=1, ended=1, active=7, not_renewing=2),
    SubscriptionDay("2026-02-11", "2026-02-11", started=1, cancelled=2, lapsed=1, ended=2, active=5, not_renewing=3),
    SubscriptionDay("2026-02-12", "2026-02-12", started=0, cancelled=0, lapsed=0, ended=1, active=5, not_renewing=2),
]
STOPS = [
    RenewalStop("epg", "Cancelled: TV (EPG)", 1, "TV (EPG)"),
    RenewalStop("sms", "Cancelled: SMS reply TD", 1, "SMS reply TD"),
    RenewalStop("crm", "Cancelled: Business hall (CRM)", 1, "Business hall (CRM)"),
    RenewalStop("admin", "Cancelled: Admin", 0, "Admin"),
    RenewalStop("provider", "Cancelled: Payment app (contract ended)", 0, "Payment app (contract ended)"),
    RenewalStop(
        "lapse",
        "Lapsed: renewal stopped without a cancel (not charged, no reminder, or the paid period refunded)",
        2,
        "Lapsed",
    ),
]


def test_the_timeline_happened_as_written(lived):
    s = lived.subscriptions
    status = {name: sub.status for name, sub in s.items()}
    assert status == {
        "A": "active", "B": "ended", "C": "ended", "D": "ended", "E": "ended", "F": "cancelled",
        "G": "active", "H": "cancelled", "I": "ended", "K": "active", "L": "active", "M": "active",
    }  # fmt: skip
    assert (s["B"].cancel_channel, s["C"].cancel_channel, s["E"].cancel_channel) == ("", "sms", "epg")
    assert timezone.localtime(s["B"].events.get(action="lapse").at) == at(2026, 2, 10, 3)
    assert timezone.localtime(s["D"].events.get(action="lapse").at) == at(2026, 2, 11, 4)
    renewals = Order.objects.filter(channel=Channel.RENEWAL).order_by("created_at")
    assert [(timezone.localtime(o.created_at), o.status, o.failure_code) for o in renewals] == [
        (at(2026, 2, 8, 23, 30), "completed", ""),
        (at(2026, 2, 9, 0, 30), "completed", ""),
        (at(2026, 2, 9, 10), "completed", ""),
        (at(2026, 2, 9, 11), "failed", "insufficient_balance"),
        (at(2026, 2, 9, 19), "failed", "insufficient_balance"),
        (at(2026, 2, 10, 3), "failed", "insufficient_balance"),
        (at(2026, 2, 10, 12), "failed", "account_suspended"),
        (at(2026, 2, 10, 20), "failed", "account_suspended"),
        (at(2026, 2, 11, 4), "failed", "account_suspended"),
        (at(2026, 2, 11, 14), "cancelled", "cancelled"),
        (at(2026, 2, 13, 10), "completed", ""),
    ]
    assert timezone.localtime(s["E"].ended_at) == at(2026, 2, 12, 14)


def test_renewals_per_local_day_their_money_success_rate_and_failures(lived, en):
    figures = subscriptions.renewals(D1, D4)
    assert figures.days == RENEWALS_BY_DAY
    total = figures.total
    assert (total.orders, total.completed, total.ended, total.not_completed, total.under_way) == (9, 2, 9, 7, 0)
    assert (total.gross_fen, total.refunds_fen, total.net_fen) == (5000, 0, 5000)
    assert total.success_rate == "22.2%"
    assert [d.success_rate for d in figures.days] == ["50.0%", "0.0%", "0.0%", "-"]
    assert figures.failures == RENEWAL_FAILURES

    # The same orders and money as the renewal row of the sales tables.
    (renewal,) = [r for r in queries.revenue_by_channel(D1, D4) if r.key == Channel.RENEWAL]
    assert (renewal.orders, renewal.completed, renewal.gross_fen, renewal.refunds_fen) == (9, 2, 5000, 0)

    # Local days: M's renewal at 00:30 on 02-09 is 16:30 UTC on 02-08 and counts on 02-09 (above);
    # K's at 23:30 on 02-08 (15:30 UTC) on 02-08; L's on 02-13, after the range.
    (d0,) = subscriptions.renewals(D0, D0).days
    (d5,) = subscriptions.renewals(D5, D5).days
    assert d0 == RenewalRow("2026-02-08", "2026-02-08", orders=1, completed=1, ended=1, gross_fen=2500)
    assert d5 == RenewalRow("2026-02-13", "2026-02-13", orders=1, completed=1, ended=1, gross_fen=2500)


def test_subscriptions_active_and_not_renewing_at_the_end_of_each_day(lived, en):
    figures = subscriptions.subscriptions_by_day(D1, D4)
    assert (figures.active_at_start, figures.not_renewing_at_start) == (8, 1)
    assert figures.days == SUBSCRIPTION_DAYS
    assert figures.stops == STOPS

    # On the last day lived (02-13, L renewed at 10:00) the counts are what the statuses say now.
    (last,) = subscriptions.subscriptions_by_day(D5, D5).days
    active = Subscription.objects.filter(status=SubscriptionStatus.ACTIVE).count()
    not_renewing = Subscription.objects.filter(status__in=[SubscriptionStatus.CANCELLED, SubscriptionStatus.LAPSED])
    assert (last.active, last.not_renewing) == (active, not_renewing.count()) == (5, 2)

    # Before the first subscription: nothing; I started on 12-20 and was cancelled on 12-21.
    early = subscriptions.subscriptions_by_day(date(2025, 12, 1), date(2025, 12, 21))
    assert (early.active_at_start, early.not_renewing_at_start) == (0, 0)
    assert [(d.active, d.not_renewing) for d in early.days[-2:]] == [(1, 0), (0, 1)]


def test_an_empty_range_has_rows_of_zeros():
    figures = subscriptions.renewals(D1, D2)
    assert figures.days == [RenewalRow("2026-02-09", "2026-02-09"), RenewalRow("2026-02-10", "2026-02-10")]
    assert figures.failures == [] and figures.total.success_rate == "-"
    days = subscriptions.subscriptions_by_day(D1, D2)
    assert [(d.active, d.not_renewing) for d in days.days] == [(0, 0), (0, 0)]
    assert [s.subscriptions for s in days.stops] == [0] * 6


# --- the page and its CSV ------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("boss", password="unused-password-1", is_staff=True)
    client.force_login(user)
    return client


def export(client, table: str) -> list[list[str]]:
    response = client.get(URL, {**RANGE, "export": table}, **EN)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="ipvas-{table}-2026-02-09-2026-02-12.csv"'
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_the_dashboard_shows_renewals_and_subscriptions_and_exports_them(lived, staff_client):
    page = staff_client.get(URL, RANGE, **EN).content.decode()
    for key in ("renewals_by_day", "renewal_failures", "subscriptions_by_day", "renewal_stops"):
        assert f'id="table-{key}"' in page
        assert f"export={key}" in page
    for chart in ("renewals-by-day", "renewal-revenue-by-day", "renewal-failures", "subscriptions-by-day"):
        assert f'id="chart-{chart}"' in page
    assert 'id="chart-renewal-stops"' in page
    assert "2026-02-11 · Active (renewing): 5" in page  # a point's tooltip
    assert "Not renewing, still paid: 3" in page
    assert ">subscriptions</text>" in page  # the unit of the subscription chart
    assert "Active: renews automatically, from the moment it started until it is cancelled or lapses." in page
    assert 'class="help reports-intro"' in page
    assert "At 00:00 on 2026-02-09: 8 active, 1 not renewing." in page

    assert export(staff_client, "renewals_by_day") == [
        [
            "Day",
            "Renewal orders",
            "Completed",
            "Ended without completing",
            "Still under way",
            "Success rate",
            "Payments (yuan)",
            "Refunds (yuan)",
            "Net revenue (yuan)",
        ],
        ["2026-02-09", "4", "2", "2", "0", "50.0%", "50.00", "0.00", "50.00"],
        ["2026-02-10", "3", "0", "3", "0", "0.0%", "0.00", "0.00", "0.00"],
        ["2026-02-11", "2", "0", "2", "0", "0.0%", "0.00", "0.00", "0.00"],
        ["2026-02-12", "0", "0", "0", "0", "-", "0.00", "0.00", "0.00"],
    ]
    assert export(staff_client, "renewal_failures") == [
        ["Failure code", "Reason", "Renewal orders"],
        ["account_suspended", "This TV account is suspended.", "3"],
        ["insufficient_balance", "The phone bill balance is not enough for this product.", "3"],
        ["cancelled", "The order was cancelled.", "1"],
    ]
    assert export(staff_client, "subscriptions_by_day") == [
        [
            "Day",
            "Started",
            "Cancelled",
            "Lapsed",
            "Ended",
            "Active at the end of the day",
            "Not renewing, still paid, at the end of the day",
        ],
        ["2026-02-09", "0", "1", "0", "0", "7", "2"],
        ["2026-02-10", "1", "0", "1", "1", "7", "2"],
        ["2026-02-11", "1", "2", "1", "2", "5", "3"],
        ["2026-02-12", "0", "0", "0", "1", "5", "2"],
    ]
    assert export(staff_client, "renewal_stops") == [
        ["Renewal turned off", "Subscriptions"],
        ["Cancelled: TV (EPG)", "1"],
        ["Cancelled: SMS reply TD", "1"],
        ["Cancelled: Business hall (CRM)", "1"],
        ["Cancelled: Admin", "0"],
        ["Cancelled: Payment app (contract ended)", "0"],
        ["Lapsed: renewal stopped without a cancel (not charged, no reminder, or the paid period refunded)", "2"],
    ]


# --- constant queries ----------------------------------------------------------------------------


def _add_subscriptions(count: int, day: date) -> None:
    """``count`` more subscriptions living through the range: each started, renewed (twice, once
    failing), and then cancelled, lapsed or still active, spread over the days of the range."""
    from billing.models import LedgerEntry, LedgerKind, Provider
    from orders.models import SubscriptionEvent
    from tests.factories import OrderFactory, ProductFactory, SubscriptionFactory

    product = ProductFactory(code="QMONTH", renewable=True)
    for n in range(Subscription.objects.count(), Subscription.objects.count() + count):
        moment = datetime.combine(day + timedelta(days=n % 4), time(8 + n % 12), tzinfo=LOCAL)
        with time_machine.travel(moment, tick=False):
            sub = SubscriptionFactory(product=product, tv_account=f"q{n}", subscription_no=f"Q{n:08d}")
            for period, status in ((2, OrderStatus.FAILED), (2, OrderStatus.COMPLETED)):
                order = OrderFactory(
                    product=product, channel=Channel.RENEWAL, status=status, subscription=sub, deadline_at=None,
                    renewal_period=period if status == OrderStatus.COMPLETED else None,
                    failure_code="insufficient_balance" if status == OrderStatus.FAILED else "",
                    payment_method="phone_bill",
                )  # fmt: skip
                if status == OrderStatus.COMPLETED:
                    LedgerEntry.objects.create(
                        order=order, kind=LedgerKind.PAYMENT, amount_fen=order.amount_fen, method="phone_bill",
                        provider=Provider.SMP, provider_ref=order.order_no, idempotency_key=f"q:{order.order_no}",
                        actor_kind=ActorKind.SYSTEM,
                    )  # fmt: skip
            if n % 3 == 1:
                Subscription.objects.filter(pk=sub.pk).update(
                    status=SubscriptionStatus.CANCELLED, cancelled_at=moment, cancel_channel=CancelChannel.SMS
                )
            elif n % 3 == 2:
                Subscription.objects.filter(pk=sub.pk).update(status=SubscriptionStatus.LAPSED)
                SubscriptionEvent.objects.create(
                    subscription=sub, at=moment, from_status="active", to_status="lapsed", action="lapse",
                    actor_kind=ActorKind.SYSTEM,
                )  # fmt: skip


def test_the_dashboard_makes_as_many_queries_for_50_subscriptions_as_for_5(staff_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def measure() -> int:
        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(URL, RANGE, **EN)
        assert response.status_code == 200
        return len(captured.captured_queries)

    _add_subscriptions(5, D1)
    measure()
    few = measure()
    _add_subscriptions(45, D1)
    assert Subscription.objects.count() == 50
    assert measure() == few
    figures = subscriptions.renewals(D1, D4).total
    assert (figures.orders, figures.completed) == (100, 50)
    for key in ("renewals_by_day", "subscriptions_by_day", "renewal_stops"):
        assert len(export(staff_client, key)) > 1
