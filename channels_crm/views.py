"""The clerk's H5 pages, embedded in the CRM: thin views over the same services as the EPG API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.models import PaymentStatus
from billing.qr import qr_png, showing_qr_content
from billing.services.ledger import order_totals
from billing.services.payment_codes import ALIPAY_CODE, WECHATPAY_CODE
from channels_crm import renewal, selectors
from channels_crm.models import Clerk, Store
from channels_crm.sso import TicketRefused, sso_login
from ipvas.accounts import client_address
from ipvas.actors import Actor, ActorKind
from ipvas.errors import ApplicationError
from ipvas.phrases import Phrases
from lifecycle import contracts
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.placing import order_create
from orders import selectors as order_selectors
from orders.constants import (
    TERMINAL_STATUSES,
    Channel,
    FailureCode,
    OrderStatus,
    PaymentMethod,
    ProductKind,
    SubscriptionStatus,
)
from orders.models import Order, Product
from orders.models.order import CRM_NO_ANSWER
from orders.validation import CONTENT_ID_RE, ORDER_NO_RE, normalize_mainland_mobile

View = Callable[..., HttpResponse]


def clerk_page(view: View) -> View:
    """A page for a signed-in clerk, which the CRM may frame."""

    @xframe_options_exempt
    @never_cache
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated and _shift_over(request):
            logout(request)
        if not request.user.is_authenticated:
            # Inside the CRM's frame the sign-in page cannot be shown (it refuses
            # framing): say how to come back, with a way out to sign in with a password.
            return render(request, "crm/signed_out.html", {"next": reverse("crm:order-new")}, status=401)
        clerk = Clerk.objects.select_related("store").filter(user=request.user).first()
        if clerk is None:
            return render(request, "crm/not_clerk.html", status=403)
        at_ticket_store(request, clerk)
        return view(request, clerk, *args, **kwargs)

    return wrapper


# What the ticket that opened this session said (a clerk's row holds their latest ticket's): a browser left
# signed in at another store acts for that store, with that virtual staff id, whatever the clerk signed in
# to since (a manager back home is not the home store's manager in the browser they left elsewhere).
SESSION_STORE, SESSION_VIRTUAL_STAFF_ID = "crm_store_id", "crm_virtual_staff_id"
SESSION_SIGNED_IN_AT = "crm_signed_in_at"


def _shift_over(request: HttpRequest) -> bool:
    """A session a ticket opened lasts CRM_SESSION_SECONDS from the ticket, however busy: Django's expiry counts
    from the session's last save, which every message and every language switch renews."""
    signed_in_at = request.session.get(SESSION_SIGNED_IN_AT)
    return signed_in_at is not None and timezone.now().timestamp() - signed_in_at > settings.CRM_SESSION_SECONDS


def at_ticket_store(request: HttpRequest, clerk: Clerk) -> None:
    """``clerk`` as the session's ticket made them (in memory, not saved): its store and virtual staff id."""
    store_id = request.session.get(SESSION_STORE)
    if store_id and store_id != clerk.store_id:
        clerk.store = Store.objects.get(pk=store_id)
    clerk.virtual_staff_id = request.session.get(SESSION_VIRTUAL_STAFF_ID, clerk.virtual_staff_id)


def clerk_actor(clerk: Clerk) -> Actor:
    return Actor(ActorKind.CLERK, clerk.staff_id)


def _order_or_404(clerk: Clerk, order_no: str) -> Order:
    order = selectors.order_for_clerk(clerk, order_no) if ORDER_NO_RE.match(order_no) else None
    if order is None:
        raise Http404("no such order in your store")
    return order


@xframe_options_exempt
@never_cache
@require_GET
def sso(request: HttpRequest) -> HttpResponse:
    try:
        clerk = sso_login(token=request.GET.get("ticket", ""), remote_addr=client_address(request))
    except TicketRefused as exc:
        if _another_persons_ticket(request, exc.staff_id) and _opened_as_a_page(request):
            # The next clerk at a shared counter PC, whose ticket (the CRM's, but expired or used) was refused,
            # does not go on as the previous one. Any other refusal leaves the session as it was: a page of
            # another site can load this URL with any ticket, and must not sign the clerk out mid-sale.
            logout(request)
        context = {"reason": str(exc), "said": refusal_words(str(exc))}
        # The refusal page shows no one and leads nowhere into the session the browser may still hold.
        return render(request, "crm/sso_refused.html", context, status=403)
    if not (request.user.is_authenticated and request.user.pk == clerk.user.pk):
        # Another person's ticket signs in anew. The same clerk's (the CRM opening our pages again: its menu, a
        # second window) goes on in the session with the new ticket's store and time, and keeps its key and
        # CSRF token, so that a page already open (the customer holding up a payment code) still sends its form.
        login(request, clerk.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_STORE] = clerk.store_id
    request.session[SESSION_VIRTUAL_STAFF_ID] = clerk.virtual_staff_id
    request.session[SESSION_SIGNED_IN_AT] = timezone.now().timestamp()
    # A counter's PC is shared and a ticket lives two minutes: the session lasts a shift, not Django's two weeks.
    request.session.set_expiry(settings.CRM_SESSION_SECONDS)
    return redirect("crm:order-new")


