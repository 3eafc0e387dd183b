"""One per-view right is paid for once (issue #11, item 2): tv1001 bought PPV-MOVIE for one content twice,
both paid and both completed. Now the second is refused at pre-check (one in-flight per-view order per
account and content), checked again before the phone bill is charged, and money that still arrives for a
duplicate goes back automatically.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.models import Payment, PaymentStatus, Refund
from ipvas.actors import Actor, ActorKind
from lifecycle import paid
from lifecycle.due import order_process_due
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import FailureCode, OrderStatus
from orders.models import Entitlement, Order
from sandbox.models import SimSmpAccount
from tests.factories import OrderFactory
from tests.support.concurrency import require_postgresql, run_in_threads

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")


def per_view(content: str = "movie-42", account: str = "tv1001") -> Order:
    return order_create(channel="epg", product_code="PPV-MOVIE", tv_account=account, content_id=content, actor=EPG)


@pytest.mark.django_db
def test_the_second_order_for_the_same_content_is_refused_at_pre_check(demo, run_tasks):
    first, second = per_view(), per_view()
    other_content, other_account = per_view("movie-7"), per_view(account="tv1002")
    run_tasks()
    for order in (first, second, other_content, other_account):
        order.refresh_from_db()
    assert first.status == OrderStatus.AWAITING_PAYMENT
    assert (second.status, second.failure_code) == (OrderStatus.REJECTED, FailureCode.ALREADY_SUBSCRIBED)
    assert "under way" in second.events.get(action="reject").reason
    assert other_content.status == other_account.status == OrderStatus.AWAITING_PAYMENT

    payment_choose(order_id=first.pk, method="phone_bill", actor=EPG)
    run_tasks()
    third = per_view()
    run_tasks()
    third.refresh_from_db()
    assert (third.status, third.failure_code) == (OrderStatus.REJECTED, FailureCode.ALREADY_SUBSCRIBED)


@pytest.mark.django_db
def test_checked_again_before_the_phone_bill_is_charged(demo, run_tasks):
    owned = per_view()
    run_tasks()
    payment_choose(order_id=owned.pk, method="phone_bill", actor=EPG)
    run_tasks()
    # An order that slipped past the pre-check (made here directly in provisioning) is charged nothing.
    slipped = OrderFactory(
        product=demo["PPV-MOVIE"],
        content_id="movie-42",
        status=OrderStatus.PROVISIONING,
        payment_method="phone_bill",
        deadline_at=timezone.now(),
    )
    Payment.objects.create(
        order=slipped, method="phone_bill", provider="smp", out_trade_no=slipped.order_no, amount_fen=500
    )
    before = SimSmpAccount.objects.get(tv_account="tv1001").balance_fen
    assert order_process_due(order_id=slipped.pk) == "failed"
    slipped.refresh_from_db()
    assert (slipped.status, slipped.failure_code) == (OrderStatus.FAILED, FailureCode.ALREADY_SUBSCRIBED)
    assert SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == before
    assert Entitlement.objects.filter(content_id="movie-42").count() == 1


@pytest.mark.django_db
def test_a_payment_that_still_arrives_for_a_duplicate_goes_back(demo, run_tasks):
    owned = per_view()
    run_tasks()
    payment_choose(order_id=owned.pk, method="phone_bill", actor=EPG)
    run_tasks()
    duplicate = OrderFactory(
        product=demo["PPV-MOVIE"], content_id="movie-42", status=OrderStatus.PAYMENT_PENDING, payment_method="wechat_qr"
    )
    Payment.objects.create(
        order=duplicate,
        method="wechat_qr",
        provider="wechatpay",
        out_trade_no=duplicate.order_no,
        amount_fen=500,
        status=PaymentStatus.PENDING,
    )
    outcome = paid.payment_succeeded(
        provider="wechatpay",
        out_trade_no=duplicate.order_no,
        transaction_id="4200000000000000000001",
        amount_fen=500,
        paid_at=timezone.now(),
        actor=Actor(ActorKind.PROVIDER, "wechatpay"),
    )
    assert outcome == "refunding"
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.failure_code) == (OrderStatus.FAILED, FailureCode.ALREADY_SUBSCRIBED)
    refund = Refund.objects.get(order=duplicate)
    assert refund.amount_fen == 500 and "already subscribed" in refund.reason
    assert Entitlement.objects.filter(content_id="movie-42").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_pre_checks_let_one_order_through(demo):
    require_postgresql()
    orders = [per_view("movie-race") for _ in range(8)]

    def work(barrier) -> None:
        order = orders.pop()
        barrier.wait()
        order_process_due(order_id=order.pk)

    assert run_in_threads(8, work) == []
    statuses = sorted(Order.objects.filter(content_id="movie-race").values_list("status", flat=True))
    assert statuses == [OrderStatus.AWAITING_PAYMENT] + [OrderStatus.REJECTED] * 7
