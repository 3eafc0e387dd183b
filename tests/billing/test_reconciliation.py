"""The daily three-way reconciliation: the providers' statements and the SMP's list against our ledger.

The day is made with the real services: orders placed, paid at the sandbox's
providers (signed notifications through the real views), provisioned by the
simulated SMP, one refunded by an admin. Differences are then planted where
each would arise, in the simulator rows the statements are made from or in a
statement file, and each outcome must be found exactly there. Statement
imports are checked with small files in the real layouts
(tests/billing/fixtures/, GBK for Alipay).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone, translation

from billing.models import LedgerEntry, ReconciliationItem, ReconciliationRun, Statement, StatementLine
from billing.models.reconciliation import Outcome, StatementSource
from billing.reconciliation import compare, importer, providers
from billing.reconciliation.compare import merge_join
from billing.reconciliation.importer import statement_import
from billing.reconciliation.parsers import PARSERS, StatementError
from billing.reconciliation.selectors import verdict
from billing.reconciliation.services import reconcile_day, statements_import
from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from lifecycle.manual import refund_by_admin
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import Channel, OrderStatus
from orders.models import Order
from sandbox import statements as sandbox_statements
from sandbox.models import SimSmpSubscription, SimTrade, SimTradeStatus
from tests.billing.statement_files import ALIPAY_FILE, DAY, SMP_FILE, WECHAT_FILE
from tests.support.tasks import run_due_tasks

pytestmark = pytest.mark.django_db

EPG = Actor(ActorKind.EPG_CLIENT, "reconciliation-test")
ADMIN = Actor(ActorKind.ADMIN, "reconciliation-test")


def label(source: str) -> str:
    """A statement's name as the notes give it, in the active language (Simplified Chinese by default)."""
    return str(StatementSource(source).label)


def statement(source: str, path: Path, day: date = DAY, **options) -> Statement:
    with path.open("rb") as stream:
        return statement_import(source=source, day=day, stream=stream, file_name=path.name, **options)


def refused(source: str, content: bytes, day: date = DAY) -> str:
    """Why the file is refused, in English (tests/billing/test_refusals_translated.py reads it in Chinese)."""
    with pytest.raises(StatementError) as caught:
        statement_import(source=source, day=day, stream=io.BytesIO(content), file_name="bad.csv")
    assert not Statement.objects.exists() and not StatementLine.objects.exists(), "half imported"
    with translation.override("en"):
        return str(caught.value)


def edit_line(content: bytes, line_no: int, old: str, new: str, encoding: str = "utf-8") -> bytes:
    lines = content.decode(encoding).split("\r\n")
    assert old in lines[line_no - 1], (old, lines[line_no - 1])
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return "\r\n".join(lines).encode(encoding)


# --- the day, made with the real services ---------------------------------------------------


def place(product: str = "VIP-MONTH") -> Order:
    order = order_create(channel=Channel.EPG, product_code=product, tv_account="tv1001", actor=EPG)
    run_due_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT, order.failure_code
    return order


def buy(method: str, product: str = "VIP-MONTH") -> Order:
    order = place(product)
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    if method in ("wechat_qr", "alipay_qr"):
        provider = "wechatpay" if method == "wechat_qr" else "alipay"
        answer = Client().post(
            f"/sandbox/{provider}/pay/", {"out_trade_no": order.order_no}, content_type="application/json"
        )
        assert answer.json()["delivered"] is True, answer.content
    run_due_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (order.status, order.failure_code)
    return order


