"""The TV pages (docs/interfaces.md §9): ordering screens for a remote control, served to the EPG's frame.

Every screen is rendered here, with plain links and forms that work before (or without) the script; the
script (static/tv/tv.js) adds what a remote control needs: arrow keys, Back, digits, and following the order.
Orders are the session's EPG client's EPG orders, made by the same services as the EPG API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_POST

from billing.qr import qr_png, showing_qr_content
from epg_api.models import TvSession
from ipvas import ratelimit
from ipvas.actors import Actor, ActorKind
from ipvas.errors import ApplicationError, RateLimited
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.pins import (
    PurchasePinLocked,
    PurchasePinRequired,
    PurchasePinWrong,
    pin_check,
    pin_entered,
    pin_required,
    pin_state,
)
from lifecycle.placing import order_create_or_repeat
from orders import selectors
from orders.constants import Channel, OrderStatus, ProductKind
from orders.models import Order, Product
from orders.models.product import code_validator
from orders.validation import ORDER_NO_RE
from tv import screens, sessions
from tv.sessions import exit_url, form_token, tv_page


def _actor(session: TvSession) -> Actor:
    # The session is its key's; the orders are the key's client's, reached by each of its keys.
    return Actor(ActorKind.EPG_CLIENT, session.client.client_pk)


def _page(
    request: HttpRequest, session: TvSession, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    context = {"session": session, "token": form_token(session), **context}
    return render(request, template, context, status=status)


def _problem(request: HttpRequest, session: TvSession, message: str, status: int = 200) -> HttpResponse:
    """Something the customer cannot go on with: say so, with the way back to the EPG."""
    context = {"screen": "failure", "message": message, "order": None, "back_url": exit_url(session, "cancel")}
    return _page(request, session, "tv/result.html", context, status)


def _product(session: TvSession, code: str) -> Product | None:
    """The product if this session may buy it now: on sale on the EPG, the session's own when it named one,
    and a per-view product only for the content the EPG named."""
    if session.product_code and code != session.product_code:
        return None
    if not code_validator.regex.match(code):  # no product has it (and PostgreSQL refuses a NUL in a lookup)
        return None
    product = Product.objects.filter(code=code).first()
    if product is None or not product.is_on_sale(Channel.EPG):
        return None
    if product.kind == ProductKind.PER_VIEW and not session.content_id:
        return None
    return product


def _start_url(session: TvSession, product: Product) -> str:
    """The screen a product's order goes back to: the payment-method screen."""
    return reverse("tv:home") if session.product_code else reverse("tv:product", args=[product.code])


@xframe_options_exempt
@never_cache
@require_GET
def launch(request: HttpRequest, token: str) -> HttpResponse:
    """The one-time URL of the session: sets the cookie, then the first screen."""
    session, cookie, refusal = sessions.launch(token)
    if refusal is not None:
        return sessions.refusal_page(request, refusal)
    response = redirect("tv:home")
    sessions.set_cookie(response, cookie)
    return sessions.secure_headers(response, session)


@tv_page
@require_GET
def home(request: HttpRequest, session: TvSession) -> HttpResponse:
    """The first screen: the products by kind; with a product named, its payment-method screen."""
    if session.product_code:
        return _product_screen(request, session, session.product_code, first=True)
    products = selectors.products_on_sale(channel=Channel.EPG)
    context = {
        "screen": "home",
        "groups": screens.groups(products, content_id=session.content_id),
        "back_url": exit_url(session, "cancel"),
    }
    return _page(request, session, "tv/home.html", context)


@tv_page
@require_GET
def product(request: HttpRequest, session: TvSession, code: str) -> HttpResponse:
    if session.product_code:
        return redirect("tv:home")  # the session's product is its first screen
    return _product_screen(request, session, code, first=False)


