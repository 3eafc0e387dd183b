"""Issue #18: the reconciliation audited as a finance team would.

A finished day of real orders is made through the system's own services,
the clerk's pages and the sandbox: WeChat Pay and Alipay QR, phone bill with
and without SMS, cash, a full, a partial, a phone-bill and a cash refund,
and an order that expired. The statements are the sandbox's. That day
reconciles clean. Then mismatches are injected, one at a time and all
together, where each would arise (the simulators' records that the
statements are made from, or the statement file itself), and each must be
found in the category that names it, none hidden in ``matched``, each one
an open discrepancy that a person can close.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from billing.models import Discrepancy, ReconciliationRun, WorkItem
from billing.models.reconciliation import Outcome
from billing.reconciliation.importer import statement_import
from billing.reconciliation.services import reconcile_day
from ipvas.actors import Actor, ActorKind
from lifecycle import manual
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import Channel, OrderStatus
from orders.models import Order
from sandbox import statements as sandbox_statements
from sandbox.models import SimRefund, SimSmpSubscription, SimTrade, SimTradeStatus
from tests import quick
from tests.channels_crm.support import new_order, pay, sign_in
from tests.epg_api.support import provider_pay, settle, sms_reply
from tests.support.demo import demo_data
from tests.support.made_once import made_once

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 25)
LOCAL = ZoneInfo("Asia/Shanghai")
EPG = Actor(ActorKind.EPG_CLIENT, "audit")
ADMIN = Actor(ActorKind.ADMIN, "finance-audit")
M = Outcome


def on_day(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 25, hour, minute, tzinfo=LOCAL)


THE_MORNING_AFTER = datetime(2026, 11, 26, 9, tzinfo=LOCAL)


# --- the day, made with the real services ----------------------------------------------------


def epg_order(product: str = "VIP-MONTH") -> Order:
    order = order_create(channel=Channel.EPG, product_code=product, tv_account="tv1001", actor=EPG)
    settle()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT, order.failure_code
    return order


def epg_buy(method: str, product: str = "VIP-MONTH") -> Order:
    order = epg_order(product)
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    if method in ("wechat_qr", "alipay_qr"):
        assert provider_pay(method, order.order_no)["delivered"] is True
    elif method == "phone_bill_sms":
        settle()
        sms_reply("13800000001", "Y")
    settle()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (method, order.status, order.failure_code)
    return order


def cash_sale() -> Order:
    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (order.status, order.failure_code)
    return order


def refund(order: Order, expected: str, amount_fen: int | None = None) -> None:
    assert manual.refund_by_admin(order_id=order.pk, reason="audit", actor=ADMIN, amount_fen=amount_fen) == expected
    settle()


@pytest.fixture
def finance_day(db, time_machine, monkeypatch, settings) -> dict[str, Order]:
    """The day of 2026-11-25, all settled, the clock at 09:00 the morning after. The day is lived once per
    process and its rows put back for the later tests (tests.support.made_once): 2 s a test before."""
    quick.speed_up(monkeypatch, settings)
    pks = made_once("finance_day", lambda: live_the_day(time_machine))
    time_machine.move_to(THE_MORNING_AFTER, tick=True)
    by_pk = Order.objects.in_bulk(pks.values())
    return {name: by_pk[pk] for name, pk in pks.items()}


def live_the_day(time_machine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The day's orders, by name: their primary keys."""
    demo_data()
    time_machine.move_to(on_day(10), tick=True)
    o = {
        "q1": epg_buy("wechat_qr"),
        "q2": epg_buy("alipay_qr"),
        "q3": epg_buy("wechat_qr", "VIP-QUARTER"),
        "p1": epg_buy("phone_bill"),
        "p2": epg_buy("phone_bill_sms"),
        "c1": cash_sale(),
        "r_full": epg_buy("wechat_qr"),
        "r_part": epg_buy("alipay_qr"),
        "r_phone": epg_buy("phone_bill"),
        "r_cash": cash_sale(),
    }
    refund(o["r_full"], "provider_refund")
    refund(o["r_part"], "provider_refund", amount_fen=1000)
    refund(o["r_phone"], "smp_reversal")
    refund(o["r_cash"], "cash_payback")
    item = WorkItem.objects.get(order=o["r_cash"], resolved_at=None)
    manual.work_item_resolve(item_id=item.pk, note="paid back at the counter", actor=ADMIN, cash_paid_back=True)
    settle()
    expired = epg_order()
    payment_choose(order_id=expired.pk, method="wechat_qr", actor=EPG)
    settle()
    time_machine.move_to(on_day(10, 30), tick=True)
    settle()
    expired.refresh_from_db()
    assert expired.status == OrderStatus.EXPIRED
    o["x"] = expired
    for name in ("r_full", "r_phone", "r_cash"):
        o[name].refresh_from_db()
        assert o[name].status == OrderStatus.REFUNDED, (name, o[name].status)
    return {name: order.pk for name, order in o.items()}


