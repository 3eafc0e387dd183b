"""Streaming parsers of the three statement formats, one generator per format.

Each reads a binary stream line by line (a day of 100,000 rows is never held
in memory), checks that the file is what it claims to be and is for the day
asked, and yields one ``ParsedLine`` per detail row. Anything it cannot take
raises ``StatementError`` naming the line. Amounts go from yuan text to
integer fen through ``Decimal`` (billing.money), never through a float.

The formats (sources in docs/protocols.md, "Daily statements"):

* WeChat Pay API v3 trade bill (``/v3/bill/tradebill``, ``bill_type=ALL``),
  UTF-8: a header line ``交易时间,公众账号ID,商户号,…``, detail rows whose
  every field is prefixed with a backtick, then the summary header
  ``总交易单数,…`` and its values. Columns are found by name.
* Alipay's trade bill (``alipay.data.dataservice.bill.downloadurl.query``,
  ``bill_type=trade``), the ``…_业务明细.csv`` of the zip, GBK: ``#`` comment
  lines (title, account, 起始日期/终止日期), the detail list between
  ``#---业务明细列表---`` and ``#---业务明细列表结束---`` with the header
  ``支付宝交易号,商户订单号,业务类型,…``, then ``#交易合计``/``#退款合计``.
* The SMP's provisioning list, our own CSV (UTF-8):
  ``order_no,tv_account,product_code,charge,amount_fen,subscribed_at,subscription_id``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO
from zoneinfo import ZoneInfo

from adapters.smp import SmpCharge
from billing.models.reconciliation import StatementLineKind, StatementSource
from ipvas.money import yuan_to_fen

# Both providers write Beijing time, whatever our TIME_ZONE.
BEIJING = ZoneInfo("Asia/Shanghai")
# A statement line is a few hundred bytes; a longer one means the file is not a statement.
MAX_LINE_BYTES = 64 * 1024
KEY_MAX = 64
LOCAL_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

PAYMENT = StatementLineKind.PAYMENT.value
REFUND = StatementLineKind.REFUND.value
SUBSCRIPTION = StatementLineKind.SUBSCRIPTION.value


class StatementError(Exception):
    """A statement file that cannot be imported: the line (1-based, None for the whole file) and why.

    ``source`` names the statement when several files are imported together.
    """

    def __init__(self, line_no: int | None, message: str, *, source: str = "") -> None:
        self.line_no = line_no
        self.message = message
        self.source = source
        super().__init__(f"line {line_no}: {message}" if line_no else message)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line_no: int
    kind: str
    match_key: str  # out_trade_no (payment), out_refund_no (refund), order_no (subscription)
    out_trade_no: str
    transaction_id: str
    amount_fen: int  # signed: refunds are negative
    occurred_at: datetime
    raw: str
    out_refund_no: str = ""
    refund_id: str = ""
    charge: str = ""


Parser = Callable[[BinaryIO, date], Iterator[ParsedLine]]


def _lines(stream: BinaryIO, encoding: str, what: str, *, called: str = "") -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending), decoded one line at a time so errors have a line."""
    line_no = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise StatementError(line_no, f"a line longer than {MAX_LINE_BYTES} bytes: this is not {what}")
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise StatementError(line_no, f"not {called or encoding.upper()} text: is this {what}?") from None
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        yield line_no, text.rstrip("\r\n")


def _fen(text: str, *, line_no: int, column: str, signed: bool = False) -> int:
    value = text.strip()
    negative = signed and value.startswith("-")
    try:
        fen = yuan_to_fen(value[1:] if negative else value)
    except ValueError:
        raise StatementError(line_no, f"{column} {text!r} is not an amount in yuan") from None
    return -fen if negative else fen


def _key(text: str, *, line_no: int, column: str) -> str:
    value = text.strip()
    if not value or len(value) > KEY_MAX:
        raise StatementError(line_no, f"{column} {text!r} is empty or longer than {KEY_MAX} characters")
    return value


def _local_time(text: str, *, line_no: int, column: str, day: date) -> datetime:
    value = text.strip()
    try:
        # fromisoformat is many times faster than strptime; the shape is checked first.
        if not LOCAL_TIME_RE.match(value):
            raise ValueError(value)
        moment = datetime.fromisoformat(value).replace(tzinfo=BEIJING)
    except ValueError:
        raise StatementError(line_no, f"{column} {text!r} is not a time like 2026-11-25 12:00:00") from None
    if moment.date() != day:
        raise StatementError(line_no, f"{column} {value} is not on {day}: a statement of another day?")
    return moment


