"""The real Alipay client's wire format and answer handling against Alipay's documentation (a review of
2026-12-06 night found the refund query and the bill download's answers wrong; those tests failed before).

A fake HTTP layer stands in for Alipay's gateway: ``alipay.urlopen`` (python-alipay-sdk 3.4.0) is replaced by a
function that records the request URL and answers with a body signed by a test "Alipay" key, as the gateway
does (``{"<method>_response": {...}, "sign": "..."}``). No network, no database.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import date, datetime
from urllib.parse import parse_qs, urlsplit

import alipay as alipay_sdk
import pytest
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256
from django.utils import timezone

from adapters.alipay import client as client_module
from adapters.alipay import config
from adapters.providers.types import RefundState
from adapters.statements import StatementUnavailable
from tests.support.keys import made_key, private_pem, public_pem

APP_KEY = made_key("our Alipay app key, for the wire tests")
ALIPAY_KEY = made_key("Alipay's key, for the wire tests")


class FakeGateway:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.answers: list[tuple[dict, bool]] = []  # (the response object, signed correctly?)

    def answer(self, response: dict, *, good_signature: bool = True) -> None:
        self.answers.append((response, good_signature))

    def urlopen(self, url: str, timeout: float | None = None):
        params = {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
        self.requests.append(params)
        response, good = self.answers.pop(0)
        method = params["method"]
        content = json.dumps(response, ensure_ascii=False, separators=(",", ":"))
        signed = content if good else content + " "
        sign = base64.b64encode(ALIPAY_KEY.sign(signed.encode(), padding.PKCS1v15(), SHA256())).decode()
        name = method.replace(".", "_") + "_response"
        body = f'{{"{name}":{content},"sign":"{sign}"}}'
        return io.BytesIO(body.encode())

    def biz(self, index: int = -1) -> dict:
        return json.loads(self.requests[index]["biz_content"])


@pytest.fixture
def gateway(monkeypatch, settings):
    settings.ALIPAY_APP_ID = "2021000000000001"
    settings.ALIPAY_GATEWAY = "https://openapi.alipay.com/gateway.do"
    monkeypatch.setattr(config, "app_private_key_pem", lambda: private_pem(APP_KEY))
    monkeypatch.setattr(config, "alipay_public_key_pem", lambda: public_pem(ALIPAY_KEY))
    fake = FakeGateway()
    monkeypatch.setattr(alipay_sdk, "urlopen", fake.urlopen)
    return fake


@pytest.fixture
def client(gateway):
    return client_module.AlipayClient()


# --- alipay.trade.fastpay.refund.query -------------------------------------------------------------------


def test_refund_query_amount_without_refund_status_is_not_a_success(gateway, client):
    """Alipay's alipay.trade.fastpay.refund.query: "refund_status 退款状态。枚举值：REFUND_SUCCESS 退款处理成功；
    未返回该字段表示退款请求未收到或者退款失败". An answer that echoes the refund (refund_amount) without
    refund_status is not a refund done; the client counts any refund_amount as done (client.py:201)."""
    gateway.answer(
        {
            "code": "10000",
            "msg": "Success",
            "trade_no": "2024010122001400000000000001",
            "out_trade_no": "T1",
            "out_request_no": "R1",
            "total_amount": "25.00",
            "refund_amount": "25.00",
        }
    )

    result = client.query_refund("R1", out_trade_no="T1")

    assert gateway.biz()["out_request_no"] == "R1"
    assert result.state != RefundState.SUCCEEDED


# --- alipay.data.dataservice.bill.downloadurl.query ------------------------------------------------------


def test_bill_download_url_answer_with_a_bad_signature_is_statement_unavailable(gateway, client):
    """python-alipay-sdk raises AliPayValidationError (not a subclass of AliPayException) when the answer's
    signature does not verify; download_statement catches only AliPayException/OSError/ValueError
    (client.py:365), so the reconciliation sees a raw AliPayValidationError instead of StatementUnavailable."""
    gateway.answer(
        {"code": "10000", "msg": "Success", "bill_download_url": "https://dwbillcenter.alipay.com/x"},
        good_signature=False,
    )

    with pytest.raises(StatementUnavailable):
        client.download_statement(date(2024, 1, 1))


def test_bill_download_asks_for_the_trade_bill(gateway, client, monkeypatch):
    """bill_type trade (商户基于支付宝交易收单的业务账单), bill_date yyyy-MM-dd; matches (a control)."""
    gateway.answer({"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist", "sub_msg": "x"})

    result = client.download_statement(date(2024, 1, 1))

    assert gateway.biz() == {"bill_type": "trade", "bill_date": "2024-01-01"}
    assert result.file is None


# --- 周期扣款: the deduction ------------------------------------------------------------------------------------


def test_deduction_wire(gateway, client):
    from adapters.providers.types import DeductionRequest

    request = DeductionRequest(
        out_trade_no="T20240201000001",
        contract_id="20245201234567890123",
        amount_fen=2500,
        description="VIP 包月",
        period_key="S1P2",
    )
    gateway.answer(
        {
            "code": "10000",
            "msg": "Success",
            "trade_no": "1",
            "total_amount": "25.00",
            "gmt_payment": "2024-02-01 08:00:00",
        }
    )

    client.deduct(request)

    sent = gateway.requests[-1]
    biz = gateway.biz()
    assert sent["method"] == "alipay.trade.pay" and sent["notify_url"]
    assert biz["product_code"] == "CYCLE_PAY_AUTH"
    assert biz["agreement_params"] == {"agreement_no": "20245201234567890123"}
    assert biz["total_amount"] == "25.00" and biz["subject"]
    # the SDK's timestamp: Beijing time, as Alipay expects ("yyyy-MM-dd HH:mm:ss")
    sent_at = datetime.strptime(sent["timestamp"], "%Y-%m-%d %H:%M:%S")
    beijing_now = timezone.localtime(timezone.now()).replace(tzinfo=None)
    assert abs((sent_at - beijing_now).total_seconds()) < 120