def discrepancies_found(run: ReconciliationRun, o: dict[str, Order]) -> set[tuple[str, str, str, str]]:
    """(source, kind, outcome, order's name) of every item that is not matched."""
    names = {order.order_no: name for name, order in o.items()}
    return {
        (item.source, item.kind, item.outcome, names.get(item.order_no, item.order_no or "-"))
        for item in run.items.exclude(outcome=M.MATCHED)
    }


def open_work(o: dict[str, Order]) -> set[tuple[str, str, str, str]]:
    names = {order.order_no: name for name, order in o.items()}
    return {
        (d.source, d.kind, d.outcome, names.get(d.order_no, d.order_no or "-"))
        for d in Discrepancy.objects.filter(day=DAY, status="open")
    }


def test_the_finished_day_reconciles_clean(finance_day):
    o = finance_day
    run = reconcile_day(DAY)
    assert discrepancies_found(run, o) == set()
    assert run.clean and run.source_states() == {"wechatpay": "compared", "alipay": "compared", "smp": "compared"}
    assert not Discrepancy.objects.exists()
    matched = {(i.source, i.kind, i.order_no) for i in run.items.all()}
    names = {order.order_no: name for name, order in o.items()}
    # Every payment, refund, subscription and unsubscription of the day is there, matched.
    assert {(s, k, names[n]) for s, k, n in matched} == {
        *(("wechatpay", "payment", x) for x in ("q1", "q3", "r_full")),
        ("wechatpay", "refund", "r_full"),
        *(("alipay", "payment", x) for x in ("q2", "r_part")),
        ("alipay", "refund", "r_part"),
        *(("smp", "subscription", x) for x in ("q1", "q2", "q3", "p1", "p2", "c1")),
        *(("smp", "subscription", x) for x in ("r_full", "r_part", "r_phone", "r_cash")),
        *(("smp", "unsubscription", x) for x in ("r_full", "r_phone", "r_cash")),
    }  # fmt: skip
    # The SMP's rows show what we took, by QR too (the zero-price package charges nothing).
    q1 = run.items.get(source="smp", kind="subscription", order_no=o["q1"].order_no)
    assert (q1.our_amount_fen, q1.their_amount_fen) == (2500, 0)
    phone = run.items.get(source="smp", kind="unsubscription", order_no=o["r_phone"].order_no)
    assert (phone.our_amount_fen, phone.their_amount_fen) == (-2500, -2500)  # the reversal, both sides


# --- the injections ---------------------------------------------------------------------------------

Edit = Callable[[bytes, dict[str, Order]], bytes]


@dataclass
class Injection:
    """A mismatch planted where it would arise, and the discrepancies it must give: (source, kind, outcome, order)."""

    plant: Callable[[dict[str, Order]], None] = lambda o: None
    edits: dict[str, Edit] = field(default_factory=dict)  # statement files edited after the sandbox made them
    expected: set[tuple[str, str, str, str]] = field(default_factory=set)


def sub(o: dict[str, Order], name: str):  # type: ignore[no-untyped-def]
    return SimSmpSubscription.objects.filter(order_no=o[name].order_no)


def trade(o: dict[str, Order], name: str, provider: str = "wechatpay"):  # type: ignore[no-untyped-def]
    return SimTrade.objects.filter(provider=provider, out_trade_no=o[name].order_no)


