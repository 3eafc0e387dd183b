"""Issue #18, point 7 and the SMP's new list: what the statements must add up to, and what they may say.

* The providers' summary totals (amounts, refunds, fees) are checked against
  the rows, not only their counts: a file whose rows were edited is refused.
* A refund of an earlier day's payment in WeChat Pay's REFUND bill (its
  交易时间 is the payment's) is taken on the refund's day.
* The SMP's list has unsubscriptions; its first layout, without them, is refused.
"""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.utils import translation

from billing.models import Statement, StatementLine
from billing.reconciliation.importer import statement_import
from billing.reconciliation.parsers import PARSERS, StatementError
from tests.billing.statement_files import ALIPAY_FILE, DAY, SMP_FILE, WECHAT_FILE

pytestmark = pytest.mark.django_db


def refused(source: str, content: bytes, day: date = DAY) -> str:
    """Why the file is refused, in English (tests/billing/test_refusals_translated.py reads it in Chinese)."""
    with pytest.raises(StatementError) as caught:
        statement_import(source=source, day=day, stream=io.BytesIO(content), file_name="bad.csv")
    assert not Statement.objects.exists() and not StatementLine.objects.exists(), "half imported"
    with translation.override("en"):
        return str(caught.value)


def parsed(source: str, content: bytes, day: date = DAY) -> list:
    return list(PARSERS[source](io.BytesIO(content), day))


def edit(content: bytes, line_no: int, old: str, new: str, encoding: str = "utf-8") -> bytes:
    lines = content.decode(encoding).split("\r\n")
    assert old in lines[line_no - 1], (old, lines[line_no - 1])
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return "\r\n".join(lines).encode(encoding)


# --- WeChat Pay's summary ---------------------------------------------------------------------------


def test_the_fixture_adds_up():
    assert len(parsed("wechatpay", WECHAT_FILE.read_bytes())) == 3
    assert len(parsed("alipay", ALIPAY_FILE.read_bytes())) == 3


@pytest.mark.parametrize(
    ("line", "old", "new", "message"),
    [
        # A row's amount changed, its summary not: the file was edited after WeChat Pay made it.
        (
            3,
            "`68.00,`0.00,`",
            "`86.00,`0.00,`",
            "line 6: the summary's 订单总金额 is 118.00, the rows' 订单金额 add up to 136.00",
        ),
        (
            2,
            "`25.00,`0.00,`0,`0,",
            "`52.00,`0.00,`0,`0,",
            "line 6: the summary's 应结订单总金额 is 88.00, the rows' 应结订单金额 add up to 115.00",
        ),
        (
            4,
            "`10.00,`0.00,`ORIGINAL",
            "`1.00,`0.00,`ORIGINAL",
            "line 6: the summary's 退款总金额 is 10.00, the rows' 退款金额 add up to 1.00",
        ),
        (
            2,
            "`0.15000,",
            "`0.25000,",
            "line 6: the summary's 手续费总金额 is 0.46800, the rows' 手续费 add up to 0.56800",
        ),
        # The summary changed, the rows not.
        (
            6,
            "`0.46800,",
            "`0.00000,",
            "line 6: the summary's 手续费总金额 is 0.00000, the rows' 手续费 add up to 0.46800",
        ),
        (6, "`10.00,`0.00,`0.46800", "`20.00,`0.00,`0.46800", "line 6: the summary's 退款总金额 is 20.00"),
        (
            6,
            "`118.00,`10.00",
            "`118.00,`11.00",
            "line 6: the summary's 申请退款总金额 is 11.00, the rows' 申请退款金额 add up to 10.00",
        ),
        (2, "`0.15000,", "`abc,", "line 2: 手续费 'abc' is not a number"),
    ],
)
def test_wechat_pay_summary_totals_are_checked_against_the_rows(line, old, new, message):
    assert refused("wechatpay", edit(WECHAT_FILE.read_bytes(), line, old, new)).startswith(message)


def test_a_refund_of_an_earlier_payment_in_the_refund_bill_is_taken_on_the_refunds_day():
    """WeChat Pay's REFUND bill: 交易时间 is the payment's, 退款申请时间/退款成功时间 the refund's."""
    header = (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,"
        "退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
    )
    row = (
        "`2026-11-23 20:15:02,`wx8888888888888888,`1900000001,`0,`,`4200002931202611231234567890,"
        "`20261123201430aZ3kQ9mWx1,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,"
        "`2026-11-25 10:00:00,`2026-11-25 10:00:03,`50300002931202611250012345678,`20261123201430aZ3kQ9mWx1F1,"
        "`25.00,`0.00,`ORIGINAL,`SUCCESS,`VIP 影视会员 · 包月,`,`-0.15000,`0.60%,`25.00,`25.00,`"
    )
    summary = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    content = "\r\n".join([header, row, summary, "`1,`0.00,`25.00,`0.00,`-0.15000,`25.00,`25.00", ""]).encode()
    (line,) = parsed("wechatpay", content)
    assert (line.kind, line.match_key, line.amount_fen, line.out_trade_no) == (
        "refund", "20261123201430aZ3kQ9mWx1F1", -2500, "20261123201430aZ3kQ9mWx1",
    )  # fmt: skip
    assert line.occurred_at.isoformat() == "2026-11-25T10:00:03+08:00"  # the refund's time, not the payment's
    # The refund of another day is still refused, and so is a payment time after the day.
    other_day = content.replace(b"`2026-11-25 10:00:03,", b"`2026-11-26 10:00:03,")
    assert refused("wechatpay", other_day).startswith("line 2: 退款成功时间 2026-11-26 10:00:03 is not on 2026-11-25")
    later = content.replace(b"`2026-11-23 20:15:02,", b"`2026-11-26 20:15:02,")
    assert refused("wechatpay", later).startswith("line 2: 交易时间 2026-11-26 20:15:02 is not on 2026-11-25")
    # In the ALL bill (no refund times) a refund row's 交易时间 must be on the day, as before.
    assert refused("wechatpay", WECHAT_FILE.read_bytes(), date(2026, 11, 26)).startswith("line 2: 交易时间")