def _columns(header: list[str], required: tuple[str, ...], *, line_no: int, what: str) -> dict[str, int]:
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in index]
    if missing:
        raise StatementError(line_no, f"{what} without the column(s) {', '.join(missing)}")
    return index


# --- WeChat Pay: the v3 trade bill ----------------------------------------------------

WECHAT_WHAT = "a WeChat Pay trade bill"
WECHAT_HEADER_START = "交易时间,公众账号ID,商户号"
WECHAT_SUMMARY_HEADER = "总交易单数"
WECHAT_REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态", "订单金额")
WECHAT_REFUND_REQUIRED = ("微信退款单号", "商户退款单号", "申请退款金额")


def parse_wechatpay(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """WeChat Pay's trade bill of ``day`` (bill_type ALL, SUCCESS or REFUND; columns by name).

    A payment row (交易状态 SUCCESS) is matched on 商户订单号 with 订单金额, the
    amount we asked for (应结订单金额 is less when a coupon paid part). A refund
    row (REFUND) on 商户退款单号 with 申请退款金额, negative.
    """
    lines = _lines(stream, "utf-8", WECHAT_WHAT)
    first = next(lines, None)
    if first is None:
        raise StatementError(None, f"the file is empty: not {WECHAT_WHAT}")
    _, header = first
    if not header.startswith(WECHAT_HEADER_START):
        raise StatementError(
            1, f"not {WECHAT_WHAT}: the first line should start with {WECHAT_HEADER_START!r}, not {header[:40]!r}"
        )
    columns = header.split(",")
    index = _columns(columns, WECHAT_REQUIRED, line_no=1, what=WECHAT_WHAT)
    rows = 0
    last = 1
    for line_no, text in lines:
        last = line_no
        if not text.strip():
            continue
        if text.startswith(WECHAT_SUMMARY_HEADER):
            break
        if not text.startswith("`"):
            raise StatementError(line_no, "a detail row of a WeChat Pay trade bill starts with a backtick (`)")
        fields = text[1:].split(",`")
        if len(fields) != len(columns):
            raise StatementError(line_no, f"{len(fields)} fields where the header has {len(columns)}")
        yield _wechat_row(fields, index, line_no=line_no, day=day, raw=text)
        rows += 1
    else:
        raise StatementError(last, f"the file ends without its summary ({WECHAT_SUMMARY_HEADER},…): cut short?")
    summary = next(lines, None)
    if summary is None or not summary[1].startswith("`"):
        raise StatementError(last + 1, "the summary header is not followed by its values")
    line_no, text = summary
    total = text[1:].split(",`")[0].strip()
    if not total.isdigit() or int(total) != rows:
        raise StatementError(line_no, f"the summary counts {total} rows, the file has {rows}: cut short or edited?")
    for line_no, text in lines:
        if text.strip():
            raise StatementError(line_no, "text after the summary")


def _wechat_row(fields: list[str], index: dict[str, int], *, line_no: int, day: date, raw: str) -> ParsedLine:
    def field(name: str) -> str:
        return fields[index[name]].strip()

    occurred_at = _local_time(field("交易时间"), line_no=line_no, column="交易时间", day=day)
    out_trade_no = _key(field("商户订单号"), line_no=line_no, column="商户订单号")
    transaction_id = field("微信订单号")[:KEY_MAX]
    status = field("交易状态")
    if status == "SUCCESS":
        return ParsedLine(
            line_no=line_no,
            kind=PAYMENT,
            match_key=out_trade_no,
            out_trade_no=out_trade_no,
            transaction_id=transaction_id,
            amount_fen=_fen(field("订单金额"), line_no=line_no, column="订单金额"),
            occurred_at=occurred_at,
            raw=raw,
        )
    if status == "REFUND":
        missing = [name for name in WECHAT_REFUND_REQUIRED if name not in index]
        if missing:
            raise StatementError(line_no, f"a refund row, and the header has no {', '.join(missing)}")
        out_refund_no = _key(field("商户退款单号"), line_no=line_no, column="商户退款单号")
        return ParsedLine(
            line_no=line_no,
            kind=REFUND,
            match_key=out_refund_no,
            out_trade_no=out_trade_no,
            transaction_id=transaction_id,
            out_refund_no=out_refund_no,
            refund_id=field("微信退款单号")[:KEY_MAX],
            amount_fen=-_fen(field("申请退款金额"), line_no=line_no, column="申请退款金额"),
            occurred_at=occurred_at,
            raw=raw,
        )
    raise StatementError(line_no, f"交易状态 {status!r} is neither SUCCESS nor REFUND")


# --- Alipay: the trade bill's business detail (业务明细) ----------------------------------

ALIPAY_WHAT = "an Alipay business-detail statement (…_业务明细.csv)"
ALIPAY_TITLE = "#支付宝业务明细查询"
ALIPAY_LIST_START = "业务明细列表"
ALIPAY_LIST_END = "业务明细列表结束"
ALIPAY_REQUIRED = ("支付宝交易号", "商户订单号", "业务类型", "完成时间", "订单金额（元）", "退款批次号/请求号")
ALIPAY_PERIOD = re.compile(r"起始日期：\[(\d{4})年(\d{2})月(\d{2})日")
ALIPAY_TOTAL = re.compile(r"^#(交易|退款)合计：(\d+)笔")
ALIPAY_KINDS = {"交易": PAYMENT, "退款": REFUND}


def parse_alipay(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """Alipay's business detail of ``day`` (GBK, decoded as GB18030, its superset).

    A 交易 row is matched on 商户订单号 with 订单金额（元）; a 退款 row on
    退款批次号/请求号 (our out_refund_no) with 订单金额（元）, negative.
    """
    lines = _lines(stream, "gb18030", ALIPAY_WHAT, called="GBK")
    first = next(lines, None)
    if first is None:
        raise StatementError(None, f"the file is empty: not {ALIPAY_WHAT}")
    if first[1].strip() != ALIPAY_TITLE:
        raise StatementError(1, f"not {ALIPAY_WHAT}: the first line should be {ALIPAY_TITLE!r}, not {first[1][:40]!r}")
    period_seen = False
    last = 1
    for line_no, text in lines:
        last = line_no
        if not text.startswith("#"):
            raise StatementError(line_no, f"expected the {ALIPAY_LIST_START} marker line, found a row")
        period = ALIPAY_PERIOD.search(text)
        if period:
            period_seen = True
            starts = date(int(period[1]), int(period[2]), int(period[3]))
            if starts != day:
                raise StatementError(line_no, f"the statement starts on {starts}, not on {day}")
        if ALIPAY_LIST_START in text:
            break
    else:
        raise StatementError(last, f"no {ALIPAY_LIST_START} marker: not {ALIPAY_WHAT}")
    if not period_seen:
        raise StatementError(last, "no 起始日期 line before the detail list: the statement's day is unknown")
    header = next(lines, None)
    if header is None:
        raise StatementError(last + 1, "the detail list has no header")
    line_no, text = header
    columns = [name.strip().replace("(", "（").replace(")", "）") for name in text.split(",")]
    index = _columns(columns, ALIPAY_REQUIRED, line_no=line_no, what=ALIPAY_WHAT)
    counts = {PAYMENT: 0, REFUND: 0}
    last = line_no
    for line_no, text in lines:
        last = line_no
        if text.startswith("#"):
            if ALIPAY_LIST_END in text:
                break
            raise StatementError(line_no, "a comment line inside the detail list")
        if not text.strip():
            continue
        parsed = _alipay_row(_alipay_fields(text, len(columns), line_no), index, line_no=line_no, day=day, raw=text)
        counts[parsed.kind] += 1
        yield parsed
    else:
        raise StatementError(last, f"the file ends inside the detail list (no {ALIPAY_LIST_END} marker): cut short?")
    for line_no, text in lines:
        total = ALIPAY_TOTAL.match(text.strip())
        if total:
            kind = PAYMENT if total[1] == "交易" else REFUND
            if int(total[2]) != counts[kind]:
                raise StatementError(
                    line_no, f"#{total[1]}合计 counts {total[2]} rows, the list has {counts[kind]}: edited?"
                )
        elif text.strip() and not text.startswith("#"):
            raise StatementError(line_no, "a row after the end of the detail list")


def _alipay_fields(text: str, width: int, line_no: int) -> list[str]:
    try:
        fields = next(csv.reader([text]))
    except csv.Error as exc:
        raise StatementError(line_no, f"not a CSV row: {exc}") from None
    if len(fields) > width:
        # 备注, the last column, is free text that may hold commas.
        fields = [*fields[: width - 1], ",".join(fields[width - 1 :])]
    if len(fields) != width:
        raise StatementError(line_no, f"{len(fields)} fields where the header has {width}")
    return [field.strip() for field in fields]  # Alipay pads ids with a tab so that Excel keeps their digits


def _alipay_row(fields: list[str], index: dict[str, int], *, line_no: int, day: date, raw: str) -> ParsedLine:
    def field(name: str) -> str:
        return fields[index[name]]

    business = field("业务类型")
    kind = ALIPAY_KINDS.get(business)
    if kind is None:
        raise StatementError(line_no, f"业务类型 {business!r} is neither 交易 nor 退款")
    occurred_at = _local_time(field("完成时间"), line_no=line_no, column="完成时间", day=day)
    out_trade_no = _key(field("商户订单号"), line_no=line_no, column="商户订单号")
    amount = _fen(field("订单金额（元）"), line_no=line_no, column="订单金额（元）", signed=True)
    if kind == PAYMENT:
        return ParsedLine(
            line_no=line_no,
            kind=PAYMENT,
            match_key=out_trade_no,
            out_trade_no=out_trade_no,
            transaction_id=field("支付宝交易号")[:KEY_MAX],
            amount_fen=amount,
            occurred_at=occurred_at,
            raw=raw,
        )
    out_refund_no = _key(field("退款批次号/请求号"), line_no=line_no, column="退款批次号/请求号")
    return ParsedLine(
        line_no=line_no,
        kind=REFUND,
        match_key=out_refund_no,
        out_trade_no=out_trade_no,
        transaction_id=field("支付宝交易号")[:KEY_MAX],
        out_refund_no=out_refund_no,
        amount_fen=-abs(amount),
        occurred_at=occurred_at,
        raw=raw,
    )


# --- The SMP's daily provisioning list (our own format) ---------------------------------

SMP_WHAT = "an SMP provisioning list"
SMP_HEADER = ["order_no", "tv_account", "product_code", "charge", "amount_fen", "subscribed_at", "subscription_id"]
ORDER_NO_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
AMOUNT_RE = re.compile(r"^[0-9]{1,12}$")


def parse_smp(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """The SMP's list of the subscriptions it made on ``day`` (docs/protocols.md)."""
    lines = _lines(stream, "utf-8", SMP_WHAT)
    first = next(lines, None)
    if first is None:
        raise StatementError(None, f"the file is empty: not {SMP_WHAT}")
    if [name.strip() for name in first[1].split(",")] != SMP_HEADER:
        raise StatementError(1, f"not {SMP_WHAT}: the first line should be {','.join(SMP_HEADER)!r}")
    for line_no, text in lines:
        if not text.strip():
            continue
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:
            raise StatementError(line_no, f"not a CSV row: {exc}") from None
        if len(fields) != len(SMP_HEADER):
            raise StatementError(line_no, f"{len(fields)} fields where the header has {len(SMP_HEADER)}")
        order_no, _tv_account, _product, charge, amount, subscribed_at, subscription_id = (f.strip() for f in fields)
        if not ORDER_NO_RE.match(order_no):
            raise StatementError(line_no, f"order_no {order_no!r} is not 1-32 letters and digits")
        if charge not in SmpCharge.values:
            raise StatementError(line_no, f"charge {charge!r} is not one of {', '.join(SmpCharge.values)}")
        if not AMOUNT_RE.match(amount):
            raise StatementError(line_no, f"amount_fen {amount!r} is not a whole number of fen")
        try:
            moment = datetime.fromisoformat(subscribed_at)
        except ValueError:
            raise StatementError(line_no, f"subscribed_at {subscribed_at!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            raise StatementError(line_no, f"subscribed_at {subscribed_at!r} has no time zone")
        if moment.astimezone(BEIJING).date() != day:
            raise StatementError(line_no, f"subscribed_at {subscribed_at} is not on {day}: a list of another day?")
        yield ParsedLine(
            line_no=line_no,
            kind=SUBSCRIPTION,
            match_key=order_no,
            out_trade_no=order_no,
            transaction_id=_key(subscription_id, line_no=line_no, column="subscription_id"),
            amount_fen=int(amount),
            charge=charge,
            occurred_at=moment,
            raw=text,
        )


PARSERS: dict[str, Parser] = {
    StatementSource.WECHATPAY: parse_wechatpay,
    StatementSource.ALIPAY: parse_alipay,
    StatementSource.SMP: parse_smp,
}
