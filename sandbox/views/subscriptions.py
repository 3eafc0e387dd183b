"""Sandbox endpoints of subscriptions (docs/interfaces.md §8): time travel for one subscription, and the
simulated SMP's accounts, so that an integrator can watch a whole year of renewals in a minute."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from epg_api.errors import error_body
from epg_api.subscriptions import SubscriptionSerializer
from ipvas.errors import InvalidState
from orders.models import Subscription
from orders.validation import TV_ACCOUNT_RE, normalize_mainland_mobile
from sandbox import subscriptions
from sandbox.http import BadRequest, json_body, sandbox_view, text_field


@sandbox_view
@require_POST
def advance(request: HttpRequest, subscription_no: str) -> HttpResponse:
    to = text_field(json_body(request), "to", max_length=16)
    if to not in subscriptions.EVENTS:
        raise BadRequest(f"to is one of {', '.join(subscriptions.EVENTS)}")
    try:
        subscription = subscriptions.advance(subscription_no, to)
    except Subscription.DoesNotExist:
        return JsonResponse(error_body("not_found", f"There is no subscription {subscription_no[:40]}."), status=404)
    except InvalidState as exc:
        return JsonResponse(error_body("invalid_state", str(exc.message)), status=409)
    return JsonResponse(SubscriptionSerializer(subscription).data)


# The column is a 32-bit integer: 21,474,836.47 yuan is more than any phone bill holds.
MAX_BALANCE_FEN = 2**31 - 1


@sandbox_view
@require_POST
def smp_account(request: HttpRequest, tv_account: str) -> HttpResponse:
    if not TV_ACCOUNT_RE.match(tv_account):
        raise BadRequest("a TV account is 1-64 letters, digits, '_', '.', '-' or '@'")
    body = json_body(request)
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status not in subscriptions.ACCOUNT_STATUSES):
        raise BadRequest(f"status is one of {', '.join(subscriptions.ACCOUNT_STATUSES)}")
    balance = body.get("balance_fen")
    if balance is not None and (
        not isinstance(balance, int) or isinstance(balance, bool) or not 0 <= balance <= MAX_BALANCE_FEN
    ):
        raise BadRequest(f"balance_fen must be a whole number of fen, 0 to {MAX_BALANCE_FEN}")
    phone = text_field(body, "phone", required=False, max_length=20) or None
    if phone is not None:
        try:
            phone = normalize_mainland_mobile(phone)
        except ValidationError as exc:
            raise BadRequest("phone must be a mainland mobile number") from exc
    account = subscriptions.account_set(tv_account, status=status, balance_fen=balance, phone=phone)
    return JsonResponse(
        {
            "tv_account": account.tv_account,
            "status": subscriptions.account_status_name(account),
            "balance_fen": account.balance_fen,
            "phone": account.phone,
        }
    )
