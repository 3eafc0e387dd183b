"""Sandbox endpoints that act as the outside world: pay a QR order (and sign its deduction contract), end a
contract in the payment app, reply to an SMS, read the SMS outbox."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from billing.models import ProviderContract
from orders.models import Subscription
from sandbox import contracts, payments, sms
from sandbox.delivery import deliver
from sandbox.http import BadRequest, json_body, sandbox_view, text_field
from sandbox.models import SimContract, SimContractStatus, SimTrade


def _pay(request: HttpRequest, provider: str) -> HttpResponse:
    out_trade_no = text_field(json_body(request), "out_trade_no", max_length=64)
    try:
        trade = payments.pay_trade(provider, out_trade_no)
    except payments.SandboxRefusal as exc:
        return JsonResponse({"delivered": False, "status_code": 0, "error": str(exc)}, status=409)
    contract = contracts.sign_paid(trade)
    if contract is not None:
        return _pay_and_sign(provider, trade, contract)
    if provider == payments.WECHATPAY and trade.deducted_under:
        # A deduction was asked for with APIv2 (申请扣款): its result is the APIv2 notification.
        body = contracts.wechatpay_v2_payment_notification(trade)
        delivered, status = deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})
    elif provider == payments.WECHATPAY:
        body, headers = payments.wechatpay_notification(trade)
        delivered, status = deliver(
            "/billing/notify/wechatpay/", body=body, content_type="application/json", headers=headers
        )
    else:
        form = urlencode(payments.alipay_notification(trade)).encode()
        delivered, status = deliver(
            "/billing/notify/alipay/", body=form, content_type="application/x-www-form-urlencoded", headers={}
        )
    return JsonResponse({"delivered": delivered, "status_code": status})


def _deliver_alipay(params: dict[str, str]) -> tuple[bool, int]:
    form = urlencode(params).encode()
    return deliver("/billing/notify/alipay/", body=form, content_type="application/x-www-form-urlencoded", headers={})


def deliver_contract(contract: SimContract) -> tuple[bool, int]:
    """The provider's signing or termination notification of ``contract``, as it is now."""
    if contract.provider == payments.WECHATPAY:
        body = contracts.wechatpay_contract_notification(contract)
        return deliver("/billing/notify/wechatpay/contract/", body=body, content_type="text/xml", headers={})
    return _deliver_alipay(contracts.alipay_contract_notification(contract))


def _pay_and_sign(provider: str, trade: SimTrade, contract: SimContract) -> HttpResponse:
    """A pay-and-sign trade: the payment notification (WeChat Pay's is APIv2 XML: the order was placed with APIv2),
    then the contract-signed notification; ``delivered`` when both were taken."""
    if provider == payments.WECHATPAY:
        body = contracts.wechatpay_v2_payment_notification(trade)
        paid, status = deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})
    else:
        paid, status = _deliver_alipay(payments.alipay_notification(trade))
    signed, contract_status = deliver_contract(contract)
    return JsonResponse(
        {
            "delivered": paid and signed,
            "status_code": status,
            "contract_delivered": signed,
            "contract_status_code": contract_status,
        }
    )


def _terminate(request: HttpRequest, provider: str) -> HttpResponse:
    """The user ends the subscription's deduction contract in the payment app: the provider notifies us."""
    number = text_field(json_body(request), "subscription_no", max_length=32)
    subscription = Subscription.objects.filter(subscription_no=number).first()
    if subscription is None:
        return JsonResponse({"delivered": False, "status_code": 0, "error": f"no subscription {number}"}, status=404)
    ours = ProviderContract.objects.filter(subscription=subscription, provider=provider).order_by("-pk").first()
    contract = contracts.contract_by_id(provider, ours.provider_contract_id) if ours is not None else None
    if contract is None or contract.status == SimContractStatus.PENDING:
        error = f"subscription {number} has no signed {provider} contract"
        return JsonResponse({"delivered": False, "status_code": 0, "error": error}, status=409)
    contract = contracts.terminate_by_user(contract)
    delivered, status = deliver_contract(contract)
    return JsonResponse({"delivered": delivered, "status_code": status})


@sandbox_view
@require_POST
def wechatpay_contract_terminate(request: HttpRequest) -> HttpResponse:
    return _terminate(request, payments.WECHATPAY)


@sandbox_view
@require_POST
def alipay_contract_terminate(request: HttpRequest) -> HttpResponse:
    return _terminate(request, payments.ALIPAY)


@sandbox_view
@require_POST
def wechatpay_pay(request: HttpRequest) -> HttpResponse:
    return _pay(request, payments.WECHATPAY)


@sandbox_view
@require_POST
def alipay_pay(request: HttpRequest) -> HttpResponse:
    return _pay(request, payments.ALIPAY)


@sandbox_view
@require_POST
def sms_reply(request: HttpRequest) -> HttpResponse:
    body = json_body(request)
    sender = text_field(body, "from", max_length=20)
    text = text_field(body, "text", required=False, max_length=160)
    delivered, status = sms.reply(sender, text)
    return JsonResponse({"delivered": delivered, "status_code": status})


@sandbox_view
@require_GET
def sms_outbox(request: HttpRequest) -> HttpResponse:
    to = request.GET.get("to", "")
    if len(to) > 20:
        raise BadRequest("to is a phone number")
    return JsonResponse(
        {
            "results": [
                {"to": m.to, "text": m.text, "sent_at": timezone.localtime(m.sent_at).isoformat()}
                for m in sms.outbox(to)
            ]
        },
        json_dumps_params={"ensure_ascii": False},
    )