@pytest.fixture
def day_of_trade(demo, time_machine):
    """A day with each kind of discrepancy planted once (twice for amount_differs: one per provider)."""
    time_machine.move_to("2026-11-25 10:00:00+08:00", tick=True)
    a = buy("wechat_qr")  # matched, and refunded in part (a matched refund)
    assert refund_by_admin(order_id=a.pk, reason="goodwill", actor=ADMIN, amount_fen=1000) == "provider_refund"
    run_due_tasks()
    b = buy("alipay_qr")  # matched
    c = buy("phone_bill")  # the SMP charged the phone bill: matched
    d = buy("wechat_qr")  # WeChat Pay says 52.00: amount_differs
    e = buy("wechat_qr")  # WeChat Pay lost the trade: missing_at_provider
    f = buy("alipay_qr")  # Alipay says 24.00: amount_differs
    g = buy("wechat_qr")  # the SMP lost the subscription: paid_not_provisioned
    h = place()  # never paid, and the SMP subscribed it: provisioned_not_paid
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=e.order_no).delete()
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=d.order_no).update(amount_fen=5200)
    SimTrade.objects.filter(provider="alipay", out_trade_no=f.order_no).update(amount_fen=2400)
    SimTrade.objects.create(
        provider="alipay",
        out_trade_no="20261125120000FOREIGN0001",
        transaction_id="2026112522001400000000009999",
        amount_fen=990,
        description="not ours",
        code_url="https://qr.alipay.com/bax0foreign",
        status=SimTradeStatus.PAID,
        expires_at=timezone.now() + timedelta(minutes=3),
        paid_at=timezone.now(),
    )  # missing_here
    SimSmpSubscription.objects.filter(order_no=g.order_no).delete()
    SimSmpSubscription.objects.create(
        order_no=h.order_no,
        subscription_id="SUBPLANTED0000001",
        tv_account="tv1001",
        product_code="SMP-VIP-MONTH",
        package_code="SMP-VIP-MONTH-0",
        charge="prepaid",
        amount_fen=0,
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(days=30),
    )
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    wechat = sandbox_statements.statement_file("wechatpay", DAY).read()  # imported by hand, the others fetched
    statement_import(source="wechatpay", day=DAY, stream=io.BytesIO(wechat), file_name="w.csv")
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h}


def found(run: ReconciliationRun) -> set[tuple]:
    return {
        (i.source, i.kind, i.order_no, i.reference, i.outcome, i.our_amount_fen, i.their_amount_fen)
        for i in run.items.all()
    }


