"""The simulated world's daily statements, written exactly as the real ones are.

* WeChat Pay's v3 trade bill (``bill_type=ALL``), UTF-8: the 27 columns of the
  detail header, every detail field prefixed with a backtick, then the
  summary header and its values.
* Alipay's ``…_业务明细.csv``, GBK: the ``#`` title, account and period lines,
  the detail list between its markers, the totals and the export time.
* The SMP's provisioning list (docs/protocols.md), UTF-8: the subscriptions
  it made and those it ended (with the phone-bill money it gave back).

They are made from the simulator tables (``SimTrade``, ``SimRefund``,
``SimSmpSubscription``) as each provider would make them: trades paid and
refunds made on the day, subscriptions made and ended on the day. Rows are streamed
from the database to the file; nothing holds a whole day. The same day gives
the same bytes, so a statement fetched twice is recognised as one file.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import BinaryIO

from django.conf import settings
from django.utils import timezone

from billing.reconciliation.days import day_bounds
from ipvas.money import fen_to_yuan
from sandbox.models import SimRefund, SimSmpSubscription, SimTrade, SimTradeStatus

WECHATPAY = "wechatpay"
ALIPAY = "alipay"
SMP = "smp"
CHUNK = 2000
# The simulated providers' fee: 0.6 %, as a common merchant rate.
FEE_RATE = Decimal("0.006")
SPOOL_BYTES = 8 << 20

WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
ALIPAY_HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
    "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
ALIPAY_RULE = "-" * 41
SMP_HEADER = "event,order_no,tv_account,product_code,charge,amount_fen,at,subscription_id"


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")


def _fee_yuan(fen: int, places: str) -> Decimal:
    return (Decimal(fen) * FEE_RATE / 100).quantize(Decimal(places), rounding=ROUND_HALF_UP)


TRADE_COLUMNS = (
    "pk",
    "created_at",
    "transaction_id",
    "out_trade_no",
    "amount_fen",
    "description",
    "auth_code",
    "deducted_under",
    "attach",
)


def _trades(provider: str, day: date, *, reversed_too: bool = False) -> Iterator[tuple[datetime, int, tuple]]:
    """Trades paid on the day; with ``reversed_too``, also those a reverse gave back afterwards (WeChat Pay
    lists a payment reversed after it was paid under its own order number, and its reverse on its own row)."""
    start, end = day_bounds(day)
    statuses = [SimTradeStatus.PAID, SimTradeStatus.REVOKED] if reversed_too else [SimTradeStatus.PAID]
    rows = (
        SimTrade.objects.filter(provider=provider, status__in=statuses, paid_at__gte=start, paid_at__lt=end)
        .order_by("paid_at", "pk")
        .values_list("paid_at", *TRADE_COLUMNS)
    )
    for paid_at, pk, *rest in rows.iterator(chunk_size=CHUNK):
        yield paid_at, 0, (pk, *rest)


def _reversals(provider: str, day: date) -> Iterator[tuple[datetime, int, tuple]]:
    """Paid trades a reverse gave back on the day (a payment code's reverse after the customer paid)."""
    start, end = day_bounds(day)
    rows = (
        SimTrade.objects.filter(
            provider=provider, status=SimTradeStatus.REVOKED, refunded_fen__gt=0, reversed_at__gte=start,
            reversed_at__lt=end,
        )
        .order_by("reversed_at", "pk")
        .values_list("reversed_at", *TRADE_COLUMNS, "refunded_fen")
    )  # fmt: skip
    for reversed_at, pk, *rest in rows.iterator(chunk_size=CHUNK):
        yield reversed_at, 2, (pk, *rest)


def _refunds(provider: str, day: date) -> Iterator[tuple[datetime, int, tuple]]:
    start, end = day_bounds(day)
    rows = (
        SimRefund.objects.filter(provider=provider, created_at__gte=start, created_at__lt=end)
        .order_by("created_at", "pk")
        .values_list(
            "created_at",
            "pk",
            "trade__created_at",
            "trade__transaction_id",
            "trade__out_trade_no",
            "trade__amount_fen",
            "trade__description",
            "trade__auth_code",
            "trade__deducted_under",
            "trade__attach",
            "refund_id",
            "out_refund_no",
            "amount_fen",
        )
    )
    for created_at, pk, *rest in rows.iterator(chunk_size=CHUNK):
        yield created_at, 1, (pk, *rest)


def _rows_by_time(provider: str, day: date) -> Iterator[tuple[datetime, int, tuple]]:
    """Payments and refunds of the day in time order, as the providers list them (WeChat Pay: and reverses)."""
    parts = [_trades(provider, day, reversed_too=provider == WECHATPAY), _refunds(provider, day)]
    if provider == WECHATPAY:
        parts.append(_reversals(provider, day))
    return heapq.merge(*parts, key=lambda row: (row[0], row[1], row[2][0]))


# --- WeChat Pay ------------------------------------------------------------------------


def _trade_type(auth_code: str, deducted_under: str) -> str:
    """交易类型: a payment code is MICROPAY (付款码支付), a deduction under a contract PAP (委托代扣), a QR code
    NATIVE (a pay-and-sign order too)."""
    if auth_code:
        return "MICROPAY"
    return "PAP" if deducted_under else "NATIVE"


def write_wechatpay_trade_bill(day: date, out: BinaryIO) -> int:
    """The trade bill (ALL) of ``day``; returns the number of detail rows."""
    appid, mchid = settings.WECHATPAY_APPID, settings.WECHATPAY_MCHID
    out.write(WECHAT_HEADER.encode() + b"\r\n")
    rows = settle = refunded = order_total = applied = 0
    fees = Decimal("0")
    for at, kind, data in _rows_by_time(WECHATPAY, day):
        if kind == 0:
            _pk, _created, transaction_id, out_trade_no, amount, description, auth_code, under, attach = data
            fee = _fee_yuan(amount, "0.00001")
            fields = [
                _local(at), appid, mchid, "0", "", transaction_id, out_trade_no, "oSandbox" + transaction_id[-12:],
                _trade_type(auth_code, under), "SUCCESS", "OTHERS", "CNY", fen_to_yuan(amount), "0.00", "0", "0",
                "0.00", "0.00", "", "", description, attach, f"{fee}", "0.60%", fen_to_yuan(amount), "0.00", "",
            ]  # fmt: skip
            settle += amount
            order_total += amount
        else:
            if kind == 2:  # a reverse after the payment: WeChat Pay's own refund, under the trade's own number
                *trade, amount = data
                status, refund_id, out_refund_no = "REVOKED", "5" + trade[2][1:], ""
            else:
                *trade, refund_id, out_refund_no, amount = data
                status = "REFUND"
            _pk, _created, transaction_id, out_trade_no, total, description, auth_code, under, _attach = trade
            fee = -_fee_yuan(amount, "0.00001")
            fields = [
                _local(at), appid, mchid, "0", "", transaction_id, out_trade_no, "oSandbox" + transaction_id[-12:],
                _trade_type(auth_code, under), status, "OTHERS", "CNY", "0.00", "0.00", refund_id, out_refund_no,
                fen_to_yuan(amount), "0.00", "ORIGINAL", "SUCCESS", description, "", f"{fee}", "0.60%",
                fen_to_yuan(total), fen_to_yuan(amount), "",
            ]  # fmt: skip
            refunded += amount
            order_total += total
            applied += amount
        fees += fee
        rows += 1
        out.write(",".join("`" + field.replace(",`", ", `") for field in fields).encode() + b"\r\n")
    out.write(WECHAT_SUMMARY.encode() + b"\r\n")
    summary = [
        str(rows), fen_to_yuan(settle), fen_to_yuan(refunded), "0.00", f"{fees:.5f}",
        fen_to_yuan(order_total), fen_to_yuan(applied),
    ]  # fmt: skip
    out.write(",".join("`" + value for value in summary).encode() + b"\r\n")
    return rows


# --- Alipay ----------------------------------------------------------------------------


def _cn_day(value: date) -> str:
    return f"{value.year}年{value.month:02d}月{value.day:02d}日"


def write_alipay_business_detail(day: date, out: BinaryIO) -> int:
    """The 业务明细 of ``day``'s trade bill, in GBK; returns the number of detail rows."""

    def line(text: str) -> None:
        out.write(text.encode("gbk") + b"\r\n")

    line("#支付宝业务明细查询")
    line(f"#账号：[{settings.ALIPAY_SELLER_ID}0156]")
    line(f"#起始日期：[{_cn_day(day)} 00:00:00]   终止日期：[{_cn_day(day + timedelta(days=1))} 00:00:00]")
    line(f"#{ALIPAY_RULE}业务明细列表{ALIPAY_RULE}")
    line(ALIPAY_HEADER)
    paid = paid_fen = refunds = refund_fen = 0
    for at, kind, data in _rows_by_time(ALIPAY, day):
        if kind == 0:
            _pk, created, trade_no, out_trade_no, amount, description, _auth_code, _under, _attach = data
            money, batch, fee = fen_to_yuan(amount), "", -_fee_yuan(amount, "0.01")
            business = "交易"
            paid += 1
            paid_fen += amount
        else:
            (
                _pk,
                created,
                trade_no,
                out_trade_no,
                _total,
                description,
                _auth_code,
                _under,
                _attach,
                _refund_id,
                *refund,
            ) = data
            out_refund_no, amount = refund
            money, batch, fee = fen_to_yuan(-amount), out_refund_no, _fee_yuan(amount, "0.01")
            business = "退款"
            refunds += 1
            refund_fen += amount
        subject = description.replace(",", "，")
        line(
            f"{trade_no}\t,{out_trade_no}\t,{business}\t,{subject},{_local(created)},{_local(at)},\t,\t,\t,\t,"
            f"*沙箱(138****0000)\t,{money},{money},0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,{batch}\t,{fee},0.00,"
        )
    line(f"#{ALIPAY_RULE}业务明细列表结束{ALIPAY_RULE}")
    line(f"#交易合计：{paid}笔，商家实收共{fen_to_yuan(paid_fen)}元，商家优惠共0.00元")
    line(f"#退款合计：{refunds}笔，商家实收退款共{fen_to_yuan(-refund_fen)}元，商家优惠退款共0.00元")
    line(f"#导出时间：[{_cn_day(day + timedelta(days=1))} 06:00:00]")
    return paid + refunds


# --- the SMP ---------------------------------------------------------------------------


def _smp_events(day: date, at: str, event: str, amount: str) -> Iterator[tuple[datetime, int, str, tuple]]:
    start, end = day_bounds(day)
    rows = (
        SimSmpSubscription.objects.filter(**{f"{at}__gte": start, f"{at}__lt": end})
        .order_by(at, "pk")
        .values_list(at, "pk", "order_no", "tv_account", "product_code", "charge", amount, "subscription_id")
    )
    for moment, pk, *rest in rows.iterator(chunk_size=CHUNK):
        yield moment, pk, event, tuple(rest)


def write_smp_provisioning_list(day: date, out: BinaryIO) -> int:
    """The subscriptions the simulated SMP made and ended on ``day``, in time order; returns the number of rows.

    An ended subscription's amount is the phone-bill money given back (0 when none).
    """
    out.write(SMP_HEADER.encode() + b"\r\n")
    events = heapq.merge(
        _smp_events(day, "created_at", "subscribed", "amount_fen"),
        _smp_events(day, "cancelled_at", "unsubscribed", "reversed_fen"),
        key=lambda row: (row[0], row[2] == "unsubscribed", row[1]),
    )
    count = 0
    for at, _pk, event, (order_no, tv_account, product, charge, amount, subscription_id) in events:
        when = timezone.localtime(at).isoformat(timespec="seconds")
        out.write(f"{event},{order_no},{tv_account},{product},{charge},{amount},{when},{subscription_id}\r\n".encode())
        count += 1
    return count


WRITERS: dict[str, Callable[[date, BinaryIO], int]] = {
    WECHATPAY: write_wechatpay_trade_bill,
    ALIPAY: write_alipay_business_detail,
    SMP: write_smp_provisioning_list,
}


def file_name(source: str, day: date) -> str:
    """The name the real system gives the file."""
    if source == WECHATPAY:
        return f"wechatpay_tradebill_ALL_{day:%Y-%m-%d}.csv"
    if source == ALIPAY:
        return f"{settings.ALIPAY_SELLER_ID}0156_{day:%Y%m%d}_业务明细.csv"
    return f"smp_provisioning_{day:%Y-%m-%d}.csv"


def statement_file(source: str, day: date) -> BinaryIO:
    """``source``'s statement of ``day`` in a temporary file (in memory while small), rewound."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # the caller closes it
    WRITERS[source](day, spool)  # type: ignore[arg-type]
    spool.seek(0)
    return spool  # type: ignore[return-value]