def _product_screen(request: HttpRequest, session: TvSession, code: str, *, first: bool) -> HttpResponse:
    """The payment-method screen, which holds the auto-renewal choice (off until the customer turns it on)."""
    found = _product(session, code)
    if found is None:
        return _problem(request, session, _("This product cannot be bought here now."), status=404)
    can_renew = screens.renews_on_tv(found)
    auto_renew = can_renew and request.GET.get("renew") == "1"
    here = reverse("tv:home") if first else reverse("tv:product", args=[found.code])
    context = {
        "screen": "product",
        "product": found,
        "period": screens.period_text(found),
        "content_id": session.content_id if found.kind == ProductKind.PER_VIEW else "",
        "can_renew": can_renew,
        "auto_renew": auto_renew,
        "toggle_url": f"{here}?renew={'0' if auto_renew else '1'}",
        "terms": screens.renewal_terms(found) if can_renew else [],
        "methods": screens.method_labels(screens.methods_for(found, auto_renew=auto_renew)),
        "focus_toggle": "renew" in request.GET,
        "back_url": exit_url(session, "cancel") if first else reverse("tv:home"),
    }
    return _page(request, session, "tv/product.html", context)


@tv_page
@require_POST
def order_start(request: HttpRequest, session: TvSession, code: str) -> HttpResponse:
    """A method was chosen on the payment-method screen: the order is placed (and pre-checked) now; the
    customer confirms (with the PIN, when the household has one) on the next screen."""
    found = _product(session, code)
    if found is None:
        return _problem(request, session, _("This product cannot be bought here now."), status=404)
    auto_renew = request.POST.get("renew") == "1" and screens.renews_on_tv(found)
    method = request.POST.get("method", "")
    if method not in screens.methods_for(found, auto_renew=auto_renew):
        return redirect(_start_url(session, found))
    try:
        ratelimit.hit(
            "epg-orders",
            session.client.client_pk,
            limit=settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE,
            window_seconds=60,
            message=_("Too many orders from this client; slow down."),
        )
        order = order_create_or_repeat(
            screen=f"tv-session:{session.pk}",
            channel=Channel.EPG,
            product_code=found.code,
            tv_account=session.tv_account,
            content_id=session.content_id if found.kind == ProductKind.PER_VIEW else "",
            auto_renew=auto_renew,
            actor=_actor(session),
            pin_pending=pin_required(tv_account=session.tv_account),  # asked on the next screen
        )
    except ApplicationError as exc:
        return _problem(request, session, str(exc.message), status=429 if isinstance(exc, RateLimited) else 200)
    return redirect(f"{reverse('tv:order', args=[order.order_no])}?method={method}")


def _order(session: TvSession, order_no: str) -> Order | None:
    """An order of this session's TV account placed by its EPG client; any other does not exist here."""
    if not ORDER_NO_RE.match(order_no):
        return None
    order = selectors.order_for_epg_client(order_no=order_no, client_id=session.client.client_pk)
    if order is None or order.channel != Channel.EPG or order.tv_account != session.tv_account:
        return None
    return order


def _no_order(request: HttpRequest, session: TvSession) -> HttpResponse:
    return _problem(request, session, _("There is no such order here."), status=404)


@tv_page
@require_GET
def order_page(request: HttpRequest, session: TvSession, order_no: str) -> HttpResponse:
    order = _order(session, order_no)
    if order is None:
        return _no_order(request, session)
    return _order_screen(request, session, order, method=request.GET.get("method", ""))


def _order_screen(
    request: HttpRequest, session: TvSession, order: Order, *, method: str, pin_error: str = "", error: str = ""
) -> HttpResponse:
    screen = screens.screen_of(order)
    start = _start_url(session, order.product)
    context: dict[str, Any] = {
        "screen": screen,
        "order": order,
        "screen_key": screens.screen_key(order),
        "poll_url": reverse("tv:order-status", args=[order.order_no]),
        "poll_every_ms": settings.TV_POLL_MILLISECONDS,
        "back_url": start,
        # The waiting screens' focused item checks again (OK: tv/_check_again.html); Back (the remote's key, or
        # the arrows to it) cancels. With Back focused there, an impatient OK gave the order up.
        "back_cancels": screen in ("checking", "confirm", "qr", "sms"),
    }
    if screen == "confirm":
        allowed = order.methods_allowed()
        if method not in allowed:
            context.update(screen="choose", methods=screens.method_labels(allowed))
            return _page(request, session, "tv/choose.html", context)
        state = pin_state(tv_account=order.tv_account)
        context.update(
            method=method,
            method_label=dict(screens.method_labels(allowed))[method],
            pin_needed=state.is_set,
            locked_until=state.locked_until,
            locked_minutes=_minutes_left(state.locked_until),
            pin_error=pin_error,
            error=error,
            terms=(
                screens.renewal_terms(order.product, price_yuan=order.amount_yuan, methods=[method])
                if order.auto_renew
                else []
            ),  # the consent names the method each renewal is paid by: the one being chosen
        )
        return _page(request, session, "tv/confirm.html", context)
    if screen in ("qr", "sms"):
        left = screens.seconds_left(order)
        context.update(seconds_left=left, left_text=screens.mmss(left))
        return _page(request, session, f"tv/{screen}.html", context)
    if screen in ("checking", "waiting"):
        if screen == "waiting":
            context["back_url"] = reverse("tv:home")
        return _page(request, session, "tv/waiting.html", context)
    context.update(
        back_url=reverse("tv:home"),
        watch_url=exit_url(session, "success", order.order_no),
        entitlement=getattr(order, "entitlement", None),
        message=order.failure_message,
    )
    return _page(request, session, "tv/result.html", context)


