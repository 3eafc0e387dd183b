"""The real WeChat Pay and Alipay clients' deduction contracts, through their SDKs (and WeChat Pay's APIv2 XML),
against the sandbox's served fakes: pay and sign, the pre-deduction notice, the deduction, the merchant's
termination; and what the clients make of an unavailable provider, a timeout and a refusal.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import requests
from django.utils import timezone

from adapters.alipay.client import AlipayClient
from adapters.providers.types import (
    ContractOrderRequest,
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionState,
    ProviderRefused,
    ProviderUnavailable,
    TradeState,
    UnsignRequest,
)
from adapters.wechatpay.client import WechatPayClient
from sandbox import contracts as sim
from sandbox import faults, payments
from sandbox.models import SimContract, SimContractStatus, SimTrade, SimTradeStatus
from sandbox.simulators.providers import SimulatedWechatPay

KEY_SETTINGS = [
    "WECHATPAY_MERCHANT_PRIVATE_KEY",
    "WECHATPAY_PLATFORM_PUBLIC_KEY",
    "WECHATPAY_APIV3_KEY",
    "WECHATPAY_V2_KEY",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY",
]


@pytest.fixture(scope="session")
def sandbox_keys(tmp_path_factory):
    return tmp_path_factory.mktemp("sandbox-contract-keys")


@pytest.fixture
def gateways(live_server, settings, sandbox_keys) -> str:
    settings.SANDBOX_DIR = sandbox_keys
    for name in KEY_SETTINGS:
        setattr(settings, name, "")
        setattr(settings, f"{name}_FILE", "")
    settings.WECHATPAY_GATEWAY = f"{live_server.url}/sandbox/wechatpay/fake"
    settings.ALIPAY_GATEWAY = f"{live_server.url}/sandbox/alipay/fake/gateway.do"
    settings.WECHATPAY_TIMEOUT_SECONDS = 2
    settings.ALIPAY_TIMEOUT_SECONDS = 2
    return live_server.url


@pytest.fixture
def daytime(time_machine):
    # WeChat Pay sends notices and takes deductions 07:00–22:00 Beijing time only.
    time_machine.move_to(timezone.localtime().replace(hour=10, minute=0), tick=True)


def out_no() -> str:
    return "T" + uuid.uuid4().hex[:20].upper()


def signing(amount_fen: int = 2500) -> ContractOrderRequest:
    number = out_no()
    return ContractOrderRequest(
        out_trade_no=number,
        amount_fen=amount_fen,
        description="VIP 月卡",
        expires_at=(timezone.now() + timedelta(minutes=3)).replace(microsecond=0),
        contract_code=f"C{number}",
        request_serial=int(uuid.uuid4().int % 10**12),
        display_account="tv1001",
        period_months=1,
        renewal_amount_fen=amount_fen,
        first_deduction_on=timezone.localdate(),
    )


def signed_at_the_provider(provider: str, request: ContractOrderRequest) -> SimContract:
    trade = payments.pay_trade(provider, request.out_trade_no)
    contract = sim.sign_paid(trade)
    assert contract is not None and contract.status == SimContractStatus.SIGNED
    return contract


def test_wechatpay_pay_and_sign_notice_deduction_and_termination(gateways, daytime, db):
    client = WechatPayClient()
    request = signing()
    code_url = client.create_with_contract(request)

    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    assert client.create_with_contract(request) == code_url  # the same order again: the same code
    contract = SimContract.objects.get(contract_code=request.contract_code)
    assert contract.trade.out_trade_no == request.out_trade_no and contract.status == SimContractStatus.PENDING
    assert client.query(request.out_trade_no).state == TradeState.NOT_PAID  # one trade, queried with APIv3
    contract = signed_at_the_provider("wechatpay", request)

    assert client.announce_deduction(DeductionNoticeRequest(contract_id=contract.contract_id, amount_fen=2500))
    contract.refresh_from_db()
    assert contract.notice_amount_fen == 2500 and contract.deduct_from > timezone.now()
    deduction = DeductionRequest(
        out_trade_no=out_no(), contract_id=contract.contract_id, amount_fen=2500, description="续费", period_key="S1P2"
    )
    early = client.deduct(deduction)  # before the 3rd day of the notice: refused by WeChat Pay's rule
    assert (early.state, early.code) == (DeductionState.DECLINED, "RULE_LIMIT")
    SimContract.objects.filter(pk=contract.pk).update(deduct_from=timezone.now() - timedelta(minutes=1))
    accepted = client.deduct(deduction)
    assert accepted.state == DeductionState.ACCEPTED
    trade = SimTrade.objects.get(out_trade_no=deduction.out_trade_no)
    assert (trade.deducted_under, trade.attach, trade.status) == (contract.contract_id, "S1P2", "USERPAYING")
    # 申请扣款's orders are asked with their own query (paporderquery), and have no close: it waits for WeChat Pay.
    waiting = client.query_deduction(deduction.out_trade_no)
    assert (waiting.state, waiting.raw["trade_state"]) == (TradeState.NOT_PAID, "ACCEPT")
    with pytest.raises(ProviderUnavailable, match="still ACCEPT"):
        client.close_deduction(deduction.out_trade_no)
    payments.pay_trade("wechatpay", deduction.out_trade_no)
    paid = client.query_deduction(deduction.out_trade_no)
    trade.refresh_from_db()
    assert (paid.state, paid.transaction_id, paid.amount_fen) == (TradeState.PAID, trade.transaction_id, 2500)
    assert paid.paid_at is not None
    assert client.close_deduction(deduction.out_trade_no).already_paid
    assert client.query_deduction(out_no()).state == TradeState.NOT_FOUND
    assert client.close_deduction(request.out_trade_no).closed  # the first period's trade is no deduction

    assert client.unsign(UnsignRequest(contract_code=contract.contract_code, reason="cancelled")).ended
    contract.refresh_from_db()
    assert (contract.status, contract.terminated_by) == (SimContractStatus.TERMINATED, "merchant")
    assert client.unsign(UnsignRequest(contract_code=contract.contract_code)).ended  # nothing left to end
    gone = client.deduct(
        DeductionRequest(out_no(), contract.contract_id, 2500, "续费", "S1P3")  # type: ignore[call-arg]
    )
    assert gone.state == DeductionState.CONTRACT_GONE
    with pytest.raises(ProviderRefused):
        client.announce_deduction(DeductionNoticeRequest(contract_id=contract.contract_id, amount_fen=2500))


def test_wechatpay_apiv2_faults_are_unavailable(gateways, daytime, db, settings):
    client = WechatPayClient()
    settings.WECHATPAY_V2_KEY = "0" * 32  # not the key WeChat Pay knows: it does not take the request
    with pytest.raises(ProviderUnavailable, match="签名错误"):
        client.create_with_contract(signing())
    settings.WECHATPAY_V2_KEY = ""
    faults.set_mode("wechatpay", "down")
    with pytest.raises(ProviderUnavailable, match="SYSTEMERROR"):
        client.create_with_contract(signing())
    with pytest.raises(ProviderUnavailable):
        client.deduct(DeductionRequest(out_no(), "Wx1", 2500, "续费", "S1P2"))  # type: ignore[call-arg]
    faults.set_mode("wechatpay", "slow")  # the answer comes after the client's timeout
    settings.SIMULATOR_SLOW_SECONDS = 3
    with pytest.raises(ProviderUnavailable):
        client.unsign(UnsignRequest(contract_code="CNOTHING"))
    faults.set_mode("wechatpay", "ok")


def test_alipay_pay_and_sign_deduction_and_termination(gateways, db):
    client = AlipayClient()
    request = signing()
    url = client.create_with_contract(request)

    assert url.startswith(f"{gateways}/sandbox/alipay/fake/gateway.do?") and "alipay.trade.wap.pay" in url
    assert not SimTrade.objects.exists()  # nothing is called: the Alipay app opens the signed URL
    page = requests.get(url, timeout=5)  # the customer scans it
    assert page.status_code == 200 and request.out_trade_no in page.text
    contract = SimContract.objects.get(contract_code=request.contract_code)
    assert contract.single_amount_fen == 2500 and timezone.localtime(contract.plan_at).date() == timezone.localdate()
    tampered = url.replace("total_amount%22%3A%2225.00", "total_amount%22%3A%220.01")
    assert requests.get(tampered, timeout=5).status_code == 400  # its signature no longer verifies
    contract = signed_at_the_provider("alipay", request)

    deduction = DeductionRequest(out_no(), contract.contract_id, 2500, "续费", "S1P2")  # type: ignore[call-arg]
    paid = client.deduct(deduction)
    assert (paid.state, paid.amount_fen) == (DeductionState.PAID, 2500) and paid.transaction_id
    assert SimTrade.objects.get(out_trade_no=deduction.out_trade_no).status == SimTradeStatus.PAID
    again = client.deduct(DeductionRequest(out_no(), contract.contract_id, 2500, "续费", "S1P3"))  # type: ignore[call-arg]
    assert (again.state, again.code) == (DeductionState.DECLINED, "ACQ.CYCLE_PAY_DATE_NOT_MATCH")  # once per period
    too_much = client.deduct(DeductionRequest(out_no(), contract.contract_id, 9900, "续费", "S1P3"))  # type: ignore[call-arg]
    assert too_much.state == DeductionState.DECLINED
    assert client.announce_deduction(DeductionNoticeRequest(contract.contract_id, 2500)) is False

    assert client.unsign(UnsignRequest(contract_code=contract.contract_code, contract_id=contract.contract_id)).ended
    contract.refresh_from_db()
    assert contract.status == SimContractStatus.TERMINATED
    assert client.unsign(UnsignRequest(contract_code=contract.contract_code)).ended  # nothing left to end
    gone = client.deduct(DeductionRequest(out_no(), contract.contract_id, 2500, "续费", "S1P4"))  # type: ignore[call-arg]
    assert gone.state == DeductionState.CONTRACT_GONE


def test_alipay_faults_are_unavailable(gateways, db, settings):
    client = AlipayClient()
    faults.set_mode("alipay", "down")
    with pytest.raises(ProviderUnavailable):
        client.deduct(DeductionRequest(out_no(), "2026", 2500, "续费", "S1P2"))  # type: ignore[call-arg]
    with pytest.raises(ProviderUnavailable):
        client.unsign(UnsignRequest(contract_code="CNOTHING"))
    faults.set_mode("alipay", "ok")
    settings.ALIPAY_GATEWAY = "http://127.0.0.1:9/gateway.do"  # nothing listens there
    client = AlipayClient()
    with pytest.raises(ProviderUnavailable):
        client.deduct(DeductionRequest(out_no(), "2026", 2500, "续费", "S1P2"))  # type: ignore[call-arg]
    assert urlsplit(client.create_with_contract(signing())).path == "/gateway.do"  # signing needs no call


# --- 申请扣款's orders: the simulator as WeChat Pay (a review of the change to 申请扣款) -------------------------


def _accepted_deduction(client) -> str:
    request = signing()
    client.create_with_contract(request)
    contract = signed_at_the_provider("wechatpay", request)
    client.announce_deduction(DeductionNoticeRequest(contract_id=contract.contract_id, amount_fen=2500))
    SimContract.objects.filter(pk=contract.pk).update(deduct_from=timezone.now() - timedelta(minutes=1))
    number = out_no()
    client.deduct(DeductionRequest(number, contract.contract_id, 2500, "续费", "S1P2"))  # type: ignore[call-arg]
    return number


def test_fake_paporderquery_confirms_like_the_simulator_after_10_s(gateways, daytime, time_machine, db):
    """README: "the renewal completed (or within 10 s by the query)": the served paporderquery confirms in the app
    after 10 s as the simulator does (it did not: with the real client a deduction was ACCEPT for ever)."""
    client = WechatPayClient()
    number = _accepted_deduction(client)
    time_machine.shift(timedelta(seconds=11))
    trade = client.query_deduction(number)  # asked first: the simulator's own query would confirm it in the DB
    assert trade.state == TradeState.PAID, trade.raw
    assert SimulatedWechatPay().query_deduction(number).state == TradeState.PAID


def test_simulator_has_no_close_for_deductions_either(gateways, daytime, db):
    """WeChat Pay has no close for 申请扣款's orders; the simulator closed them (the QR close), so the lifecycle under
    it never met what the real client does: a deduction on its way is asked again, then a person."""
    client = WechatPayClient()
    number = _accepted_deduction(client)
    with pytest.raises(ProviderUnavailable):
        client.close_deduction(number)
    with pytest.raises(ProviderUnavailable):
        SimulatedWechatPay().close_deduction(number)
    assert SimTrade.objects.get(out_trade_no=number).status != "CLOSED"


def test_simulator_query_deduction_does_not_see_a_pay_and_sign_trade(gateways, daytime, db):
    """paporderquery sees 申请扣款's orders only; the simulator's query of deductions does the same."""
    client = WechatPayClient()
    request = signing()
    client.create_with_contract(request)
    assert client.query_deduction(request.out_trade_no).state == TradeState.NOT_FOUND
    assert SimulatedWechatPay().query_deduction(request.out_trade_no).state == TradeState.NOT_FOUND