def smp_line_again(name: str, subscription_id: str | None = None) -> Edit:
    """The SMP lists a subscription of the order once more (the same id, or a second one)."""

    def edit(content: bytes, o: dict[str, Order]) -> bytes:
        lines = content.decode().split("\r\n")
        line = next(text for text in lines if text.startswith(f"subscribed,{o[name].order_no},"))
        again = line if subscription_id is None else line.rsplit(",", 1)[0] + f",{subscription_id}"
        lines.insert(lines.index(line) + 1, again)
        return "\r\n".join(lines).encode()

    return edit


WECHAT_TOTALS = {
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
}


def wechat_summed(lines: list[str]) -> list[str]:
    """The bill with its summary made again from its rows, as WeChat Pay makes it."""
    header = lines[0].split(",")
    end = next(i for i, text in enumerate(lines) if text.startswith("总交易单数"))
    rows = [text[1:].split(",`") for text in lines[1:end] if text]
    names = lines[end].split(",")
    values = [str(len(rows))]
    for name in names[1:]:
        column = header.index(WECHAT_TOTALS[name])
        total = sum((Decimal(row[column]) for row in rows), Decimal(0))
        values.append(f"{total:.5f}" if name == "手续费总金额" else f"{total:.2f}")
    return [*lines[: end + 1], ",".join("`" + value for value in values), ""]


def wechat_line_again(name: str) -> Edit:
    """WeChat Pay lists a payment twice, its summary adding up (a provider's double charge)."""

    def edit(content: bytes, o: dict[str, Order]) -> bytes:
        lines = content.decode().split("\r\n")
        line = next(text for text in lines if f",`{o[name].order_no}," in text and ",`SUCCESS," in text)
        lines.insert(lines.index(line) + 1, line)
        return "\r\n".join(wechat_summed(lines)).encode()

    return edit


def foreign_alipay_trade(o: dict[str, Order]) -> None:
    SimTrade.objects.create(
        provider="alipay", out_trade_no="20261125120000FOREIGN0001", transaction_id="2026112522001400000000009999",
        amount_fen=990, description="not ours", code_url="https://qr.alipay.com/bax0foreign",
        status=SimTradeStatus.PAID, expires_at=on_day(12, 3), paid_at=on_day(12),
    )  # fmt: skip


def unknown_wechat_refund(o: dict[str, Order]) -> None:
    """WeChat Pay refunded q3 in full (someone refunded it in the merchant platform); we never heard of it."""
    paid = trade(o, "q3").get()
    SimRefund.objects.create(
        provider="wechatpay", out_refund_no="MANUAL20261125001", refund_id="50300000000000000000000001",
        trade=paid, amount_fen=paid.amount_fen,
    )  # fmt: skip
    SimRefund.objects.filter(out_refund_no="MANUAL20261125001").update(created_at=on_day(20))


def unpaid_subscription(o: dict[str, Order]) -> None:
    SimSmpSubscription.objects.create(
        order_no=o["x"].order_no, subscription_id="SUBPLANTED0000001", tv_account="tv1001",
        product_code="SMP-VIP-MONTH", package_code="SMP-VIP-MONTH-0", charge="prepaid", amount_fen=0,
        starts_at=on_day(12), ends_at=on_day(12) + timedelta(days=30),
    )  # fmt: skip
    SimSmpSubscription.objects.filter(order_no=o["x"].order_no).update(created_at=on_day(12))