def test_every_outcome_is_found_where_it_was_planted(day_of_trade):
    o = {name: order.order_no for name, order in day_of_trade.items()}
    subscription = dict(SimSmpSubscription.objects.values_list("order_no", "subscription_id"))
    run = reconcile_day(DAY)  # Alipay's file and the SMP's list are fetched from the sandbox
    M = Outcome
    # The SMP's rows show what we took: the phone-bill charge (c) against its charge, a QR payment against 0.
    smp = [
        ("smp", "subscription", o[x], subscription[o[x]], M.MATCHED, 2500, 2500 if x == "c" else 0) for x in "abcdef"
    ]
    assert found(run) == {
        ("wechatpay", "payment", o["a"], o["a"], M.MATCHED, 2500, 2500),
        ("wechatpay", "refund", o["a"], o["a"] + "F1", M.MATCHED, -1000, -1000),
        ("wechatpay", "payment", o["d"], o["d"], M.AMOUNT_DIFFERS, 2500, 5200),
        ("wechatpay", "payment", o["e"], o["e"], M.MISSING_AT_PROVIDER, 2500, None),
        ("wechatpay", "payment", o["g"], o["g"], M.MATCHED, 2500, 2500),
        ("alipay", "payment", o["b"], o["b"], M.MATCHED, 2500, 2500),
        ("alipay", "payment", o["f"], o["f"], M.AMOUNT_DIFFERS, 2500, 2400),
        ("alipay", "payment", "", "20261125120000FOREIGN0001", M.MISSING_HERE, None, 990),
        *smp,
        ("smp", "subscription", o["g"], o["g"], M.PAID_NOT_PROVISIONED, 2500, None),
        ("smp", "subscription", o["h"], "SUBPLANTED0000001", M.PROVISIONED_NOT_PAID, None, 0),
    }
    assert (run.matched, run.missing_at_provider, run.missing_here, run.amount_differs) == (10, 1, 1, 2)
    assert (run.paid_not_provisioned, run.provisioned_not_paid) == (1, 1)
    assert run.notes == "" and run.complete and not run.clean
    assert run.source_states() == {"wechatpay": "compared", "alipay": "compared", "smp": "compared"}
    assert set(run.statements.values_list("source", flat=True)) == {"wechatpay", "alipay", "smp"}
    missing_here = run.items.get(outcome=M.MISSING_HERE)
    with translation.override("en"):
        assert missing_here.detail == "No payment 20261125120000FOREIGN0001 here."
        not_provisioned = run.items.get(outcome=M.PAID_NOT_PROVISIONED).detail
        assert "Our entitlement names SMP subscription SUB" in not_provisioned  # the subscription our entitlement holds
    assert missing_here.statement_line_no is not None
    for item in run.items.all():
        for amount in (item.our_amount_fen, item.their_amount_fen):
            assert amount is None or type(amount) is int
    # What was fetched is what the real systems send: GBK for Alipay, the same bytes for the same day.
    alipay = sandbox_statements.statement_file("alipay", DAY).read()
    assert alipay.startswith("#支付宝业务明细查询".encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        alipay.decode("utf-8")
    assert Statement.objects.get(source="alipay").sha256 == hashlib.sha256(alipay).hexdigest()
    wechat = sandbox_statements.statement_file("wechatpay", DAY).read().decode()
    assert wechat.startswith("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,")
    assert wechat.split("\r\n")[-3].startswith("总交易单数,应结订单总金额,退款总金额")


def test_running_a_day_again_gives_the_same_items(day_of_trade, monkeypatch):
    from billing.tasks import reconcile_yesterday

    assert reconcile_yesterday.apply().get() == "2026-11-25: 10 matched, 6 discrepancies"  # the morning job
    first = ReconciliationRun.objects.get()
    assert first.triggered_by == "beat"
    items = found(first)
    details = sorted(first.items.values_list("outcome", "reference", "explanation", "statement_line_no"))
    # Again, holding one key and writing one item at a time: the same result.
    monkeypatch.setattr(compare, "CHUNK", 1)
    monkeypatch.setattr(compare, "BATCH", 1)
    again = reconcile_day(DAY, triggered_by="test")
    assert again.pk != first.pk
    assert list(ReconciliationRun.objects.values_list("pk", flat=True)) == [again.pk]
    assert ReconciliationItem.objects.filter(run_id=first.pk).count() == 0
    assert found(again) == items
    assert sorted(again.items.values_list("outcome", "reference", "explanation", "statement_line_no")) == details
    assert Statement.objects.count() == 3  # the statements of the first run are used, not fetched again


def test_a_statement_not_imported_is_not_compared(db):
    statement("smp", SMP_FILE)
    run = reconcile_day(DAY, fetch=False)
    assert run.notes.splitlines() == ["wechatpay: not imported, not fetched", "alipay: not imported, not fetched"]
    assert run.source_states() == {"wechatpay": "missing", "alipay": "missing", "smp": "compared"}
    assert run.uncompared == ["wechatpay", "alipay"] and not run.complete and not run.clean
    assert set(run.items.values_list("source", flat=True)) == {"smp"}
    assert (run.provisioned_not_paid, run.missing_here) == (3, 1)  # none of the list's orders is ours
    assert not Statement.objects.exclude(source="smp").exists()


def test_a_day_with_nothing_is_all_matched_and_empty(db):
    run = reconcile_day(date(2026, 1, 5))
    assert run.items.count() == 0 and run.discrepancies == 0 and run.notes == ""
    assert run.statements.count() == 3  # three empty statements, in the real layouts
    assert run.clean


def test_quiet_days_in_a_row_are_each_compared(db):
    """A day without trades gives the same bytes every time (WeChat Pay's bill and the SMP's list carry no date
    of their own): the next quiet day's file is not "imported already", it is that day's statement. A file
    with rows still is, whatever the day (below)."""
    for day in (date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)):
        run = reconcile_day(day)
        assert run.source_states() == {"wechatpay": "compared", "alipay": "compared", "smp": "compared"}, day
        assert run.clean and run.notes == "", day
    shas = Statement.objects.filter(source="smp").values_list("sha256", flat=True)
    assert len(shas) == 3 and len(set(shas)) == 1


# --- the parsers, on files in the real layouts -------------------------------------------------


