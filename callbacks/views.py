"""What the outside systems call: payment notifications and SMS replies. Thin: verify first,
hand the verified event to the lifecycle, answer as each caller expects."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from adapters.alipay import notify as alipay_verification
from adapters.providers.types import NotificationRejected
from adapters.wechatpay import notify as wechat_verification
from adapters.wechatpay import v2 as wechat_v2
from ipvas import jsonparse
from ipvas.credentials import accepted_secrets
from ipvas.metrics import NOTIFICATIONS
from ipvas.secrets_compare import same_secret
from ipvas.text import storable
from lifecycle.confirmations import sms_reply_received
from lifecycle.contracts import contract_notification_accept
from lifecycle.paid import notification_accept, refund_notification_accept

logger = logging.getLogger(__name__)

WECHAT_HEADERS = (
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Signature",
    "Wechatpay-Serial",
    "Wechatpay-Signature-Type",
)


def _wechat_fail(message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": "FAIL", "message": message}, status=status, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@require_POST
def wechatpay_notify(request: HttpRequest) -> HttpResponse:
    """WeChat Pay API v3 payment notification: 204 once applied (or seen), else FAIL so WeChat retries."""
    headers = {name: request.headers.get(name, "") for name in WECHAT_HEADERS}
    body = request.body
    try:
        if not isinstance(jsonparse.loads(body), dict):  # bounded: the adapter parses it again, verified
            raise ValueError("not a JSON object")
    except ValueError as exc:
        NOTIFICATIONS.labels(provider="wechatpay", outcome="refused").inc()
        logger.warning("wechatpay notification refused: malformed body (%s)", exc)
        return _wechat_fail("malformed notification", 400)
    try:
        event = wechat_verification.verify_event(request.headers, body)
        if event.event_type.startswith("REFUND."):
            out_refund_no, result = wechat_verification.refund_result(event)
            outcome = refund_notification_accept(
                provider="wechatpay",
                notification_id=event.id,
                out_refund_no=out_refund_no,
                result=result,
                headers=headers,
                body=body.decode(),
                decoded=event.resource,
            )
            NOTIFICATIONS.labels(provider="wechatpay", outcome=f"refund {outcome}").inc()
            return HttpResponse(status=204)
        notice = wechat_verification.paid_notice(event)
        wechat_verification.check_ours(notice)
        outcome = notification_accept(notice=notice, headers=headers, body=body.decode())
    except NotificationRejected as exc:
        NOTIFICATIONS.labels(provider="wechatpay", outcome="refused").inc()
        logger.warning("wechatpay notification refused: %s", exc)
        return _wechat_fail(str(exc), 400)
    except Exception:
        logger.exception("wechatpay notification could not be processed; WeChat Pay will retry")
        return _wechat_fail("temporarily unable to process", 500)
    NOTIFICATIONS.labels(provider="wechatpay", outcome=outcome).inc()
    logger.info("wechatpay notification %s: %s", notice.out_trade_no, outcome)
    return HttpResponse(status=204)


def _wechat_v2_answer(ok: bool, message: str = "OK", status: int = 200) -> HttpResponse:
    """WeChat Pay's APIv2 answer to a notification: SUCCESS stops its retries, FAIL asks for them."""
    body = wechat_v2.to_xml({"return_code": "SUCCESS" if ok else "FAIL", "return_msg": message[:128]})
    return HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")


@csrf_exempt
@require_POST
def wechatpay_v2_notify(request: HttpRequest) -> HttpResponse:
    """WeChat Pay APIv2 payment notification (the pay-and-sign order's ``notify_url``): XML, signed with the
    APIv2 key; applied as any payment notification."""
    try:
        params = wechat_verification.verify_v2(request.body)
        notice = wechat_verification.v2_paid_notice(params)
        outcome = notification_accept(notice=notice, headers={}, body=request.body.decode(errors="replace"))
    except NotificationRejected as exc:
        NOTIFICATIONS.labels(provider="wechatpay", outcome="refused").inc()
        logger.warning("wechatpay APIv2 notification refused: %s", exc)
        return _wechat_v2_answer(False, str(exc), 400)
    except Exception:
        logger.exception("wechatpay APIv2 notification could not be processed; WeChat Pay will retry")
        return _wechat_v2_answer(False, "temporarily unable to process", 500)
    NOTIFICATIONS.labels(provider="wechatpay", outcome=outcome).inc()
    logger.info("wechatpay APIv2 notification %s: %s", notice.out_trade_no, outcome)
    return _wechat_v2_answer(True)


@csrf_exempt
@require_POST
def wechatpay_contract_notify(request: HttpRequest) -> HttpResponse:
    """WeChat Pay 委托代扣's signing and termination notification (签约、解约结果通知, APIv2 XML): the
    ``contract_notify_url`` of the pay-and-sign order, and the template's termination callback."""
    try:
        params = wechat_verification.verify_v2(request.body)
        notice = wechat_verification.contract_notice(params)
        outcome = contract_notification_accept(notice=notice, headers={}, body=request.body.decode(errors="replace"))
    except NotificationRejected as exc:
        NOTIFICATIONS.labels(provider="wechatpay", outcome="refused").inc()
        logger.warning("wechatpay contract notification refused: %s", exc)
        return _wechat_v2_answer(False, str(exc), 400)
    except Exception:
        logger.exception("wechatpay contract notification could not be processed; WeChat Pay will retry")
        return _wechat_v2_answer(False, "temporarily unable to process", 500)
    NOTIFICATIONS.labels(provider="wechatpay", outcome=f"contract {outcome}").inc()
    logger.info("wechatpay contract notification %s %s: %s", notice.contract_code, notice.event, outcome)
    return _wechat_v2_answer(True)


