"""Refunding a period in the middle of a stack (issue #12, items 1-3): it comes off the end, the later
periods move earlier here and at the SMP, access goes when the money is back, one SMP revocation."""

from __future__ import annotations

from datetime import datetime

import pytest

from lifecycle import manual
from lifecycle.due import order_process_due
from orders.models import Entitlement, Order
from sandbox.models import SimSmpSubscription
from tests.billing.test_admin_money import OPS, completed, completed_cash_sale
from tests.epg_api.support import Api, new_api_key, settle

START = "2026-12-05 10:00:00+08:00"


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("stack test vendor"))


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def periods(tv_account: str = "tv1001") -> list[tuple[str, str]]:
    live = Entitlement.objects.filter(tv_account=tv_account, revoked_at__isnull=True).order_by("starts_at")
    return [(f"{e.starts_at:%m-%d}", f"{e.ends_at:%m-%d}") for e in live]


def smp_periods(orders: list[Order]) -> list[tuple[str, str]]:
    rows = SimSmpSubscription.objects.filter(
        order_no__in=[o.order_no for o in orders], cancelled_at__isnull=True
    ).order_by("starts_at")
    return [(f"{s.starts_at:%m-%d}", f"{s.ends_at:%m-%d}") for s in rows]


def test_a_refunded_month_in_the_middle_comes_off_the_end_here_and_at_the_smp(api, frozen, run_tasks):
    first = completed(api, "phone_bill")
    cash = completed_cash_sale()
    third = completed(api, "phone_bill")
    fourth = completed(api, "wechat_qr")
    assert periods() == [("12-05", "01-05"), ("01-05", "02-05"), ("02-05", "03-05"), ("03-05", "04-05")]
    everything = [first, cash, third, fourth]
    assert smp_periods(everything) == periods()

    assert manual.refund_by_admin(order_id=cash.pk, reason="changed their mind", actor=OPS) == "cash_payback"
    assert periods() == [("12-05", "01-05"), ("01-05", "02-05"), ("02-05", "03-05"), ("03-05", "04-05")]
    item = cash.work_items.get()
    manual.work_item_resolve(item_id=item.pk, note="paid back", actor=OPS, cash_paid_back=True)
    ran = settle()

    # Three paid months remain, without a hole: January is not lost.
    assert periods() == [("12-05", "01-05"), ("01-05", "02-05"), ("02-05", "03-05")]
    assert smp_periods(everything) == periods()  # the SMP agrees: the cash period ended, the later ones moved
    third.refresh_from_db()
    assert (f"{third.entitlement.starts_at:%m-%d}", f"{third.entitlement.ends_at:%m-%d}") == ("01-05", "02-05")
    names = [name for name, _ in ran]
    assert names.count("lifecycle.tasks.revoke_on_smp") == 1
    assert names.count("lifecycle.tasks.reschedule_on_smp") == 2


def test_the_current_month_refunded_lets_the_next_start_now(api, frozen, run_tasks):
    first = completed(api, "wechat_qr")
    second = completed(api, "phone_bill")
    frozen.move_to("2026-12-20 10:00:00+08:00")
    assert manual.refund_by_admin(order_id=first.pk, reason="not watched", actor=OPS) == "provider_refund"
    settle()
    first.refresh_from_db()
    assert first.status == "refunded"
    assert periods() == [("12-20", "01-20")]
    assert smp_periods([first, second]) == periods()
    assert isinstance(Entitlement.objects.get(order=second).starts_at, datetime)


def test_a_phone_bill_refund_is_one_smp_reversal_and_no_second_revocation(api, frozen, run_tasks):
    order = completed(api, "phone_bill")
    assert manual.refund_by_admin(order_id=order.pk, reason="mistake", actor=OPS) == "smp_reversal"
    ran = settle()
    order.refresh_from_db()
    assert order.status == "refunded"
    names = [name for name, _ in ran]
    assert names.count("lifecycle.tasks.reverse_phone_bill") == 1
    assert "lifecycle.tasks.revoke_on_smp" not in names  # the reversal ended it at the SMP already
    assert order_process_due(order_id=order.pk) == "nothing_due"
