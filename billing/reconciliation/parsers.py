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
  ``总交易单数,…`` and its values: the row count and the totals of the
  amount, refund and fee columns, each checked against the rows. Columns
  are found by name; in the REFUND bill a refund row's 交易时间 is its
  payment's, and the refund's own time (退款成功时间) is the one on the day.
* Alipay's trade bill (``alipay.data.dataservice.bill.downloadurl.query``,
  ``bill_type=trade``), the ``…_业务明细.csv`` of the zip, GBK: ``#`` comment
  lines (title, account, 起始日期/终止日期), the detail list between
  ``#---业务明细列表---`` and ``#---业务明细列表结束---`` with the header
  ``支付宝交易号,商户订单号,业务类型,…``, then ``#交易合计``/``#退款合计``
  (counts and 商家实收/商家优惠 totals, checked against the rows).
* The SMP's provisioning list, our own CSV (UTF-8):
  ``event,order_no,tv_account,product_code,charge,amount_fen,at,subscription_id``,
  one row per subscription made (``subscribed``) or ended (``unsubscribed``,
  with the phone-bill money given back) that day.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from django.conf import settings

from adapters.smp import SmpCharge
from billing.models.reconciliation import StatementLineKind, StatementSource
from billing.reconciliation import refusals
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
UNSUBSCRIPTION = StatementLineKind.UNSUBSCRIPTION.value
REVERSAL = StatementLineKind.REVERSAL.value


class StatementError(Exception):
    """A statement file that cannot be imported: the line (1-based, None for the whole file) and why.

    Why is a message code of billing.reconciliation.refusals with its facts, rendered when shown (``str()``,
    ``message``) in the language active then, or kept (``record()``) to be rendered later. ``source`` names
    the statement when several files are imported together.
    """

    def __init__(self, line_no: int | None, code: str, *, source: str = "", **facts: Any) -> None:
        assert code in refusals.MESSAGES, code
        self.line_no = line_no
        self.code = code
        self.facts = facts
        self.source = source
        super().__init__(line_no, code, facts)

    @property
    def message(self) -> str:
        """Why, without the line, in the active language."""
        return refusals.why(self.code, self.facts)

    def record(self) -> refusals.Record:
        """The refusal as plain JSON, to be rendered when shown (refusals.render)."""
        return [self.line_no, self.code, self.facts]

    def __str__(self) -> str:
        return refusals.render(self.line_no, self.code, self.facts)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    line_no: int
    kind: str
    match_key: str  # out_trade_no (payment, reversal), out_refund_no (refund), order_no (subscription)
    out_trade_no: str
    transaction_id: str
    amount_fen: int  # signed: refunds are negative
    occurred_at: datetime
    raw: str
    out_refund_no: str = ""
    refund_id: str = ""
    charge: str = ""
    tv_account: str = ""  # the SMP's lines only
    product_code: str = ""  # the SMP's lines only


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
            raise StatementError(line_no, "long_line", limit=MAX_LINE_BYTES, what=what)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise StatementError(line_no, "not_text", encoding=called or encoding.upper(), what=what) from None
        if line_no == 1:
            text = text.removeprefix("\ufeff")
        yield line_no, text.rstrip("\r\n")


def _fen(text: str, *, line_no: int, column: str, signed: bool = False) -> int:
    value = text.strip()
    negative = signed and value.startswith("-")
    try:
        fen = yuan_to_fen(value[1:] if negative else value)
    except ValueError:
        raise StatementError(line_no, "not_yuan", column=column, value=repr(text)) from None
    return -fen if negative else fen


def _key(text: str, *, line_no: int, column: str) -> str:
    value = text.strip()
    if not value or len(value) > KEY_MAX:
        raise StatementError(line_no, "bad_key", column=column, value=repr(text), limit=KEY_MAX)
    return value


def _local_time(text: str, *, line_no: int, column: str, day: date, on_day: bool = True) -> datetime:
    """A Beijing time; on ``day`` unless ``on_day`` is off (then on ``day`` or before it)."""
    value = text.strip()
    try:
        # fromisoformat is many times faster than strptime; the shape is checked first.
        if not LOCAL_TIME_RE.match(value):
            raise ValueError(value)
        moment = datetime.fromisoformat(value).replace(tzinfo=BEIJING)
    except ValueError:
        raise StatementError(line_no, "not_time", column=column, value=repr(text)) from None
    if moment.date() != day and (on_day or moment.date() > day):
        raise StatementError(line_no, "other_day", column=column, time=value, day=day.isoformat())
    return moment