def test_the_parsers_read_the_real_layouts():
    def parse(source: str, path: Path) -> list:
        with path.open("rb") as stream:
            return list(PARSERS[source](stream, DAY))

    wechat = parse("wechatpay", WECHAT_FILE)
    assert [(x.line_no, x.kind, x.match_key, x.amount_fen, x.transaction_id) for x in wechat] == [
        (2, "payment", "20261125091430aZ3kQ9mWx1", 2500, "4200002931202611251234567890"),
        (3, "payment", "20261125134012Bc7LmN2pQ4", 6800, "4200002931202611252345678901"),  # 订单金额, coupon or not
        (4, "refund", "20261125091430aZ3kQ9mWx1F1", -1000, "4200002931202611251234567890"),
    ]
    assert wechat[2].refund_id == "50300002931202611250012345678"
    assert wechat[2].out_trade_no == "20261125091430aZ3kQ9mWx1"
    assert wechat[0].occurred_at.isoformat() == "2026-11-25T09:15:02+08:00"
    alipay = parse("alipay", ALIPAY_FILE)
    assert [(x.line_no, x.kind, x.match_key, x.amount_fen, x.transaction_id) for x in alipay] == [
        (6, "payment", "20261125100511Qw8ErT5yU2", 500, "2026112522001419931441931972"),
        (7, "payment", "20261125214409Hj6KlP0oI8", 24800, "2026112522001419931441888001"),
        (8, "refund", "20261125100511Qw8ErT5yU2F1", -500, "2026112522001419931441931972"),
    ]
    assert alipay[1].raw.endswith("备注，含逗号,也可以")  # decoded from GBK, the free-text comma kept
    smp = parse("smp", SMP_FILE)
    assert [(x.kind, x.match_key, x.charge, x.amount_fen, x.transaction_id) for x in smp] == [
        ("subscription", "20261125091430aZ3kQ9mWx1", "prepaid", 0, "SUB7F3A9C2E11D04B6A"),
        ("subscription", "20261125110203Tt5Rr4Ee3W", "phone_bill", 2500, "SUB0A1B2C3D4E5F6071"),
        ("subscription", "20261125160021Mk9Nj8Bh7G", "marketing_account", 500, "SUB99887766554433AA"),
        # An unsubscription: the phone-bill money the SMP gave back, as money going back.
        ("unsubscription", "20261124203011Pp0Oo9Ii8U", "phone_bill", -2500, "SUB5566778899AABBCC"),
    ]
    assert [(x.tv_account, x.product_code) for x in smp] == [
        ("tv1001", "SMP-VIP-MONTH"),
        ("tv1001", "SMP-VIP-MONTH"),
        ("tv2001", "SMP-PPV-MOVIE"),
        ("tv1001", "SMP-VIP-MONTH"),
    ]
    for line in wechat + alipay + smp:
        assert type(line.amount_fen) is int  # never a float, never a Decimal


def test_imported_lines_keep_integer_amounts_and_the_raw_line():
    imported = statement("alipay", ALIPAY_FILE)
    assert imported.row_count == 3 and len(imported.sha256) == 64
    line = StatementLine.objects.get(statement=imported, line_no=8)
    assert (line.kind, line.amount_fen, line.out_refund_no) == ("refund", -500, "20261125100511Qw8ErT5yU2F1")
    assert type(line.amount_fen) is int
    assert line.raw.startswith("2026112522001419931441931972\t,")


# --- bad input: refused with the line, nothing half imported -----------------------------------


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [
        ("wechatpay", ALIPAY_FILE, "line 1: not UTF-8 text: is this a WeChat Pay trade bill?"),
        ("wechatpay", SMP_FILE, "line 1: not a WeChat Pay trade bill"),
        ("alipay", WECHAT_FILE, "line 1: not GBK text: is this an Alipay business-detail statement"),
        ("alipay", SMP_FILE, "line 1: not an Alipay business-detail statement"),
        ("smp", WECHAT_FILE, "line 1: not an SMP provisioning list"),
    ],
)
def test_a_file_in_the_wrong_format_is_refused(source, path, message):
    assert str(refused(source, path.read_bytes())).startswith(message)


@pytest.mark.parametrize(
    ("source", "path", "message"),
    [
        ("wechatpay", WECHAT_FILE, "line 2: 交易时间 2026-11-25 09:15:02 is not on 2026-11-26"),
        ("alipay", ALIPAY_FILE, "line 3: the statement starts on 2026-11-25, not on 2026-11-26"),
        ("smp", SMP_FILE, "line 2: at 2026-11-25T09:15:04+08:00 is not on 2026-11-26"),
    ],
)
def test_a_statement_of_another_day_is_refused(source, path, message):
    assert str(refused(source, path.read_bytes(), day=DAY + timedelta(days=1))).startswith(message)


def test_a_row_of_another_day_is_refused_with_its_line():
    content = edit_line(ALIPAY_FILE.read_bytes(), 7, "2026-11-25 21:44:30", "2026-11-26 00:00:03", "gbk")
    assert str(refused("alipay", content)) == (
        "line 7: 完成时间 2026-11-26 00:00:03 is not on 2026-11-25: a statement of another day?"
    )


def test_a_file_imported_before_is_refused_whatever_the_day():
    first = statement("wechatpay", WECHAT_FILE)
    for day in (DAY, DAY - timedelta(days=1)):
        with translation.override("en"), pytest.raises(StatementError, match="imported already, as the WeChat Pay "):
            statement("wechatpay", WECHAT_FILE, day=day, replace=True)
    assert list(Statement.objects.values_list("pk", flat=True)) == [first.pk]
    assert StatementLine.objects.count() == 3