def _another_persons_ticket(request: HttpRequest, staff_id: str | None) -> bool:
    """The session is someone's, and the refused ticket, signed by the CRM, names another clerk."""
    if staff_id is None or not request.user.is_authenticated:
        return False
    return not Clerk.objects.filter(user=request.user, staff_id=staff_id).exists()


# What Chromium, Firefox and Safari say of a request (Fetch Metadata): a page or a frame opened, not an image,
# a script or a fetch of another page. A browser that says nothing (an old one) is taken as opening a page.
PAGE_DESTINATIONS = frozenset({"document", "iframe", "frame"})


def _opened_as_a_page(request: HttpRequest) -> bool:
    return request.headers.get("Sec-Fetch-Dest", "document") in PAGE_DESTINATIONS


# Why a ticket was refused (channels_crm.sso writes the reason in English, for the audit and the CRM's
# integrators): said to the clerk in the page's language. The reason itself stays on the page, under details.
REFUSALS = Phrases(
    [
        (r"no ticket", gettext_lazy("The CRM sent no sign-in ticket.")),
        (r"the ticket has expired", gettext_lazy("The ticket has expired.")),
        (r"the ticket is for another audience", gettext_lazy("The ticket was made for another system.")),
        (r"the ticket was not issued by the CRM", gettext_lazy("The ticket was not issued by the CRM.")),
        (r"the ticket lacks the claim (?P<x>\S+)", gettext_lazy("The ticket lacks its field %(x)s.")),
        (r"the ticket's signature is not the CRM's", gettext_lazy("The ticket's signature is not the CRM's.")),
        (r"the ticket is not valid: (?P<x>\S+)", gettext_lazy("The ticket is not valid (%(x)s).")),
        (
            r"the ticket is longer than (?P<x>\d+) characters",
            gettext_lazy("The ticket is longer than %(x)s characters."),
        ),
        (r"iat and exp must be numbers", gettext_lazy("The ticket's times are not numbers.")),
        (
            r"the ticket lives longer than (?P<x>\d+) s",
            gettext_lazy("The ticket is valid for longer than %(x)s seconds."),
        ),
        (r"the ticket was issued in the future", gettext_lazy("The ticket was issued in the future.")),
        (r"the ticket was used already", gettext_lazy("The ticket was used already.")),
        (
            r"the staff id belongs to an account that is not a clerk's",
            gettext_lazy("This staff id belongs to an account that is not a clerk's."),
        ),
        (
            r"claim (?P<x>\S+) must be a non-empty string of at most (?P<n>\d+) characters",
            gettext_lazy("The ticket's field %(x)s must be text of 1 to %(n)s characters."),
        ),
        (
            r"claim (?P<x>\S+) holds control characters",
            gettext_lazy("The ticket's field %(x)s holds control characters."),
        ),
    ]
)


def refusal_words(reason: str) -> str:
    said = REFUSALS.say(reason)
    return reason if said is None else said


@dataclass(frozen=True)
class Offer:
    """A product on the new-order page, with the terms of its automatic renewal when the counter offers it."""

    product: Product
    renewal_terms: list[str]