INJECTIONS: dict[str, Injection] = {
    # 1. A double provisioning: the same subscription listed twice, or a second subscription id.
    "smp_duplicate_same_id": Injection(
        edits={"smp": smp_line_again("q1")}, expected={("smp", "subscription", "duplicate", "q1")}
    ),
    "smp_duplicate_second_id": Injection(
        edits={"smp": smp_line_again("q2", "SUBSECOND00000001")}, expected={("smp", "subscription", "duplicate", "q2")}
    ),
    # 2. Paid for a month, provisioned as a year; provisioned on another account.
    "smp_product": Injection(
        plant=lambda o: sub(o, "q1").update(product_code="SMP-VIP-YEAR"),
        expected={("smp", "subscription", "provisioned_differs", "q1")},
    ),
    "smp_account": Injection(
        plant=lambda o: sub(o, "q2").update(tv_account="tv1002"),
        expected={("smp", "subscription", "provisioned_differs", "q2")},
    ),
    # 3. A refund at the provider that we never recorded, of an order whose entitlement is still running.
    "wechat_refund_unknown": Injection(
        plant=unknown_wechat_refund, expected={("wechatpay", "refund", "missing_here", "q3")}
    ),
    # 4. Reversals and cancellations.
    "smp_reversed_unknown": Injection(
        plant=lambda o: sub(o, "p1").update(cancelled_at=on_day(23), reversed_fen=2500),
        expected={("smp", "unsubscription", "unsubscribed_not_revoked", "p1")},
    ),
    "smp_kept_refunded_order": Injection(
        plant=lambda o: sub(o, "r_full").update(cancelled_at=None),
        expected={("smp", "unsubscription", "revoked_not_unsubscribed", "r_full")},
    ),
    "smp_kept_cash_paid_back": Injection(
        plant=lambda o: sub(o, "r_cash").update(cancelled_at=None),
        expected={("smp", "unsubscription", "revoked_not_unsubscribed", "r_cash")},
    ),
    "smp_kept_phone_reversal": Injection(
        plant=lambda o: sub(o, "r_phone").update(cancelled_at=None),
        expected={("smp", "unsubscription", "revoked_not_unsubscribed", "r_phone")},
    ),
    "smp_reversal_amount": Injection(
        plant=lambda o: sub(o, "r_phone").update(reversed_fen=2400),
        expected={("smp", "unsubscription", "amount_differs", "r_phone")},
    ),
    # What worked before, still found.
    "smp_charge_amount": Injection(
        plant=lambda o: sub(o, "p2").update(amount_fen=2600), expected={("smp", "subscription", "amount_differs", "p2")}
    ),
    "smp_lost_subscription": Injection(
        plant=lambda o: sub(o, "c1").delete(), expected={("smp", "subscription", "paid_not_provisioned", "c1")}
    ),
    "smp_unpaid_subscription": Injection(
        plant=unpaid_subscription, expected={("smp", "subscription", "provisioned_not_paid", "x")}
    ),
    "wechat_lost_payment": Injection(
        plant=lambda o: trade(o, "q1").delete(), expected={("wechatpay", "payment", "missing_at_provider", "q1")}
    ),
    "wechat_amount": Injection(
        plant=lambda o: trade(o, "q1").update(amount_fen=5200),
        expected={("wechatpay", "payment", "amount_differs", "q1")},
    ),
    "wechat_duplicate_line": Injection(
        edits={"wechatpay": wechat_line_again("r_full")}, expected={("wechatpay", "payment", "duplicate", "r_full")}
    ),
    "alipay_foreign_payment": Injection(
        plant=foreign_alipay_trade, expected={("alipay", "payment", "missing_here", "-")}
    ),
    "alipay_refund_amount": Injection(
        plant=lambda o: SimRefund.objects.filter(trade__out_trade_no=o["r_part"].order_no).update(amount_fen=900),
        expected={("alipay", "refund", "amount_differs", "r_part")},
    ),
    "alipay_lost_refund": Injection(
        plant=lambda o: SimRefund.objects.filter(trade__out_trade_no=o["r_part"].order_no).delete(),
        expected={("alipay", "refund", "missing_at_provider", "r_part")},
    ),
}
# Injections that contradict another one on the same row are left out of "all together".
TOGETHER = sorted(set(INJECTIONS) - {"wechat_amount", "alipay_lost_refund", "smp_reversal_amount"})


def inject(names: list[str], o: dict[str, Order]) -> set[tuple[str, str, str, str]]:
    expected: set[tuple[str, str, str, str]] = set()
    edits: dict[str, list[Edit]] = {}
    for name in names:
        injection = INJECTIONS[name]
        injection.plant(o)
        for source, edit in injection.edits.items():
            edits.setdefault(source, []).append(edit)
        expected |= injection.expected
    for source, changes in edits.items():
        content = sandbox_statements.statement_file(source, DAY).read()
        for change in changes:
            content = change(content, o)
        statement_import(source=source, day=DAY, stream=io.BytesIO(content), file_name=f"{source}-edited.csv")
    return expected


