"""Sandbox endpoints that act as the outside world: pay a QR order, reply to an SMS, read the SMS outbox."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from sandbox import payments, sms
from sandbox.delivery import deliver
from sandbox.http import BadRequest, json_body, sandbox_view, text_field


def _pay(request: HttpRequest, provider: str) -> HttpResponse:
    out_trade_no = text_field(json_body(request), "out_trade_no", max_length=64)
    try:
        trade = payments.pay_trade(provider, out_trade_no)
    except payments.SandboxRefusal as exc:
        return JsonResponse({"delivered": False, "status_code": 0, "error": str(exc)}, status=409)
    if provider == payments.WECHATPAY:
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