class NewOrderForm(forms.Form):
    product = forms.ChoiceField(label=gettext_lazy("Product"), widget=forms.RadioSelect)
    # A per-view product is one piece of content: the customer names it (the number the TV shows on the
    # programme's page), as the EPG does when it orders on the TV (docs/interfaces.md §2).
    content_id = forms.CharField(
        label=gettext_lazy("Programme number"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("The number on the programme's page on the customer's TV."),
    )
    phone = forms.CharField(
        label=gettext_lazy("Customer's mobile number"),
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "placeholder": "13800000001"}),
    )
    # docs/interfaces.md §8: the customer's explicit choice, never pre-selected; offered for renewable products only.
    auto_renew = forms.BooleanField(label=gettext_lazy("Renew automatically"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every product the counter sells: the period products first (the first is chosen when the page opens),
        # then the per-view ones, each with the programme the customer names.
        self.products = sorted(
            order_selectors.products_on_sale(channel=Channel.CRM), key=lambda p: p.kind == ProductKind.PER_VIEW
        )
        self.fields["product"].choices = [(p.code, p.name) for p in self.products]
        self.offers = [
            Offer(
                product=p,
                renewal_terms=renewal.terms(
                    kind=p.kind, price_yuan=p.price_yuan, methods=renewal.counter_renewal_methods(p)
                )
                if renewal.renews_at_the_counter(p)
                else [],
            )
            for p in self.products
        ]
        chosen = self["product"].value() or (self.products[0].code if self.products else "")
        self.chosen_offer = next((o for o in self.offers if o.product.code == chosen), None)

    @property
    def any_renews(self) -> bool:
        return any(o.renewal_terms for o in self.offers)

    @property
    def any_per_view(self) -> bool:
        return any(o.product.kind == ProductKind.PER_VIEW for o in self.offers)

    @property
    def per_view_chosen(self) -> bool:
        return self.chosen_offer is not None and self.chosen_offer.product.kind == ProductKind.PER_VIEW

    def clean_phone(self) -> str:
        try:
            return normalize_mainland_mobile(self.cleaned_data["phone"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages[0]) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        offer = next((o for o in self.offers if o.product.code == data.get("product")), None)
        if data.get("auto_renew") and offer is not None and not offer.renewal_terms:
            self.add_error("auto_renew", _("This product does not renew automatically."))
        content_id = (data.get("content_id") or "").strip()
        if offer is not None and offer.product.kind == ProductKind.PER_VIEW:
            if not content_id:
                self.add_error("content_id", _("Type the number of the programme the customer wants to watch."))
            elif not CONTENT_ID_RE.match(content_id):
                self.add_error("content_id", _("A programme number is 1-64 letters, digits, '_', '.', ':' or '-'."))
            data["content_id"] = content_id
        else:
            data["content_id"] = ""  # only a per-view product is bought for one programme
        return data


@clerk_page
@require_http_methods(["GET", "POST"])
def order_new(request: HttpRequest, clerk: Clerk) -> HttpResponse:
    form = NewOrderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            order = order_create(
                channel=Channel.CRM,
                product_code=form.cleaned_data["product"],
                phone=form.cleaned_data["phone"],
                actor=clerk_actor(clerk),
                clerk=request.user,
                store_code=clerk.store.code,
                auto_renew=form.cleaned_data["auto_renew"],
                content_id=form.cleaned_data["content_id"],
            )
        except ApplicationError as exc:
            for field, problems in exc.fields.items():
                for problem in problems:
                    form.add_error(field if field in form.fields else None, problem)
            if not exc.fields:
                form.add_error(None, str(exc.message))
        else:
            return redirect("crm:order", order_no=order.order_no)
    return render(request, "crm/order_new.html", {"clerk": clerk, "form": form})


# A payment code's trade whose reverse has not settled: the provider has not said it is reversed (or never paid).
REVERSE_UNSETTLED = [PaymentStatus.CREATING, PaymentStatus.PENDING, PaymentStatus.PAID]

# Which methods a clerk may offer, in the order the counter uses them: a scanned payment code first (its
# field has the focus, so the scanner's digits and Enter need no click), then cash, phone bill and the QR codes.
COUNTER_METHODS = [
    PaymentMethod.PAYMENT_CODE,
    PaymentMethod.CASH,
    PaymentMethod.PHONE_BILL,
    PaymentMethod.WECHAT_QR,
    PaymentMethod.ALIPAY_QR,
]


def _what_to_do(order: Order, *, reversing: bool) -> str:
    """The next step for the clerk when an order ended badly; ``reversing``: its payment code's reverse is
    still under way (_followed_status says so)."""
    if order.payment_method == PaymentMethod.CASH and order.failure_code == FailureCode.PROVISIONING_FAILED:
        return _("Give the cash back to the customer. The CRM activity is flagged for reversal in admin.")
    if order.payment_method == PaymentMethod.CASH and order.failure_code == FailureCode.CRM_ACTIVITY_FAILED:
        if order.failure_detail == CRM_NO_ANSWER:
            return _("Give the cash back to the customer: the CRM did not answer, and the activity is reversed there.")
        return _("Give the cash back to the customer: the CRM did not take the sale.")
    if order.status == OrderStatus.REFUNDED:
        if order.payment_method in (PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS):
            return _("The phone-bill charge was reversed: it comes off the customer's phone bill.")
        if order.payment_method == PaymentMethod.CASH:
            return _("The cash was paid back to the customer.")
        if order.failure_code == FailureCode.PAYMENT_TIMEOUT:
            return _(
                "The payment came after the order had ended: the money went back to the customer's WeChat or "
                "Alipay account."
            )
        return _("The money went back to the customer's WeChat or Alipay account.")
    if order.payment_method == PaymentMethod.PAYMENT_CODE and order.status in (
        OrderStatus.EXPIRED,
        OrderStatus.CANCELLED,
    ):
        if reversing:
            return _(
                "The payment is being cancelled at WeChat Pay or Alipay, which does not answer yet: if anything "
                "was taken, it goes back to the customer automatically. This page shows it when it has. You can "
                "start a new order."
            )
        return _(
            "The payment was cancelled at WeChat Pay or Alipay: if anything was taken, it goes back to the "
            "customer automatically. You can start a new order."
        )
    if order.payment_method == PaymentMethod.PAYMENT_CODE:
        return _("Nothing was charged. The customer may pay another way: start a new order.")
    return _("Nothing was charged. You can start a new order.")


@clerk_page
@require_GET
def order_detail(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    order = _order_or_404(clerk, order_no)
    allowed = order.methods_allowed()  # an auto-renewing order: only the methods that renew
    methods = [m for m in COUNTER_METHODS if m in allowed]
    payment = None
    if order.payment_method:
        payment = order.payments.filter(method=order.payment_method).order_by("-created_at", "-pk").first()
    followed = _followed_status(order)
    # An ended order the page still follows: its subscription waits for the signing, or its reverse for the
    # provider's answer.
    waiting = followed.endswith((":waiting_for_signing", ":reversing"))
    context = {
        "clerk": clerk,
        "order": order,
        "methods": [(m, PaymentMethod(m).label) for m in methods],
        "payment": payment,
        "qr": bool(showing_qr_content(order)),
        "terminal": order.status in TERMINAL_STATUSES,
        "follow": "" if order.status in TERMINAL_STATUSES and not waiting else followed,
        "what_to_do": _what_to_do(order, reversing=followed.endswith(":reversing"))
        if order.status in TERMINAL_STATUSES
        else "",
        "entitlement": getattr(order, "entitlement", None),
        "renewal_terms": _renewal_terms(order),
        "code_patterns": {"wechatpay": WECHATPAY_CODE.pattern, "alipay": ALIPAY_CODE.pattern},
        "retrying": _retrying(order),
    }
    return render(request, "crm/order_detail.html", context)


def _renewal_terms(order: Order) -> list[str]:
    """What an auto-renewing order commits the customer to: the terms of its subscription once it started,
    before that the terms it was sold with."""
    if not order.auto_renew:
        return []
    subscription = order.subscription
    if subscription is not None:
        if subscription.status != SubscriptionStatus.ACTIVE:
            return []  # renewal is off now: the customer's subscriptions page says since when
        return renewal.terms(
            kind=subscription.product.kind,
            price_yuan=subscription.renewal_price_yuan,
            methods=[subscription.payment_method],
        )
    if order.is_terminal:
        return []  # it did not start one (failed, or the account renews this product already)
    # Once a method was chosen, each renewal is paid by it: the terms name it, not every one that could be.
    methods = [order.payment_method] if order.payment_method else order.methods_allowed()
    return renewal.terms(kind=order.product.kind, price_yuan=order.amount_yuan, methods=methods)


@clerk_page
@require_GET
def order_status(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    """What the page follows: the status, and how often an outside system has not answered in it (the page
    says that it is retrying)."""
    order = _order_or_404(clerk, order_no)
    return JsonResponse(
        {"status": _followed_status(order), "updated_at": order.updated_at.isoformat(), "retries": _retries(order)}
    )


def _followed_status(order: Order) -> str:
    """What the page follows (it reloads when it changes): the order's status; for a paid auto-renewing QR
    order, whether its subscription still waits for the contract's signing; for a payment code's order that
    ended, whether its reverse is still under way (the provider did not answer: the money may come back)."""
    if order.status in TERMINAL_STATUSES and contracts.waiting_for_signing(order):
        return f"{order.status}:waiting_for_signing"
    if order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED) and _reversing(order):
        return f"{order.status}:reversing"
    return order.status


def _reversing(order: Order) -> bool:
    """An ended payment code order whose trade is not yet reversed, closed or failed at the provider."""
    if order.payment_method != PaymentMethod.PAYMENT_CODE:
        return False
    return order.payments.filter(method=PaymentMethod.PAYMENT_CODE, status__in=REVERSE_UNSETTLED).exists()


# What the page says while an outside system does not answer; ``{n}`` is the attempt (crm.js counts on).
RETRY_TEXTS = {
    "precheck": gettext_lazy(
        "The service platform (SMP) is not answering. Trying again automatically — attempt {n}. You can wait, "
        "or cancel the order: nothing has been charged."
    ),
    "other": gettext_lazy(
        "An outside system is not answering. Trying again automatically — attempt {n}. Nothing needs to be done "
        "here: the result shows as soon as it answers."
    ),
}


def _retrying(order: Order) -> dict[str, Any]:
    kind = "precheck" if order.status == OrderStatus.PRECHECKING else "other"
    retries = _retries(order)
    return {
        "kind": kind,
        "retries": retries,
        "texts": {name: str(text) for name, text in RETRY_TEXTS.items()},
        "now": str(RETRY_TEXTS[kind]).replace("{n}", str(retries)) if retries else "",
    }


def _retries(order: Order) -> int:
    """How many times the system tried the outside system again in this status (the SMP, the CRM)."""
    return order.attempts if order.status in RETRYING_STATUSES else 0


# The statuses in which the order waits for an outside system that may be down (and is retried).
RETRYING_STATUSES = {OrderStatus.PRECHECKING, OrderStatus.PAYMENT_PENDING, OrderStatus.PROVISIONING}


@clerk_page
@require_POST
def order_pay(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    order = _order_or_404(clerk, order_no)
    method = request.POST.get("method", "")
    # Money moves at once for cash and the phone bill: the clerk confirms either first (a QR code or a payment
    # code is the customer's own act in their app).
    if method == PaymentMethod.CASH and request.POST.get("cash_received") != "yes":
        messages.error(request, _("Confirm that you have received the cash first."))
        return redirect("crm:order", order_no=order.order_no)
    if method == PaymentMethod.PHONE_BILL and request.POST.get("charge_agreed") != "yes":
        messages.error(request, _("Confirm that the customer agrees to the charge on the phone bill first."))
        return redirect("crm:order", order_no=order.order_no)
    try:
        payment_choose(
            order_id=order.pk,
            method=method,
            actor=clerk_actor(clerk),
            clerk=clerk.user,
            virtual_staff_id=clerk.virtual_staff_id,
        )
    except ApplicationError as exc:
        # A second click on the same button lands here (the order moved on): show the order as it is.
        order.refresh_from_db()
        if not (order.payment_method == method and order.status != OrderStatus.AWAITING_PAYMENT):
            messages.error(request, str(exc.message))
    return redirect("crm:order", order_no=order.order_no)


@clerk_page
@require_POST
def order_cancel_view(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    order = _order_or_404(clerk, order_no)
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Confirm the cancellation first."))
        return redirect("crm:order", order_no=order.order_no)
    try:
        order_cancel(order_id=order.pk, actor=clerk_actor(clerk))
    except ApplicationError as exc:
        messages.error(request, str(exc.message))
    return redirect("crm:order", order_no=order.order_no)


@clerk_page
@require_GET
def order_qr(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    content = showing_qr_content(_order_or_404(clerk, order_no))
    if not content:
        raise Http404("no QR code to show")
    return HttpResponse(qr_png(content), content_type="image/png")


@clerk_page
@require_GET
def order_receipt(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    order = _order_or_404(clerk, order_no)
    if order.status != OrderStatus.COMPLETED:
        raise Http404("receipts are for completed orders")
    seller = getattr(order.clerk, "clerk", None)
    # A payment code's receipt names the provider that took it, as the order's page does.
    paid = order.payments.filter(method=order.payment_method, status=PaymentStatus.PAID).first()
    context = {
        "clerk": clerk,
        "order": order,
        "payment": paid,
        "seller": seller,
        "entitlement": getattr(order, "entitlement", None),
        "totals": order_totals(order),
        "renewal_terms": _renewal_terms(order),
    }
    return render(request, "crm/receipt.html", context)


@clerk_page
@require_GET
def history(request: HttpRequest, clerk: Clerk) -> HttpResponse:
    query = request.GET.get("q", "")[:32]
    context = {
        "clerk": clerk,
        "query": query,
        "orders": selectors.order_history(clerk, query=query),
        "totals": selectors.shift_totals(clerk),
    }
    return render(request, "crm/history.html", context)