# --- Alipay's totals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "old", "new", "message"),
    [
        (
            10,
            "商家实收共253.00元",
            "商家实收共252.00元",
            "line 10: #交易合计 says 商家实收 252.00, the rows add up to 253.00",
        ),
        (
            11,
            "商家实收退款共-5.00元",
            "商家实收退款共-6.00元",
            "line 11: #退款合计 says 商家实收 -6.00, the rows add up to -5.00",
        ),
        (10, "商家优惠共0.00元", "商家优惠共1.00元", "line 10: #交易合计 says 商家优惠 1.00, the rows add up to 0.00"),
        (
            6,
            ",5.00,5.00,0.00,",
            ",5.00,4.00,0.00,",
            "line 10: #交易合计 says 商家实收 253.00, the rows add up to 252.00",
        ),
        (11, "#退款合计", "#备注", "line 12: no #退款合计 line after the detail list"),
    ],
)
def test_alipay_totals_are_checked_against_the_rows(line, old, new, message):
    content = edit(ALIPAY_FILE.read_bytes(), line, old, new, "gbk")
    assert refused("alipay", content).startswith(message)


# --- the SMP's list ------------------------------------------------------------------------------------


def test_the_smp_list_in_its_first_layout_is_refused_for_it_cannot_say_what_was_ended():
    first = (
        b"order_no,tv_account,product_code,charge,amount_fen,subscribed_at,subscription_id\r\n"
        b"20261125091430aZ3kQ9mWx1,tv1001,SMP-VIP-MONTH,prepaid,0,2026-11-25T09:15:04+08:00,SUB7F3A9C2E11D04B6A\r\n"
    )
    assert refused("smp", first).startswith(
        "line 1: an SMP provisioning list in the first layout, without unsubscriptions: the list must start with "
        "'event,order_no,tv_account,product_code,charge,amount_fen,at,subscription_id'"
    )


@pytest.mark.parametrize(
    ("line", "old", "new", "message"),
    [
        (2, "subscribed,", "renewed,", "line 2: event 'renewed' is not one of subscribed, unsubscribed"),
        (5, ",2500,", ",-2500,", "line 5: amount_fen '-2500' is not a whole number of fen"),
        (3, ",tv1001,", ",,", "line 3: tv_account '' is empty"),
        (3, ",SMP-VIP-MONTH,", ",,", "line 3: product_code '' is empty"),
    ],
)
def test_an_smp_row_that_cannot_be_read_names_its_line(line, old, new, message):
    assert refused("smp", edit(SMP_FILE.read_bytes(), line, old, new)).startswith(message)


def test_a_payment_code_trade_reversed_after_it_was_paid_is_read_as_a_reversal():
    """WeChat Pay lists a trade reversed after it was paid in the bill, under the trade's own number
    (交易状态 REVOKED, the money given back in the refund columns); a file with one used to be refused whole."""
    header = WECHAT_FILE.read_bytes().decode().split("\r\n")[0]
    row = (
        "`2026-11-25 10:01:00,`wx8888888888888888,`1900000001,`0,`,`4200002931202611251234567890,"
        "`20261125100000aZ3kQ9mWx1,`oSandbox1234567890,`MICROPAY,`REVOKED,`OTHERS,`CNY,`0.00,`0.00,"
        "`5200002931202611251234567890,`,`25.00,`0.00,`ORIGINAL,`SUCCESS,`VIP 影视会员 · 包月,`,`-0.15000,`0.60%,"
        "`25.00,`25.00,`"
    )
    summary = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
    content = "\r\n".join([header, row, summary, "`1,`0.00,`25.00,`0.00,`-0.15000,`25.00,`25.00", ""]).encode()
    (line,) = parsed("wechatpay", content)
    assert (line.kind, line.match_key, line.amount_fen, line.out_trade_no, line.refund_id) == (
        "reversal", "20261125100000aZ3kQ9mWx1", -2500, "20261125100000aZ3kQ9mWx1", "5200002931202611251234567890",
    )  # fmt: skip
    # Its amounts count in the summary's refund totals like a refund's.
    edited = content.replace(b"`1,`0.00,`25.00,", b"`1,`0.00,`24.00,")
    assert "the summary's 退款总金额 is 24.00, the rows' 退款金额 add up to 25.00" in refused("wechatpay", edited)
    # A status still unknown refuses the file, naming it.
    closed = content.replace(b"`REVOKED,", b"`CLOSED,")
    assert refused("wechatpay", closed).startswith("line 2: 交易状态 'CLOSED' is none of SUCCESS, REFUND, REVOKED")