def _minutes_left(until: Any) -> int:
    if until is None:
        return 0
    return max(1, int((until - timezone.now()).total_seconds() + 59) // 60)


@tv_page
@require_POST
def confirm(request: HttpRequest, session: TvSession, order_no: str) -> HttpResponse:
    """OK on the confirmation screen: the PIN when the household has one, then the payment starts."""
    order = _order(session, order_no)
    if order is None:
        return _no_order(request, session)
    method = request.POST.get("method", "")
    if order.status != OrderStatus.AWAITING_PAYMENT or method not in order.methods_allowed():
        return redirect("tv:order", order_no=order.order_no)
    try:
        pin_check(tv_account=order.tv_account, pin=request.POST.get("pin") or None, actor=_actor(session), channel="tv")
    except PurchasePinLocked:
        return _order_screen(request, session, order, method=method)  # the screen says until when
    except PurchasePinRequired:
        return _order_screen(request, session, order, method=method, pin_error=_("Enter the 4-digit purchase PIN."))
    except PurchasePinWrong as exc:
        left = exc.extra.get("attempts_left")
        message = (
            ngettext(
                "Wrong PIN. %(left)d more wrong entry locks purchases for 15 minutes.",
                "Wrong PIN. %(left)d more wrong entries lock purchases for 15 minutes.",
                left,
            )
            % {"left": left}
            if left
            else _("Wrong PIN. Try again.")
        )
        return _order_screen(request, session, order, method=method, pin_error=message)
    pin_entered(order_id=order.pk)
    try:
        payment_choose(order_id=order.pk, method=method, actor=_actor(session))
    except ApplicationError as exc:
        order.refresh_from_db()
        if order.status == OrderStatus.AWAITING_PAYMENT:
            return _order_screen(request, session, order, method=method, error=str(exc.message))
    return redirect("tv:order", order_no=order.order_no)


@tv_page
@require_POST
def back(request: HttpRequest, session: TvSession, order_no: str) -> HttpResponse:
    """Back from the checking, confirmation, QR or SMS screen: that order is cancelled, and the payment-method
    screen shows again. An order paid meanwhile (in the phone, between two of the screen's polls) cannot be:
    its own screen shows what was bought, rather than the methods to buy it a second time."""
    order = _order(session, order_no)
    if order is None:
        return redirect("tv:home")
    if order.status in (OrderStatus.PRECHECKING, OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_PENDING):
        try:
            order = order_cancel(order_id=order.pk, actor=_actor(session))
        except ApplicationError:
            order = _order(session, order_no) or order  # paid or charged meanwhile: the order goes on
    if order.status in (OrderStatus.PROVISIONING, OrderStatus.COMPLETED):
        return redirect("tv:order", order.order_no)
    return redirect(_start_url(session, order.product))


@tv_page
@require_GET
def order_status(request: HttpRequest, session: TvSession, order_no: str) -> HttpResponse:
    """What the screen's script polls: the key of the screen the order needs now."""
    order = _order(session, order_no)
    if order is None:
        return JsonResponse({"error": "not_found"}, status=404)
    return JsonResponse({"screen": screens.screen_key(order), "status": order.status})


@tv_page
@require_GET
def order_qr(request: HttpRequest, session: TvSession, order_no: str) -> HttpResponse:
    order = _order(session, order_no)
    content = showing_qr_content(order) if order is not None else ""
    if not content:
        return HttpResponse(status=404)
    return HttpResponse(qr_png(content), content_type="image/png")
