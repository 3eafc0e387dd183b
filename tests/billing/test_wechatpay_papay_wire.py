"""What the real WeChat Pay client sends for 委托代扣's deduction and pre-deduction notice, checked against WeChat
Pay's documents rather than against our own sandbox (found by a review of the wire formats, 2026-12-06 night).

* 周期扣费 (pay.weixin.qq.com/wiki/doc/api/wxpay_v2/papay/chapter2_8.shtml): the pre-deduction notice's rules apply
  to 申请扣款, ``pay/pappayapply`` (APIv2, trade_type PAP); "商户必须先调用【预扣费通知API】接口后调用【申请扣款】
  接口". The APIv3 受理扣款 ``/v3/papay/pay/transactions/apply`` the client called before is 预约扣费's, another
  product, which takes a deduction only after a schedule ("商户调用「预约扣费」接口预约成功后").
* 预扣费通知 ``/v3/papay/contracts/{contract_id}/notify``: ``deduct_duration.count`` takes 1, 2 or 3 (DAY) and is
  optional; the client sent 7. Without it the deduction has the default 7 days the 3rd–9th day rule counts on.

The HTTP layer is replaced by a fake that records the request and answers as WeChat Pay does (APIv2 XML signed
with the APIv2 key; APIv3 answers signed with a platform key the test makes).
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from adapters.providers.types import (
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionState,
    ProviderUnavailable,
    TradeState,
)
from adapters.wechatpay import v2

PLATFORM_KEY_ID = "PUB_KEY_ID_0119000000012026112500000000000001"
REQUEST = DeductionRequest(
    out_trade_no="20261125100000AbCdEfGhIj", contract_id="Wx1546351125", amount_fen=2500,
    description="VIP 影视会员 · 包月 续费", period_key="S1P2",
)  # fmt: skip


class Answer:
    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code, self.content, self.text, self.headers = status, body, body.decode(), headers


@pytest.fixture
def wire(settings, monkeypatch):
    """(the client, the requests it sent, the APIv2 answer to give next)."""
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.WECHATPAY_MERCHANT_PRIVATE_KEY = merchant.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = (
        platform.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = PLATFORM_KEY_ID
    settings.WECHATPAY_APIV3_KEY = secrets.token_hex(16)
    settings.WECHATPAY_V2_KEY = secrets.token_hex(16)
    settings.WECHATPAY_GATEWAY = "https://api.mch.weixin.qq.com"
    sent: list[dict] = []
    next_v2 = {"result_code": "SUCCESS"}

    def v3_post(url, json=None, data=None, headers=None, **kwargs):
        sent.append({"url": url, "json": json})
        ts, nonce = str(int(time.time())), uuid.uuid4().hex
        signature = platform.sign(f"{ts}\n{nonce}\n\n".encode(), padding.PKCS1v15(), SHA256())
        return Answer(
            204,
            b"",
            {
                "Wechatpay-Timestamp": ts,
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": base64.b64encode(signature).decode(),
                "Wechatpay-Serial": PLATFORM_KEY_ID,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            },
        )

    class Session:
        def post(self, url, data=None, headers=None, **kwargs):
            sent.append({"url": url, "xml": v2.parse_xml(data)})
            answer = {"return_code": "SUCCESS", "appid": settings.WECHATPAY_APPID, "mch_id": settings.WECHATPAY_MCHID}
            answer.update(nonce_str=uuid.uuid4().hex, **next_v2)
            return Answer(200, v2.to_xml(v2.signed(answer, settings.WECHATPAY_V2_KEY)), {})

    import wechatpayv3.core

    monkeypatch.setattr(wechatpayv3.core.requests, "post", v3_post)
    monkeypatch.setattr("adapters.wechatpay.client.keep_alive_session", lambda base: Session())
    from adapters.wechatpay.client import WechatPayClient

    return WechatPayClient(), sent, next_v2


def test_the_deduction_is_apiv2_pappayapply_signed_with_the_apiv2_key(wire, settings):
    client, sent, _ = wire
    result = client.deduct(REQUEST)

    assert result.state == DeductionState.ACCEPTED
    (request,) = sent
    assert urlsplit(request["url"]).path == "/pay/pappayapply"
    xml = request["xml"]
    assert v2.verify(xml, settings.WECHATPAY_V2_KEY)
    assert {k: xml[k] for k in ("trade_type", "contract_id", "out_trade_no", "total_fee", "fee_type", "attach")} == {
        "trade_type": "PAP",
        "contract_id": "Wx1546351125",
        "out_trade_no": REQUEST.out_trade_no,
        "total_fee": "2500",  # fen
        "fee_type": "CNY",
        "attach": "S1P2",  # the period's key comes back in the notification and the bill
    }
    assert (xml["appid"], xml["mch_id"]) == (settings.WECHATPAY_APPID, settings.WECHATPAY_MCHID)
    assert xml["notify_url"].endswith("/billing/notify/wechatpay/v2/")  # the result is an APIv2 notification
    assert xml["body"] and len(xml["body"]) <= 32 and xml["spbill_create_ip"]


@pytest.mark.parametrize(
    ("err_code", "state"),
    [
        ("CONTRACT_NOT_EXIST", DeductionState.CONTRACT_GONE),
        ("ORDERPAID", DeductionState.UNKNOWN),
        ("NOTENOUGH", DeductionState.DECLINED),
        ("RULELIMIT", DeductionState.DECLINED),
    ],
)
def test_a_refused_deduction_says_why(wire, err_code, state):
    client, _sent, next_v2 = wire
    next_v2.update(result_code="FAIL", err_code=err_code, err_code_des="说明")
    result = client.deduct(REQUEST)
    assert (result.state, result.code) == (state, err_code)


def test_a_deduction_wechat_pay_could_not_take_now_is_asked_again(wire):
    client, _sent, next_v2 = wire
    next_v2.update(result_code="FAIL", err_code="SYSTEMERROR", err_code_des="系统超时")
    with pytest.raises(ProviderUnavailable, match="SYSTEMERROR"):
        client.deduct(REQUEST)


def test_the_pre_deduction_notice_leaves_the_duration_to_wechat_pays_default(wire, settings):
    client, sent, _ = wire
    assert client.announce_deduction(DeductionNoticeRequest(contract_id="Wx1546351125", amount_fen=2500))
    (request,) = sent
    assert urlsplit(request["url"]).path == "/v3/papay/contracts/Wx1546351125/notify"
    assert request["json"] == {
        "mchid": settings.WECHATPAY_MCHID,
        "appid": settings.WECHATPAY_APPID,
        "estimated_amount": {"amount": 2500, "currency": "CNY"},
    }


@pytest.mark.parametrize(
    ("trade_state", "state"),
    [
        ("SUCCESS", TradeState.PAID),
        ("REFUND", TradeState.PAID),
        ("ACCEPT", TradeState.NOT_PAID),
        ("NOTPAY", TradeState.NOT_PAID),
        ("PAY_FAIL", TradeState.FAILED),
        ("CLOSED", TradeState.CLOSED),
    ],
)
def test_a_deduction_is_asked_with_paporderquery(wire, settings, trade_state, state):
    """查询订单 of 申请扣款's orders is APIv2 ``/pay/paporderquery`` ("该接口仅提供微信扣款服务申请扣款接口创建的订单
    进行查询"); the APIv3 query the client used does not see them."""
    client, sent, next_v2 = wire
    next_v2.update(
        trade_state=trade_state, out_trade_no=REQUEST.out_trade_no, total_fee="2500",
        transaction_id="4200000001202611250000000001", time_end="20261125100005",
    )  # fmt: skip
    trade = client.query_deduction(REQUEST.out_trade_no)
    (request,) = sent
    assert urlsplit(request["url"]).path == "/pay/paporderquery"
    assert v2.verify(request["xml"], settings.WECHATPAY_V2_KEY)
    assert request["xml"]["out_trade_no"] == REQUEST.out_trade_no
    assert trade.state == state
    if state == TradeState.PAID:
        assert (trade.transaction_id, trade.amount_fen) == ("4200000001202611250000000001", 2500)
        assert trade.paid_at is not None and trade.paid_at.isoformat().startswith("2026-11-25T10:00:05")


def test_a_deduction_wechat_pay_does_not_have_is_not_found(wire):
    client, _sent, next_v2 = wire
    next_v2.update(result_code="FAIL", err_code="ORDERNOTEXIST", err_code_des="此订单号不存在")
    assert client.query_deduction(REQUEST.out_trade_no).state == TradeState.NOT_FOUND
    assert client.close_deduction(REQUEST.out_trade_no).closed
