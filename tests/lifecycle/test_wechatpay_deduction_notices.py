"""WeChat Pay's APIv2 扣款结果通知 of a deduction, through the real view: an interim notice (ACCEPT, NOTPAY) and the
final one are two notifications, not a repeat; CONTRACT_NOT_EXIST in it ends the contract as the deduction call's
answer does. Found by a review of the change to 申请扣款; each test failed before."""

from __future__ import annotations

import pytest
from django.conf import settings

from adapters.wechatpay import v2
from billing.models import ContractStatus, Payment, PaymentNotification, ProviderContract
from ipvas.keyfiles import sandbox_secret
from orders.constants import OrderStatus, SubscriptionStatus
from sandbox.delivery import deliver
from tests.lifecycle.test_contracts import renewal_of, subscribed, to_reminder_and_renewal

pytestmark = pytest.mark.django_db
START = "2026-12-05 10:00:00+08:00"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def _notify(renewal, sub, **fields) -> int:
    params = {
        "return_code": "SUCCESS", "appid": settings.WECHATPAY_APPID, "mch_id": settings.WECHATPAY_MCHID,
        "nonce_str": "n" * 32, "trade_type": "PAP", "out_trade_no": renewal.order_no, "total_fee": "2500",
        "contract_id": sub.contract_id, **fields,
    }  # fmt: skip
    body = v2.to_xml(v2.signed(params, sandbox_secret("wechatpay_apiv2_key.txt")))
    delivered, status = deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})
    assert delivered, status
    return status


def _renewal_pending(run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    return sub, renewal


def test_success_after_an_interim_notification_with_the_same_transaction_id_is_applied(demo, run_tasks, frozen):
    """WeChat Pay's 扣款结果通知 carries the trade's transaction_id whatever its trade_state (ACCEPT/NOTPAY on the
    way, then SUCCESS). notification_id is ``v2-pay:<transaction_id>`` for both, so the SUCCESS one is taken as a
    duplicate of the first: rolled back, answered SUCCESS (WeChat Pay stops resending), the money not recorded."""
    sub, renewal = _renewal_pending(run_tasks, frozen)
    txid = "4200001234202612050000000001"
    _notify(renewal, sub, result_code="SUCCESS", trade_state="NOTPAY", transaction_id=txid)
    _notify(renewal, sub, result_code="SUCCESS", trade_state="SUCCESS", transaction_id=txid, time_end="20261205100500")
    payment = Payment.objects.get(order=renewal)
    assert PaymentNotification.objects.filter(payment=payment).count() == 2
    assert payment.status == "paid", payment.status


def test_failure_after_an_interim_notification_without_transaction_id_is_applied(demo, run_tasks, frozen):
    """Without transaction_id the key is ``<out_trade_no>:<result_code>``: an ACCEPT notice (result_code SUCCESS)
    and the later PAY_FAIL one (result_code SUCCESS, trade_state PAY_FAIL) share it; the failure is dropped."""
    sub, renewal = _renewal_pending(run_tasks, frozen)
    _notify(renewal, sub, result_code="SUCCESS", trade_state="ACCEPT")
    _notify(renewal, sub, result_code="SUCCESS", trade_state="PAY_FAIL", trade_state_desc="余额不足")
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.FAILED, renewal.status


def test_contract_not_exist_in_the_notification_ends_the_contract(demo, run_tasks, frozen):
    """pappayapply answering CONTRACT_NOT_EXIST ends our contract and cancels the subscription (channel
    ``provider``); the same code in the 扣款结果通知 (result_code FAIL, err_code CONTRACT_NOT_EXIST) only declines
    the renewal: the contract stays SIGNED and the renewal is retried against a contract WeChat Pay no longer has."""
    sub, renewal = _renewal_pending(run_tasks, frozen)
    _notify(renewal, sub, result_code="FAIL", err_code="CONTRACT_NOT_EXIST", err_code_des="签约协议不存在")
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == OrderStatus.FAILED
    contract = ProviderContract.objects.get(subscription=sub)
    assert contract.status != ContractStatus.SIGNED, contract.status
    assert sub.status == SubscriptionStatus.CANCELLED, sub.status