@csrf_exempt
@require_POST
def alipay_notify(request: HttpRequest) -> HttpResponse:
    """Alipay asynchronous notification: plain 'success' once applied (or seen); anything else makes Alipay retry.

    A 周期扣款 agreement's signing and end (notify_type ``dut_user_sign``/``dut_user_unsign``) come here too."""
    params = {key: request.POST.get(key, "") for key in request.POST}
    if alipay_verification.is_contract_notification(params):
        return _alipay_contract_notify(request, params)
    try:
        notice = alipay_verification.verify_notification(params)
        alipay_verification.check_ours(notice)
        outcome = notification_accept(notice=notice, headers={}, body=request.body.decode(errors="replace"))
    except NotificationRejected as exc:
        NOTIFICATIONS.labels(provider="alipay", outcome="refused").inc()
        logger.warning("alipay notification refused: %s", exc)
        return HttpResponse("fail", content_type="text/plain", status=400)
    except Exception:
        logger.exception("alipay notification could not be processed; Alipay will retry")
        return HttpResponse("fail", content_type="text/plain", status=500)
    NOTIFICATIONS.labels(provider="alipay", outcome=outcome).inc()
    logger.info("alipay notification %s: %s", notice.out_trade_no, outcome)
    return HttpResponse("success", content_type="text/plain")


def _alipay_contract_notify(request: HttpRequest, params: dict[str, str]) -> HttpResponse:
    try:
        notice = alipay_verification.contract_notice(params)
        outcome = contract_notification_accept(notice=notice, headers={}, body=request.body.decode(errors="replace"))
    except NotificationRejected as exc:
        NOTIFICATIONS.labels(provider="alipay", outcome="refused").inc()
        logger.warning("alipay contract notification refused: %s", exc)
        return HttpResponse("fail", content_type="text/plain", status=400)
    except Exception:
        logger.exception("alipay contract notification could not be processed; Alipay will retry")
        return HttpResponse("fail", content_type="text/plain", status=500)
    NOTIFICATIONS.labels(provider="alipay", outcome=f"contract {outcome}").inc()
    logger.info("alipay contract notification %s %s: %s", notice.contract_code, notice.event, outcome)
    return HttpResponse("success", content_type="text/plain")


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """A reply from the SMS gateway, signed with HMAC-SHA256 under SMS_WEBHOOK_SECRET (docs/interfaces.md §4), or
    under SMS_WEBHOOK_SECRET_PREVIOUS while the gateway switches secrets."""
    body = request.body
    given = request.headers.get("X-Signature", "").strip().lower()
    # Each secret configured is compared, every time and in constant time: how long the answer takes says
    # nothing of which one matched, nor how much of either.
    matches = [
        same_secret(given, hmac.new(key.encode(), body, hashlib.sha256).hexdigest())
        for key in accepted_secrets("SMS_WEBHOOK_SECRET", sandbox_file="sms_webhook_secret.txt")
    ]
    if not any(matches):
        return JsonResponse({"error": {"code": "bad_signature", "message": "bad signature"}}, status=403)
    if not matches[0]:
        # Until these stop, the gateway has not switched (or has switched back): SMS_WEBHOOK_SECRET_PREVIOUS stays.
        logger.info("SMS reply signed with SMS_WEBHOOK_SECRET_PREVIOUS")
    try:
        payload = jsonparse.loads(body)
        sender = payload["from"]
        text = payload["text"]
        if not isinstance(sender, str) or not isinstance(text, str):
            raise TypeError
        # Text a database can hold (a reply answered 503 is retried for ever).
        if not storable(sender + text):
            raise ValueError("a NUL or a lone surrogate")
        # Part of the body (docs/interfaces.md §4), and of what tells a retried delivery from a new reply: two
        # replies "Y" from one number differ by it alone.
        received_at = datetime.fromisoformat(payload["received_at"])
        if timezone.is_naive(received_at):
            received_at = timezone.make_aware(received_at)
        received_at = received_at.astimezone(UTC)  # OverflowError at the ends of the calendar
    except (ValueError, KeyError, TypeError, OverflowError):
        return JsonResponse(
            {"error": {"code": "invalid", "message": "expected JSON {from, text, received_at}"}}, status=400
        )
    try:
        outcome = sms_reply_received(sender=sender, text=text, received_at=received_at, raw=body)
    except Exception:
        logger.exception("SMS reply could not be stored; the gateway will retry")
        return JsonResponse({"error": {"code": "unavailable", "message": "try again"}}, status=503)
    return JsonResponse({"outcome": outcome})