def _decimal(text: str, *, line_no: int, column: str) -> Decimal:
    """An amount of a total's column (any number of decimals: fees have five)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise StatementError(line_no, "not_number", column=column, value=repr(text)) from None
    if not value.is_finite():
        raise StatementError(line_no, "not_number", column=column, value=repr(text))
    return value


def _columns(header: list[str], required: tuple[str, ...], *, line_no: int, what: str) -> dict[str, int]:
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in index]
    if missing:
        raise StatementError(line_no, "no_columns", what=what, columns=missing)
    return index


# --- WeChat Pay: the v3 trade bill ----------------------------------------------------

WECHAT_WHAT = StatementSource.WECHATPAY.value  # shown as "a WeChat Pay trade bill" (refusals.WHAT)
WECHAT_HEADER_START = "交易时间,公众账号ID,商户号"
WECHAT_SUMMARY_HEADER = "总交易单数"
WECHAT_REQUIRED = ("交易时间", "微信订单号", "商户订单号", "交易状态", "订单金额")
WECHAT_REFUND_REQUIRED = ("微信退款单号", "商户退款单号", "申请退款金额")
# The REFUND bill's own times of a refund (its 交易时间 is the payment's); the first one present is used.
WECHAT_REFUND_TIMES = ("退款成功时间", "退款申请时间")
# Each total of the summary, and the detail column whose rows it adds up (every row, signed).
WECHAT_TOTALS = {
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
}


def parse_wechatpay(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """WeChat Pay's trade bill of ``day`` (bill_type ALL, SUCCESS, REFUND or REVOKED; columns by name).

    A payment row (交易状态 SUCCESS) is matched on 商户订单号 with 订单金额, the
    amount we asked for (应结订单金额 is less when a coupon paid part). A refund
    row (REFUND) on 商户退款单号 with 申请退款金额, negative. A reversed row
    (REVOKED: a payment code's trade reversed after it was paid, which WeChat
    Pay lists under the trade's own number) on 商户订单号, negative.
    """
    lines = _lines(stream, "utf-8", WECHAT_WHAT)
    first = next(lines, None)
    if first is None:
        raise StatementError(None, "empty", what=WECHAT_WHAT)
    _, header = first
    if not header.startswith(WECHAT_HEADER_START):
        raise StatementError(
            1, "wechat_first_line", what=WECHAT_WHAT, expected=repr(WECHAT_HEADER_START), found=repr(header[:40])
        )
    columns = header.split(",")
    index = _columns(columns, WECHAT_REQUIRED, line_no=1, what=WECHAT_WHAT)
    added = {column: index[column] for column in WECHAT_TOTALS.values() if column in index}
    sums = dict.fromkeys(added, Decimal(0))
    rows = 0
    last = 1
    for line_no, text in lines:
        last = line_no
        if not text.strip():
            continue
        if text.startswith(WECHAT_SUMMARY_HEADER):
            summary_names = [name.strip() for name in text.split(",")]
            break
        if not text.startswith("`"):
            raise StatementError(line_no, "wechat_backtick")
        fields = text[1:].split(",`")
        if len(fields) != len(columns):
            raise StatementError(line_no, "field_count", found=len(fields), expected=len(columns))
        yield _wechat_row(fields, index, line_no=line_no, day=day, raw=text)
        for column, i in added.items():
            sums[column] += _decimal(fields[i], line_no=line_no, column=column)
        rows += 1
    else:
        raise StatementError(last, "wechat_no_summary", summary=WECHAT_SUMMARY_HEADER)
    summary = next(lines, None)
    if summary is None or not summary[1].startswith("`"):
        raise StatementError(last + 1, "wechat_summary_no_values")
    line_no, text = summary
    values = [value.strip() for value in text[1:].split(",`")]
    total = values[0]
    if not total.isdigit() or int(total) != rows:
        raise StatementError(line_no, "wechat_summary_count", stated=total, rows=rows)
    if len(values) != len(summary_names):
        raise StatementError(line_no, "wechat_summary_values", found=len(values), expected=len(summary_names))
    for name, value in zip(summary_names, values, strict=True):
        column = WECHAT_TOTALS.get(name)
        if column in sums and _decimal(value, line_no=line_no, column=name) != sums[column]:
            raise StatementError(
                line_no, "wechat_summary_total", total=name, stated=value, column=column, sum=str(sums[column])
            )
    for line_no, text in lines:
        if text.strip():
            raise StatementError(line_no, "wechat_after_summary")


def _wechat_row(fields: list[str], index: dict[str, int], *, line_no: int, day: date, raw: str) -> ParsedLine:
    def field(name: str) -> str:
        return fields[index[name]].strip()

    merchant = field("商户号")
    if merchant != settings.WECHATPAY_MCHID:
        raise StatementError(line_no, "wechat_other_merchant", value=repr(merchant[:32]), ours=settings.WECHATPAY_MCHID)
    status = field("交易状态")
    refund_time = next((name for name in WECHAT_REFUND_TIMES if name in index and field(name)), None)
    if status in ("REFUND", "REVOKED") and refund_time is not None:
        # The REFUND bill: 交易时间 is the payment's (any day up to this one), the refund's time is its own.
        _local_time(field("交易时间"), line_no=line_no, column="交易时间", day=day, on_day=False)
        occurred_at = _local_time(field(refund_time), line_no=line_no, column=refund_time, day=day)
    else:
        occurred_at = _local_time(field("交易时间"), line_no=line_no, column="交易时间", day=day)
    out_trade_no = _key(field("商户订单号"), line_no=line_no, column="商户订单号")
    transaction_id = field("微信订单号")[:KEY_MAX]
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
            raise StatementError(line_no, "wechat_refund_columns", columns=missing)
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
    if status == "REVOKED":
        # A payment code's trade reversed after it was paid: the reverse gave the money back (WeChat Pay's own
        # refund, with no 商户退款单号 of ours), listed under the trade's number.
        amounts = [name for name in ("申请退款金额", "退款金额") if name in index and field(name)]
        if not amounts:
            raise StatementError(line_no, "wechat_reversal_columns")
        return ParsedLine(
            line_no=line_no,
            kind=REVERSAL,
            match_key=out_trade_no,
            out_trade_no=out_trade_no,
            transaction_id=transaction_id,
            refund_id=field("微信退款单号")[:KEY_MAX] if "微信退款单号" in index else "",
            amount_fen=-_fen(field(amounts[0]), line_no=line_no, column=amounts[0]),
            occurred_at=occurred_at,
            raw=raw,
        )
    raise StatementError(line_no, "wechat_status", value=repr(status))


# --- Alipay: the trade bill's business detail (业务明细) ----------------------------------

ALIPAY_WHAT = StatementSource.ALIPAY.value  # shown as "an Alipay business-detail statement (…_业务明细.csv)"
ALIPAY_TITLE = "#支付宝业务明细查询"
ALIPAY_LIST_START = "业务明细列表"
ALIPAY_LIST_END = "业务明细列表结束"
ALIPAY_REQUIRED = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    "订单金额（元）",
    "商家实收（元）",
    "商家优惠（元）",
    "退款批次号/请求号",
)
ALIPAY_PERIOD = re.compile(r"起始日期：\[(\d{4})年(\d{2})月(\d{2})日")
# The account the statement is of: our partner id (ALIPAY_SELLER_ID, 2088…) and the account's four-digit suffix.
ALIPAY_ACCOUNT = re.compile(r"#账号：\[(\d+)\]")
ALIPAY_TOTAL = re.compile(r"^#(交易|退款)合计：(\d+)笔")
# The totals line's amounts: what the merchant received (商家实收) and its own discounts (商家优惠).
ALIPAY_TOTAL_AMOUNTS = re.compile(r"商家实收(?:退款)?共(-?[0-9.]+)元.*?商家优惠(?:退款)?共(-?[0-9.]+)元")
ALIPAY_KINDS = {"交易": PAYMENT, "退款": REFUND}
ALIPAY_ADDED = ("商家实收（元）", "商家优惠（元）")


def parse_alipay(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """Alipay's business detail of ``day`` (GBK, decoded as GB18030, its superset).

    A 交易 row is matched on 商户订单号 with 订单金额（元）; a 退款 row on
    退款批次号/请求号 (our out_refund_no) with 订单金额（元）, negative.
    """
    lines = _lines(stream, "gb18030", ALIPAY_WHAT, called="GBK")
    first = next(lines, None)
    if first is None:
        raise StatementError(None, "empty", what=ALIPAY_WHAT)
    if first[1].strip() != ALIPAY_TITLE:
        raise StatementError(
            1, "alipay_first_line", what=ALIPAY_WHAT, expected=repr(ALIPAY_TITLE), found=repr(first[1][:40])
        )
    period_seen = False
    last = 1
    for line_no, text in lines:
        last = line_no
        if not text.startswith("#"):
            raise StatementError(line_no, "alipay_row_before_list", marker=ALIPAY_LIST_START)
        account = ALIPAY_ACCOUNT.search(text)
        if account and not account[1].startswith(settings.ALIPAY_SELLER_ID):
            raise StatementError(line_no, "alipay_other_account", account=account[1], ours=settings.ALIPAY_SELLER_ID)
        period = ALIPAY_PERIOD.search(text)
        if period:
            period_seen = True
            starts = date(int(period[1]), int(period[2]), int(period[3]))
            if starts != day:
                raise StatementError(line_no, "alipay_other_day", starts=starts.isoformat(), day=day.isoformat())
        if ALIPAY_LIST_START in text:
            break
    else:
        raise StatementError(last, "alipay_no_list", marker=ALIPAY_LIST_START, what=ALIPAY_WHAT)
    if not period_seen:
        raise StatementError(last, "alipay_no_period")
    header = next(lines, None)
    if header is None:
        raise StatementError(last + 1, "alipay_no_header")
    line_no, text = header
    columns = [name.strip().replace("(", "（").replace(")", "）") for name in text.split(",")]
    index = _columns(columns, ALIPAY_REQUIRED, line_no=line_no, what=ALIPAY_WHAT)
    counts = {PAYMENT: 0, REFUND: 0}
    sums = {kind: [Decimal(0), Decimal(0)] for kind in counts}
    last = line_no
    for line_no, text in lines:
        last = line_no
        if text.startswith("#"):
            if ALIPAY_LIST_END in text:
                break
            raise StatementError(line_no, "alipay_comment_in_list")
        if not text.strip():
            continue
        fields = _alipay_fields(text, len(columns), line_no)
        parsed = _alipay_row(fields, index, line_no=line_no, day=day, raw=text)
        counts[parsed.kind] += 1
        for i, column in enumerate(ALIPAY_ADDED):
            sums[parsed.kind][i] += _decimal(fields[index[column]] or "0", line_no=line_no, column=column)
        yield parsed
    else:
        raise StatementError(last, "alipay_no_list_end", marker=ALIPAY_LIST_END)
    totals_seen = set()
    for line_no, text in lines:
        last = line_no
        total = ALIPAY_TOTAL.match(text.strip())
        if total:
            kind = PAYMENT if total[1] == "交易" else REFUND
            totals_seen.add(kind)
            if int(total[2]) != counts[kind]:
                raise StatementError(
                    line_no, "alipay_total_count", total=f"#{total[1]}合计", stated=total[2], rows=counts[kind]
                )
            amounts = ALIPAY_TOTAL_AMOUNTS.search(text)
            if amounts is None:
                raise StatementError(line_no, "alipay_total_no_amounts", total=f"#{total[1]}合计")
            for i, column in enumerate(ALIPAY_ADDED):
                stated = _decimal(amounts[i + 1], line_no=line_no, column=column)
                if stated != sums[kind][i]:
                    raise StatementError(
                        line_no,
                        "alipay_total_sum",
                        total=f"#{total[1]}合计",
                        column=column[:4],
                        stated=amounts[i + 1],
                        sum=str(sums[kind][i]),
                    )
        elif text.strip() and not text.startswith("#"):
            raise StatementError(line_no, "alipay_row_after_list")
    for kind, name in ((PAYMENT, "#交易合计"), (REFUND, "#退款合计")):
        if kind not in totals_seen:
            raise StatementError(last, "alipay_no_total", total=name)


def _alipay_fields(text: str, width: int, line_no: int) -> list[str]:
    try:
        fields = next(csv.reader([text]))
    except csv.Error as exc:
        raise StatementError(line_no, "not_csv", error=str(exc)) from None
    if len(fields) > width:
        # 备注, the last column, is free text that may hold commas.
        fields = [*fields[: width - 1], ",".join(fields[width - 1 :])]
    if len(fields) != width:
        raise StatementError(line_no, "field_count", found=len(fields), expected=width)
    return [field.strip() for field in fields]  # Alipay pads ids with a tab so that Excel keeps their digits


def _alipay_row(fields: list[str], index: dict[str, int], *, line_no: int, day: date, raw: str) -> ParsedLine:
    def field(name: str) -> str:
        return fields[index[name]]

    business = field("业务类型")
    kind = ALIPAY_KINDS.get(business)
    if kind is None:
        raise StatementError(line_no, "alipay_business", value=repr(business))
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

SMP_WHAT = StatementSource.SMP.value  # shown as "an SMP provisioning list"
SMP_HEADER = ["event", "order_no", "tv_account", "product_code", "charge", "amount_fen", "at", "subscription_id"]
# The first layout listed subscriptions only: a day's unsubscriptions and reversals would pass unseen.
SMP_FIRST_HEADER = [
    "order_no",
    "tv_account",
    "product_code",
    "charge",
    "amount_fen",
    "subscribed_at",
    "subscription_id",
]
SMP_EVENTS = {"subscribed": SUBSCRIPTION, "unsubscribed": UNSUBSCRIPTION}
ORDER_NO_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
AMOUNT_RE = re.compile(r"^[0-9]{1,12}$")


def parse_smp(stream: BinaryIO, day: date) -> Iterator[ParsedLine]:
    """The SMP's list of the subscriptions it made and ended on ``day`` (docs/protocols.md).

    A ``subscribed`` row's amount is what the SMP charged; an ``unsubscribed``
    row's is the phone-bill money it gave back, stored negative as money going back.
    """
    lines = _lines(stream, "utf-8", SMP_WHAT)
    first = next(lines, None)
    if first is None:
        raise StatementError(None, "empty", what=SMP_WHAT)
    header = [name.strip() for name in first[1].split(",")]
    if header == SMP_FIRST_HEADER:
        raise StatementError(1, "smp_first_layout", what=SMP_WHAT, expected=repr(",".join(SMP_HEADER)))
    if header != SMP_HEADER:
        raise StatementError(1, "smp_header", what=SMP_WHAT, expected=repr(",".join(SMP_HEADER)))
    for line_no, text in lines:
        if not text.strip():
            continue
        try:
            fields = next(csv.reader([text]))
        except csv.Error as exc:
            raise StatementError(line_no, "not_csv", error=str(exc)) from None
        if len(fields) != len(SMP_HEADER):
            raise StatementError(line_no, "field_count", found=len(fields), expected=len(SMP_HEADER))
        event, order_no, tv_account, product, charge, amount, at, subscription_id = (f.strip() for f in fields)
        kind = SMP_EVENTS.get(event)
        if kind is None:
            raise StatementError(line_no, "smp_event", value=repr(event), allowed=list(SMP_EVENTS))
        if not ORDER_NO_RE.match(order_no):
            raise StatementError(line_no, "smp_order_no", value=repr(order_no))
        if charge not in SmpCharge.values:
            raise StatementError(line_no, "smp_charge", value=repr(charge), allowed=list(SmpCharge.values))
        if not AMOUNT_RE.match(amount):
            raise StatementError(line_no, "smp_amount", value=repr(amount))
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise StatementError(line_no, "smp_at", value=repr(at)) from None
        if moment.tzinfo is None:
            raise StatementError(line_no, "smp_at_no_zone", value=repr(at))
        if moment.astimezone(BEIJING).date() != day:
            raise StatementError(line_no, "smp_other_day", time=at, day=day.isoformat())
        yield ParsedLine(
            line_no=line_no,
            kind=kind,
            match_key=order_no,
            out_trade_no=order_no,
            transaction_id=_key(subscription_id, line_no=line_no, column="subscription_id"),
            amount_fen=int(amount) if kind == SUBSCRIPTION else -int(amount),
            charge=charge,
            tv_account=_key(tv_account, line_no=line_no, column="tv_account"),
            product_code=_key(product, line_no=line_no, column="product_code"),
            occurred_at=moment,
            raw=text,
        )


PARSERS: dict[str, Parser] = {
    StatementSource.WECHATPAY: parse_wechatpay,
    StatementSource.ALIPAY: parse_alipay,
    StatementSource.SMP: parse_smp,
}