@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_each_injected_mismatch_is_found_in_its_category_and_reaches_a_person(finance_day, name):
    o = finance_day
    expected = inject([name], o)
    run = reconcile_day(DAY)
    assert discrepancies_found(run, o) == expected
    assert open_work(o) == expected  # every one a discrepancy that a person sees, nothing else
    assert run.complete and not run.clean and run.discrepancies >= len(expected)
    # Nothing wrong shows as matched: no matched item of that kind for that order, but the first
    # listing of a duplicate.
    for source, kind, outcome, who in expected:
        if outcome != "duplicate" and who != "-":
            matched = run.items.filter(source=source, kind=kind, order_no=o[who].order_no, outcome=M.MATCHED)
            assert not matched.exists(), (name, source, kind, who)


def test_all_the_injected_mismatches_together(finance_day):
    o = finance_day
    expected = inject(TOGETHER, o)
    run = reconcile_day(DAY)
    assert discrepancies_found(run, o) == expected
    assert open_work(o) == expected
    counts = run.counts()
    assert counts["duplicate"] == 3 and counts["provisioned_differs"] == 2
    assert counts["revoked_not_unsubscribed"] == 3 and counts["unsubscribed_not_revoked"] == 1
    # Running the day again changes nothing: the same items, the same open discrepancies, no new ones.
    before = set(Discrepancy.objects.values_list("pk", "status"))
    again = reconcile_day(DAY)
    assert discrepancies_found(again, o) == expected
    assert set(Discrepancy.objects.values_list("pk", "status")) == before


def test_what_each_discrepancy_says(finance_day):
    o = finance_day
    inject(
        [
            "smp_duplicate_second_id",
            "smp_product",
            "wechat_refund_unknown",
            "smp_reversed_unknown",
            "wechat_lost_payment",
        ],
        o,
    )
    run = reconcile_day(DAY)

    def item(outcome: str):  # type: ignore[no-untyped-def]
        return run.items.get(outcome=outcome)

    with translation.override("en"):
        duplicate = item("duplicate")
        assert duplicate.reference == "SUBSECOND00000001"  # the second subscription id is named
        assert duplicate.detail.startswith("Subscription SUBSECOND00000001 is a second subscription of the order")
        product = item("provisioned_differs")
        assert product.detail == (
            "Provisioned on account tv1001, product SMP-VIP-YEAR; "
            "the order is for account tv1001, product SMP-VIP-MONTH."
        )
        unknown = item("missing_here")
        assert unknown.order_no == o["q3"].order_no  # traced by its out_trade_no
        assert unknown.detail.startswith(
            f"Refund MANUAL20261125001 is not known here; it refunds payment {o['q3'].order_no} of order "
            f"{o['q3'].order_no}. The order's entitlement is still active (until "
        )
        assert "SMP subscription SUB" in unknown.detail
        ended = item("unsubscribed_not_revoked")
        assert ended.detail.startswith("The SMP ended subscription SUB")
        assert "The SMP gave back 25.00; our ledger has 0.00 reversed." in ended.detail
        lost = item("missing_at_provider")
        assert lost.detail == "Not in the WeChat Pay trade bill of 2026-11-25."
    with translation.override("zh-hans"):
        # Rendered when read, in the reader's language: what it names is translated with it.
        assert "微信支付交易账单" in lost.detail


def test_an_unknown_refund_of_an_order_whose_entitlement_ended_does_not_say_it_is_active(finance_day):
    o = finance_day
    inject(["wechat_refund_unknown"], o)
    o["q3"].entitlement.revoked_at = timezone.now()
    o["q3"].entitlement.save(update_fields=["revoked_at"])
    run = reconcile_day(DAY)
    with translation.override("en"):
        assert "still active" not in run.items.get(outcome="missing_here").detail