def test_a_second_statement_for_a_day_replaces_the_first_only_when_asked():
    statement("smp", SMP_FILE)
    other = edit_line(SMP_FILE.read_bytes(), 3, ",2500,", ",2600,")
    with (
        translation.override("en"),
        pytest.raises(StatementError, match=r"imported already \(statement \d+\); replace"),
    ):
        statement_import(source="smp", day=DAY, stream=io.BytesIO(other))
    replaced = statement_import(source="smp", day=DAY, stream=io.BytesIO(other), replace=True)
    assert list(Statement.objects.values_list("pk", flat=True)) == [replaced.pk]
    assert sorted(StatementLine.objects.values_list("amount_fen", flat=True)) == [-2500, 0, 500, 2600]


@pytest.mark.parametrize(
    ("source", "path", "line", "old", "new", "message"),
    [
        ("wechatpay", WECHAT_FILE, 3, "`68.00,", "`68.0O,", "line 3: 订单金额 '68.0O' is not an amount in yuan"),
        ("wechatpay", WECHAT_FILE, 3, "`68.00,", "`68.005,", "line 3: 订单金额 '68.005' is not an amount in yuan"),
        (
            "wechatpay",
            WECHAT_FILE,
            4,
            "`REFUND,",
            "`CLOSED,",
            "line 4: 交易状态 'CLOSED' is none of SUCCESS, REFUND, REVOKED",
        ),
        ("wechatpay", WECHAT_FILE, 3, ",`CNY,", ",`CNY,`extra,", "line 3: 28 fields where the header has 27"),
        ("wechatpay", WECHAT_FILE, 6, "`3,", "`4,", "line 6: the summary counts 4 rows, the file has 3"),
        ("alipay", ALIPAY_FILE, 6, "交易\t", "转账\t", "line 6: 业务类型 '转账' is neither 交易 nor 退款"),
        ("alipay", ALIPAY_FILE, 8, ",20261125100511Qw8ErT5yU2F1\t", ",\t", "line 8: 退款批次号/请求号 '' is empty"),
        ("alipay", ALIPAY_FILE, 10, "2笔", "3笔", "line 10: #交易合计 counts 3 rows, the list has 2"),
        ("smp", SMP_FILE, 3, "phone_bill", "phonebill", "line 3: charge 'phonebill' is not one of"),
        ("smp", SMP_FILE, 3, ",2500,", ",25.00,", "line 3: amount_fen '25.00' is not a whole number of fen"),
        ("smp", SMP_FILE, 4, "+08:00", "", "line 4: at '2026-11-25T16:00:24' has no time zone"),
    ],
)
def test_a_row_that_cannot_be_read_names_its_line_and_nothing_is_imported(
    monkeypatch, source, path, line, old, new, message
):
    monkeypatch.setattr(importer, "BATCH", 1)  # the rows before the bad one are written, then rolled back
    encoding = "gbk" if source == "alipay" else "utf-8"
    assert str(refused(source, edit_line(path.read_bytes(), line, old, new, encoding))).startswith(message)


def test_a_file_cut_short_is_refused():
    wechat = WECHAT_FILE.read_bytes().split(b"\r\n")
    assert "the file ends without its summary" in str(refused("wechatpay", b"\r\n".join(wechat[:4])))
    alipay = ALIPAY_FILE.read_bytes().split(b"\r\n")
    error = refused("alipay", b"\r\n".join(alipay[:7]))
    assert str(error) == "line 7: the file ends inside the detail list (no 业务明细列表结束 marker): cut short?"
    assert str(refused("smp", b"")) == "the file is empty: not an SMP provisioning list"


def test_several_files_are_imported_all_or_none():
    with WECHAT_FILE.open("rb") as wechat, ALIPAY_FILE.open("rb") as alipay:
        with pytest.raises(StatementError) as caught:
            statements_import(
                day=DAY,
                files={"wechatpay": ("w.csv", wechat), "alipay": ("a.csv", io.BytesIO(b"#nope\r\n"))},
                imported_by="test",
            )
        assert caught.value.source == "alipay"
        assert not Statement.objects.exists()
        imported = statements_import(
            day=DAY, files={"wechatpay": ("w.csv", wechat), "alipay": ("a.csv", alipay)}, imported_by="test"
        )
    assert sorted(s.source for s in imported) == ["alipay", "wechatpay"]


