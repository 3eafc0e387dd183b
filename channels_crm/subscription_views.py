"""The clerk's pages for a customer's subscriptions (docs/interfaces.md §8): find them by the customer's mobile
number, and cancel one with the customer at the counter. Who may see which: channels_crm.selectors."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from channels_crm import selectors
from channels_crm.models import Clerk
from channels_crm.views import clerk_actor, clerk_page
from ipvas.errors import ApplicationError
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, SubscriptionStatus
from orders.validation import ORDER_NO_RE, normalize_mainland_mobile


class CustomerForm(forms.Form):
    phone = forms.CharField(label=gettext_lazy("Customer's mobile number"), max_length=20)

    def clean_phone(self) -> str:
        try:
            return normalize_mainland_mobile(self.cleaned_data["phone"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages[0]) from None


class CancelForm(forms.Form):
    # Cancelling is as deliberate as taking money: the clerk confirms that the customer asked for it.
    customer_asked = forms.BooleanField(
        label=gettext_lazy("The customer asked to cancel automatic renewal"),
        error_messages={"required": gettext_lazy("Confirm that the customer asked for it first.")},
    )


def _when(value: datetime | None) -> str:
    return formats.date_format(timezone.localtime(value), "Y-m-d H:i") if value else ""


def _list_url(phone: str) -> str:
    return f"{reverse('crm:subscriptions')}?{urlencode({'phone': phone})}"


def _customer_phone(raw: str) -> str:
    try:
        return normalize_mainland_mobile(raw)
    except ValidationError:
        return ""


@clerk_page
@require_GET
def subscriptions(request: HttpRequest, clerk: Clerk) -> HttpResponse:
    form = CustomerForm(request.GET if "phone" in request.GET else None)
    phone = form.cleaned_data["phone"] if form.is_valid() else ""
    context = {
        "clerk": clerk,
        "form": form,
        "phone": phone,
        "subscriptions": selectors.customer_subscriptions(phone=phone) if phone else [],
    }
    return render(request, "crm/subscriptions.html", context)


@clerk_page
@require_http_methods(["GET", "POST"])
def subscription_cancel_view(request: HttpRequest, clerk: Clerk, subscription_no: str) -> HttpResponse:
    """A confirmation page, then the cancel: renewal off at once, the paid period runs to its end."""
    phone = _customer_phone(request.POST.get("phone") or request.GET.get("phone", ""))
    subscription = None
    if phone and ORDER_NO_RE.match(subscription_no):
        subscription = selectors.customer_subscription(subscription_no=subscription_no, phone=phone)
    if subscription is None:
        raise Http404("no such subscription for this mobile number")
    form = CancelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        was = subscription.status
        try:
            subscription = subscription_cancel(
                subscription_id=subscription.pk,
                channel=CancelChannel.CRM,
                actor=clerk_actor(clerk),
                reason=f"asked by the customer at the counter of store {clerk.store.code}",
            )
        except ApplicationError as exc:
            messages.error(request, str(exc.message))
        else:
            what = {
                "product": subscription.product.name,
                "end": _when(subscription.current_period_end),
                "when": _when(subscription.cancelled_at),
            }
            if was == SubscriptionStatus.CANCELLED:
                messages.info(request, _("Automatic renewal of %(product)s was cancelled already, at %(when)s.") % what)
            else:
                messages.success(
                    request,
                    _(
                        "Automatic renewal of %(product)s is cancelled: nothing more will be charged. "
                        "The customer can watch until %(end)s."
                    )
                    % what,
                )
        return HttpResponseRedirect(_list_url(phone))
    context = {
        "clerk": clerk,
        "sub": subscription,
        "phone": phone,
        "form": form,
        "list_url": _list_url(phone),
    }
    return render(request, "crm/subscription_cancel.html", context)
