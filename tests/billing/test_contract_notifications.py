"""The notifications of the deduction contracts (docs/interfaces.md §8): WeChat Pay's APIv2 XML (the
pay-and-sign order's payment at /billing/notify/wechatpay/v2/, the contract's signing and end at
/billing/notify/wechatpay/contract/), signed with the APIv2 key; Alipay's ``dut_user_sign`` and
``dut_user_unsign`` at /billing/notify/alipay/, RSA2.

The signatures are made here with this module's own implementation of each algorithm (WeChat Pay's
documented example checks it), with the sandbox's keys or a forger's. Every refusal changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from functools import cache
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from django.conf import settings
from django.test import Client

from adapters.wechatpay import v2
from billing.models import ContractStatus, PaymentNotification, ProviderContract
from ipvas.actors import Actor, ActorKind
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_secret
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import OrderStatus
from orders.models import Order, Subscription
from sandbox import contracts as sim
from sandbox import payments
from sandbox.models import SimContract

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
CONTRACT_URL = "/billing/notify/wechatpay/contract/"
V2_URL = "/billing/notify/wechatpay/v2/"
ALIPAY_URL = "/billing/notify/alipay/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to("2026-12-05 10:00:00+08:00", tick=False)
    return time_machine


# --- the algorithms, written here independently -------------------------------------------------


def md5_sign(params: dict[str, str], key: str) -> str:
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k]) + f"&key={key}"
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest().upper()


def hmac_sign(params: dict[str, str], key: str) -> str:
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k]) + f"&key={key}"
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


def xml(params: dict[str, str]) -> bytes:
    return ("<xml>" + "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in params.items()) + "</xml>").encode()


@cache
def alipay_key() -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(sandbox_private_key_pem("alipay_private_key.pem").encode(), None)


@cache
def forger_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rsa2(params: dict[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in ("sign", "sign_type"))
    signature = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), SHA256())).decode()
    return {**params, "sign": signature, "sign_type": "RSA2"}


def test_the_apiv2_signature_is_wechat_pays_documented_example():
    params = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test"}
    params["nonce_str"] = "ibuaiVcKdpRxkhJA"
    documented = "192006250b4c09247ec02edce69f6a2d"  # the APIv2 key of WeChat Pay's own example
    assert v2.sign(params, documented) == md5_sign(params, documented) == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert v2.sign(params, documented, sign_type="HMAC-SHA256") == hmac_sign(params, documented)
    assert hmac_sign(params, documented) == "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    assert v2.verify({**params, "sign": md5_sign(params, documented)}, documented)
    signed = {**params, "sign_type": "HMAC-SHA256"}
    assert v2.verify({**signed, "sign": hmac_sign(signed, documented)}, documented)
    assert not v2.verify({**params, "sign": md5_sign(params, documented), "body": "other"}, documented)


def test_untrusted_xml_with_a_doctype_or_nesting_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><b>&a;</b></xml>'
    for body in (bomb, b"<xml><a><b>1</b></a></xml>", b"<root><a>1</a></root>", b"not xml", b"<xml>" * 40000):
        with pytest.raises(ValueError):
            v2.parse_xml(body)
    assert v2.parse_xml(xml({"a": "x<y&", "b": "中文"})) == {"a": "x<y&", "b": "中文"}
    assert v2.parse_xml(v2.to_xml({"a": "x]]>y"})) == {"a": "x]]>y"}


# --- a contract offered in a QR code, and its notifications ----------------------------------------


def offered(run_tasks, method: str) -> tuple[Order, ProviderContract, SimContract]:
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    contract = ProviderContract.objects.get(order=order)
    return order, contract, SimContract.objects.get(contract_code=contract.contract_code)


def wechat_contract_params(simulated: SimContract, **changes: str) -> dict[str, str]:
    params = {
        "return_code": "SUCCESS",
        "result_code": "SUCCESS",
        "mch_id": settings.WECHATPAY_MCHID,
        "contract_code": simulated.contract_code,
        "plan_id": settings.WECHATPAY_PAPAY_PLAN_ID,
        "openid": "oSandboxUser",
        "change_type": "ADD",
        "operate_time": "2026-12-05 10:00:00",
        "contract_id": simulated.contract_id,
        "request_serial": "1",
    }
    params.update(changes)
    return params


def post_xml(url: str, params: dict[str, str], *, key: str | None = None, sign: str | None = None):
    signed = {**params, "sign": sign or md5_sign(params, key or sandbox_secret("wechatpay_apiv2_key.txt"))}
    return Client().post(url, data=xml(signed), content_type="text/xml")


def answer(response) -> dict[str, str]:
    return v2.parse_xml(response.content)


def nothing_stored() -> bool:
    return not PaymentNotification.objects.exists()


def test_a_wechatpay_signing_is_verified_stored_once_and_applied(demo, run_tasks, frozen):
    _order, contract, simulated = offered(run_tasks, "wechat_qr")
    params = wechat_contract_params(simulated)
    first = post_xml(CONTRACT_URL, params)
    again = post_xml(CONTRACT_URL, params)  # replayed: an answer, nothing more
    assert first.status_code == again.status_code == 200
    assert answer(first)["return_code"] == answer(again)["return_code"] == "SUCCESS"
    contract.refresh_from_db()
    assert (contract.status, contract.provider_contract_id) == (ContractStatus.SIGNED, simulated.contract_id)
    stored = PaymentNotification.objects.get(contract=contract)
    assert stored.notification_id == f"contract:{simulated.contract_id}:ADD" and stored.decoded["change_type"] == "ADD"
    # HMAC-SHA256 when the message says so.
    hmac_params = {**wechat_contract_params(simulated, change_type="DELETE"), "sign_type": "HMAC-SHA256"}
    signed = hmac_sign(hmac_params, sandbox_secret("wechatpay_apiv2_key.txt"))
    assert post_xml(CONTRACT_URL, hmac_params, sign=signed).status_code == 200
    contract.refresh_from_db()
    assert contract.status == ContractStatus.TERMINATED


@pytest.mark.parametrize(
    "case",
    ["forged", "wrong key", "not ours", "other template", "unknown contract", "other contract id", "bad xml", "fail"],
)
def test_a_wechatpay_contract_notification_that_is_not_right_is_refused(demo, run_tasks, frozen, case):
    _order, contract, simulated = offered(run_tasks, "wechat_qr")
    if case == "other contract id":
        post_xml(CONTRACT_URL, wechat_contract_params(simulated))  # signed under its real id first
        PaymentNotification.objects.all().delete()
    params = wechat_contract_params(simulated)
    if case == "forged":
        response = post_xml(CONTRACT_URL, params, sign="0" * 32)
    elif case == "wrong key":
        response = post_xml(CONTRACT_URL, params, key=secrets.token_hex(16))
    elif case == "not ours":
        response = post_xml(CONTRACT_URL, {**params, "mch_id": "1900000999"})
    elif case == "other template":
        response = post_xml(CONTRACT_URL, {**params, "plan_id": "99999"})
    elif case == "unknown contract":
        response = post_xml(CONTRACT_URL, {**params, "contract_code": "CNOBODY"})
    elif case == "other contract id":
        response = post_xml(CONTRACT_URL, {**params, "contract_id": "Wx999", "change_type": "DELETE"})
    elif case == "fail":
        response = post_xml(CONTRACT_URL, {**params, "result_code": "FAIL"})
    else:
        response = Client().post(CONTRACT_URL, data=b"<xml><a>", content_type="text/xml")
    assert response.status_code == 400 and answer(response)["return_code"] == "FAIL"
    assert nothing_stored()
    contract.refresh_from_db()
    assert contract.status == (ContractStatus.SIGNED if case == "other contract id" else ContractStatus.PENDING)


def test_a_stale_signing_after_the_users_end_changes_nothing(demo, run_tasks, frozen):
    _order, contract, simulated = offered(run_tasks, "wechat_qr")
    ended = wechat_contract_params(simulated, change_type="DELETE", contract_termination_mode="2")
    assert post_xml(CONTRACT_URL, ended).status_code == 200  # reordered: the end first
    assert post_xml(CONTRACT_URL, wechat_contract_params(simulated)).status_code == 200
    contract.refresh_from_db()
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, "user")
    stored = PaymentNotification.objects.get(contract=contract, notification_id__endswith=":ADD")
    assert stored.outcome == "contract stale: ended by the user already"


def v2_payment(order: Order, **changes: str) -> dict[str, str]:
    trade = payments.pay_trade("wechatpay", order.order_no)
    params = v2.parse_xml(sim.wechatpay_v2_payment_notification(trade))
    params.pop("sign")
    params.update(changes)
    return params


@pytest.mark.parametrize("case", ["ok", "wrong amount", "other app", "forged", "unknown trade"])
def test_the_wechatpay_v2_payment_notification(demo, run_tasks, frozen, case):
    order, _contract, _simulated = offered(run_tasks, "wechat_qr")
    changes = {
        "ok": {},
        "wrong amount": {"total_fee": "1"},
        "other app": {"appid": "wx0000000000000000"},
        "forged": {},
        "unknown trade": {"out_trade_no": "NOBODY000000000000"},
    }[case]
    params = v2_payment(order, **changes)
    response = post_xml(V2_URL, params, sign="F" * 32 if case == "forged" else None)
    run_tasks()
    order.refresh_from_db()
    if case == "ok":
        assert response.status_code == 200 and answer(response)["return_code"] == "SUCCESS"
        assert order.status == OrderStatus.COMPLETED
        assert post_xml(V2_URL, params).status_code == 200  # replayed: answered, applied once
        assert PaymentNotification.objects.filter(contract__isnull=True).count() == 1
    else:
        assert response.status_code == 400 and answer(response)["return_code"] == "FAIL"
        assert order.status == OrderStatus.PAYMENT_PENDING and nothing_stored()


def alipay_contract_params(simulated: SimContract, **changes: str) -> dict[str, str]:
    params = {
        "notify_type": "dut_user_sign",
        "notify_id": secrets.token_hex(16),
        "notify_time": "2026-12-05 10:00:00",
        "app_id": settings.ALIPAY_APP_ID,
        "partner_id": settings.ALIPAY_SELLER_ID,
        "external_agreement_no": simulated.contract_code,
        "agreement_no": simulated.contract_id,
        "personal_product_code": "CYCLE_PAY_AUTH_P",
        "status": "NORMAL",
        "sign_time": "2026-12-05 10:00:00",
    }
    params.update(changes)
    return params


def post_form(params: dict[str, str]):
    return Client().post(ALIPAY_URL, data=urlencode(params), content_type="application/x-www-form-urlencoded")


def test_an_alipay_signing_and_end_are_verified_and_applied_once(demo, run_tasks, frozen):
    _order, contract, simulated = offered(run_tasks, "alipay_qr")
    signing = rsa2(alipay_contract_params(simulated), alipay_key())
    for _ in range(2):  # resent: the same answer, applied once
        response = post_form(signing)
        assert (response.status_code, response.content) == (200, b"success")
    resent = rsa2(alipay_contract_params(simulated), alipay_key())  # another notify_id, the same signing
    assert post_form(resent).content == b"success"
    contract.refresh_from_db()
    assert contract.status == ContractStatus.SIGNED
    assert PaymentNotification.objects.filter(contract=contract).count() == 1
    ended = rsa2(alipay_contract_params(simulated, notify_type="dut_user_unsign", status="UNSIGN"), alipay_key())
    assert post_form(ended).content == b"success"
    contract.refresh_from_db()
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, "user")


@pytest.mark.parametrize("case", ["forged", "not ours", "unknown agreement", "other agreement no", "no sign"])
def test_an_alipay_contract_notification_that_is_not_right_is_refused(demo, run_tasks, frozen, case):
    _order, contract, simulated = offered(run_tasks, "alipay_qr")
    if case == "other agreement no":
        post_form(rsa2(alipay_contract_params(simulated), alipay_key()))
        PaymentNotification.objects.all().delete()
    params = alipay_contract_params(simulated)
    if case == "forged":
        body = rsa2(params, forger_key())
    elif case == "not ours":
        body = rsa2({**params, "app_id": "2021009999999999"}, alipay_key())
    elif case == "unknown agreement":
        body = rsa2({**params, "external_agreement_no": "CNOBODY"}, alipay_key())
    elif case == "other agreement no":
        body = rsa2({**params, "agreement_no": "20260000000000000000", "notify_type": "dut_user_unsign"}, alipay_key())
    else:
        body = params
    response = post_form(body)
    assert response.status_code == 400 and response.content == b"fail"
    assert nothing_stored()
    contract.refresh_from_db()
    assert contract.status == (ContractStatus.SIGNED if case == "other agreement no" else ContractStatus.PENDING)
    assert not Subscription.objects.exists()


def test_the_sandbox_refuses_to_terminate_what_has_no_signed_contract(demo, run_tasks, frozen):
    client = Client()
    missing = client.post(
        "/sandbox/wechatpay/contracts/terminate/",
        data=json.dumps({"subscription_no": "NOPE"}),
        content_type="application/json",
    )
    assert missing.status_code == 404 and missing.json()["delivered"] is False