# --- the merge-join ----------------------------------------------------------------------------


def test_keys_come_back_in_the_order_python_compares_them_on_every_database():
    imported = statement("wechatpay", WECHAT_FILE)
    keys = ["b0", "Z3", "a1", "B2", "aa", "A"]
    StatementLine.objects.bulk_create(
        StatementLine(
            statement=imported,
            line_no=100 + i,
            kind="payment",
            match_key=key,
            out_trade_no=key,
            amount_fen=1,
            occurred_at=timezone.now(),
            raw="",
        )
        for i, key in enumerate(keys)
    )
    listed = [row[0] for row in providers._statement_rows(imported, "payment")]
    assert listed == sorted(listed), connection.vendor
    assert set(keys) <= set(listed)


def test_the_merge_join_pairs_keys_and_refuses_an_unsorted_stream():
    ours = [("A", 1), ("B", 2), ("B", 3), ("a", 4)]
    theirs = [("B", 5), ("C", 6), ("a", 7)]
    assert [(k, len(m), len(t)) for k, m, t in merge_join(ours, theirs)] == [
        ("A", 1, 0),
        ("B", 2, 1),
        ("C", 0, 1),
        ("a", 1, 1),
    ]
    with pytest.raises(RuntimeError, match="not in key order"):
        list(merge_join([("b", 1), ("a", 2)], []))


# --- the command, the morning job, the admin ---------------------------------------------------


def test_the_command_imports_the_files_and_reconciles(demo, time_machine):
    time_machine.move_to("2026-11-26 09:00:00+08:00")
    out = io.StringIO()
    call_command(
        "reconcile", "--date", "2026-11-25", "--wechatpay", str(WECHAT_FILE), "--smp", str(SMP_FILE), "--no-fetch",
        stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "imported wechatpay wechatpay_tradebill_ALL_2026-11-25.csv: 3 rows" in text
    assert "alipay: missing" in text and "not compared: alipay" in text
    run = ReconciliationRun.objects.get(day=DAY)
    # None of the fixture's trades is ours: all missing here, every subscription unknown.
    assert (run.missing_here, run.provisioned_not_paid, run.matched) == (4, 3, 0)
    # A refused file is said in the process's language (settings.LANGUAGE_CODE, Simplified Chinese), or English.
    with pytest.raises(
        CommandError, match=r"--alipay .*: 第 1 行：不是 GBK 编码的文本：这是支付宝业务明细对账单.*；未导入任何内容"
    ):
        call_command("reconcile", "--date", "2026-11-25", "--alipay", str(WECHAT_FILE), stdout=io.StringIO())
    with (
        translation.override("en"),
        pytest.raises(CommandError, match=r"--alipay .*: line 1: not GBK text: is this an Alipay "),
    ):
        call_command("reconcile", "--date", "2026-11-25", "--alipay", str(WECHAT_FILE), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not over yet"):
        call_command("reconcile", "--date", "2026-11-26", stdout=io.StringIO())


def test_the_morning_job_is_scheduled_at_nine():
    from celery.schedules import crontab

    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-yesterday"]
    assert entry["task"] == "billing.tasks.reconcile_yesterday"
    assert entry["schedule"] == crontab(hour=9, minute=0)


def test_the_morning_job_looks_again_later_for_a_statement_it_could_not_get(db, settings, time_machine):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=False)
    settings.WECHATPAY_ADAPTER = "adapters.wechatpay.client.WechatPayClient"
    settings.WECHATPAY_GATEWAY = "http://127.0.0.1:9"  # nothing listens there
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.5
    from billing.tasks import reconcile_yesterday

    assert reconcile_yesterday.apply().get() == (
        "2026-11-25: 0 matched, 0 discrepancies; not compared: wechatpay; again later"
    )
    run = ReconciliationRun.objects.get()
    assert "wechatpay: could not be fetched (WeChat Pay trade bill: " in run.notes
    assert run.wechatpay_state == "missing" and not run.clean
    later = OutboxMessage.objects.get(task_name="billing.tasks.reconcile_yesterday")
    assert later.kwargs == {"day": "2026-11-25", "attempt": 1}
    assert later.due_at == timezone.now() + timedelta(minutes=30)


@pytest.fixture
def staff(db, django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("recon", "recon@example.com", "pw"))
    return client


def test_the_admin_uploads_a_day_and_shows_errors_with_their_line(staff, time_machine):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    url = "/admin/billing/reconciliationrun/upload/"
    assert staff.get(url).status_code == 200
    bad = io.BytesIO(edit_line(WECHAT_FILE.read_bytes(), 3, "`68.00,", "`6 8.00,"))
    bad.name = "bad.csv"
    with SMP_FILE.open("rb") as smp:
        response = staff.post(url, {"day": "2026-11-25", "wechatpay": bad, "smp": smp}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert "line 3: 订单金额 &#x27;6 8.00&#x27; is not an amount in yuan" in response.content.decode()
    assert not Statement.objects.exists()
    with WECHAT_FILE.open("rb") as wechat, ALIPAY_FILE.open("rb") as alipay, SMP_FILE.open("rb") as smp:
        response = staff.post(url, {"day": "2026-11-25", "wechatpay": wechat, "alipay": alipay, "smp": smp})
    assert response.status_code == 302
    assert response["Location"].endswith("/admin/billing/reconciliationitem/?run_day=2026-11-25")
    run = ReconciliationRun.objects.get(day=DAY)
    assert run.missing_here == 7 and run.provisioned_not_paid == 3
    items = "/admin/billing/reconciliationitem/"
    for query in ("?run_day=2026-11-25", "?outcome=missing_here&source=alipay", "?q=20261125110203Tt5Rr4Ee3W"):
        page = staff.get(items + query)
        assert page.status_code == 200, query
    assert "20261125110203Tt5Rr4Ee3W" in staff.get(items + "?q=20261125110203Tt5Rr4Ee3W").content.decode()
    assert staff.get("/admin/billing/reconciliationrun/").status_code == 200
    assert staff.get("/admin/billing/statement/").status_code == 200
    assert staff.get("/admin/billing/statementline/?statement__source=smp").status_code == 200


def test_the_admin_exports_items_as_csv(staff, time_machine):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    statement("alipay", ALIPAY_FILE)
    statement("smp", SMP_FILE)
    run = reconcile_day(DAY, fetch=False)
    response = staff.get(f"/admin/billing/reconciliationrun/{run.pk}/export/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="reconciliation-2026-11-25.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 7
    refund = next(r for r in rows if r["kind"] == "refund")
    assert (refund["outcome"], refund["their_amount_fen"], refund["their_amount_yuan"]) == (
        "missing_here",
        "-500",
        "-5.00",
    )
    assert refund["statement_line"] == "8" and refund["day"] == "2026-11-25"
    selected = run.items.filter(source="smp").values_list("pk", flat=True)
    response = staff.post(
        "/admin/billing/reconciliationitem/", {"action": "export_selected", "_selected_action": list(selected)}
    )
    exported = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert len(exported) == 5 and "SUB0A1B2C3D4E5F6071" in exported[2]
    response = staff.post("/admin/billing/reconciliationrun/", {"action": "export_items", "_selected_action": [run.pk]})
    assert len(b"".join(response.streaming_content).decode("utf-8-sig").splitlines()) == 8
    # Re-running from the list replaces the run with the same items.
    before = found(run)
    response = staff.post(
        "/admin/billing/reconciliationrun/", {"action": "rerun", "_selected_action": [run.pk]}, follow=True
    )
    assert response.redirect_chain[-1][1] == 302
    again = ReconciliationRun.objects.get(day=DAY)
    assert again.pk != run.pk and found(again) == before
    assert again.triggered_by == "admin:recon"
    # Its message counts the discrepancies once; the run's page shows each of its fields once.
    [said] = [str(m) for m in response.context["messages"]]
    assert said.startswith(f"{DAY} 对账完成：一致 {again.matched} 笔。 {verdict(again)}."), said
    assert not again.complete and said.count(f"{again.discrepancies} 笔差异") == 1, said  # beside the verdict
    page = staff.get(f"/admin/billing/reconciliationrun/{again.pk}/change/").content.decode()
    labels = re.findall(r"<label[^>]*>([^<]+)</label>", page)
    assert len(labels) == len(set(labels)), labels


def test_the_admin_is_read_only_and_running_needs_the_permission(db, django_user_model, time_machine):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(*Permission.objects.filter(codename__startswith="view_reconciliation"))
    client = Client()
    client.force_login(viewer)
    assert client.get("/admin/billing/reconciliationrun/").status_code == 200
    assert client.get("/admin/billing/reconciliationrun/upload/").status_code == 403
    assert client.get("/admin/billing/reconciliationrun/add/").status_code == 403
    anonymous = Client().get("/admin/billing/reconciliationrun/upload/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert LedgerEntry.objects.count() == 0


# --- fetching through the providers' SDKs (production), against a local fake of their bill APIs ---------


@pytest.fixture
def bill_server():
    """WeChat Pay's and Alipay's bill endpoints as the SDKs call them, signed with the sandbox keys."""
    from adapters.alipay import crypto as alipay_crypto
    from adapters.wechatpay import crypto as wechat_crypto
    from ipvas.credentials import load_private_key
    from ipvas.keyfiles import sandbox_private_key_pem

    wechat_bill = WECHAT_FILE.read_bytes()
    seen: list[str] = []

    def alipay_zip() -> bytes:
        # Alipay names the members in GBK without the UTF-8 flag: written with ASCII stand-ins, then patched.
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("20880000000000010156_20261125_XXXXXXXX(ZZZZ).csv", "汇总".encode("gbk"))
            bundle.writestr("20880000000000010156_20261125_XXXXXXXX.csv", ALIPAY_FILE.read_bytes())
        return archive.getvalue().replace(b"XXXXXXXX", "业务明细".encode("gbk")).replace(b"ZZZZ", "汇总".encode("gbk"))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            base = f"http://127.0.0.1:{self.server.server_port}"
            if self.path.startswith("/v3/bill/tradebill?bill_date=2026-11-25&bill_type=ALL&tar_type=GZIP"):
                body = json.dumps(
                    {
                        "hash_type": "SHA1",
                        "hash_value": hashlib.sha1(wechat_bill).hexdigest(),  # noqa: S324 - WeChat Pay's choice
                        "download_url": f"{base}/v3/billdownload/file?token=T0KEN",
                    }
                ).encode()
                stamp, nonce = str(int(time.time())), "n" * 32
                key = load_private_key(sandbox_private_key_pem("wechatpay_platform_private_key.pem"))
                self.answer(
                    200,
                    body,
                    "application/json",
                    {
                        "Wechatpay-Timestamp": stamp,
                        "Wechatpay-Nonce": nonce,
                        "Wechatpay-Signature": wechat_crypto.sign(key, timestamp=stamp, nonce=nonce, body=body),
                        "Wechatpay-Serial": settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID,
                        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
                    },
                )
            elif self.path == "/v3/billdownload/file?token=T0KEN":
                self.answer(200, gzip.compress(wechat_bill), "application/octet-stream")
            elif self.path.startswith("/gateway.do?"):
                query = parse_qs(urlsplit(self.path).query)
                assert query["method"] == ["alipay.data.dataservice.bill.downloadurl.query"]
                assert json.loads(query["biz_content"][0]) == {"bill_type": "trade", "bill_date": "2026-11-25"}
                inner = json.dumps(
                    {"code": "10000", "msg": "Success", "bill_download_url": f"{base}/bill.zip"}, ensure_ascii=False
                )
                key = load_private_key(sandbox_private_key_pem("alipay_private_key.pem"))
                signature = alipay_crypto.sign_string(key, inner)
                body = f'{{"alipay_data_dataservice_bill_downloadurl_query_response":{inner},"sign":"{signature}"}}'
                self.answer(200, body.encode(), "application/json;charset=utf-8")
            elif self.path == "/bill.zip":
                self.answer(200, alipay_zip(), "application/zip")
            else:
                self.answer(404, b"{}", "application/json")

        def answer(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_statements_are_fetched_through_the_providers_sdks(bill_server, settings):
    from billing.reconciliation.fetch import fetch_statement

    base, seen = bill_server
    settings.WECHATPAY_ADAPTER, settings.WECHATPAY_GATEWAY = "adapters.wechatpay.client.WechatPayClient", base
    settings.ALIPAY_ADAPTER, settings.ALIPAY_GATEWAY = "adapters.alipay.client.AlipayClient", f"{base}/gateway.do"
    wechat = fetch_statement("wechatpay", DAY)
    assert wechat.file.read() == WECHAT_FILE.read_bytes()  # unzipped, its SHA-1 checked
    assert seen[-1] == "/v3/billdownload/file?token=T0KEN"
    alipay = fetch_statement("alipay", DAY)
    assert alipay.file_name == "20880000000000010156_20261125_业务明细.csv"  # the detail, not the 汇总
    assert alipay.file.read() == ALIPAY_FILE.read_bytes()
