"""The clerk's page for a household's purchase PIN (docs/interfaces.md §9): with the customer at the counter,
look up the TV account, then set a new 4-digit PIN or clear it. Every change is in the PIN's audit trail
under the clerk's staff id."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from channels_crm.models import Clerk
from channels_crm.views import clerk_actor, clerk_page
from ipvas.errors import ApplicationError
from lifecycle.pins import PIN_RE, pin_clear, pin_set, pin_state
from orders.validation import TV_ACCOUNT_RE


class AccountForm(forms.Form):
    tv_account = forms.CharField(label=gettext_lazy("TV account"), max_length=64)

    def clean_tv_account(self) -> str:
        value = self.cleaned_data["tv_account"].strip()
        if not TV_ACCOUNT_RE.match(value):
            raise forms.ValidationError(_("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'."))
        return value


class PresentForm(forms.Form):
    # Only the customer, in person, may change what guards their purchases.
    customer_present = forms.BooleanField(
        label=gettext_lazy("The customer is here and I have checked their identity"),
        error_messages={"required": gettext_lazy("Confirm that the customer is here first.")},
    )


class SetPinForm(PresentForm):
    pin = forms.CharField(
        label=gettext_lazy("New PIN (4 digits)"),
        max_length=4,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{4}"}),
    )
    pin_again = forms.CharField(
        label=gettext_lazy("The new PIN again"),
        max_length=4,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{4}"}),
    )

    def clean_pin(self) -> str:
        pin = self.cleaned_data["pin"]
        if not PIN_RE.match(pin):
            raise forms.ValidationError(_("A purchase PIN is 4 digits."))
        return pin

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("pin") and data.get("pin_again") != data["pin"]:
            self.add_error("pin_again", _("The two PINs differ."))
        return data


def _page_url(tv_account: str) -> str:
    return f"{reverse('crm:purchase-pin')}?{urlencode({'tv_account': tv_account})}"


@clerk_page
@require_http_methods(["GET", "POST"])
def purchase_pin(request: HttpRequest, clerk: Clerk) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    account_form = AccountForm(source if "tv_account" in source else None)
    tv_account = account_form.cleaned_data["tv_account"] if account_form.is_valid() else ""
    set_form = SetPinForm(request.POST if request.POST.get("action") == "set" else None)
    clear_form = PresentForm(request.POST if request.POST.get("action") == "clear" else None, prefix="clear")
    if request.method == "POST" and tv_account:
        actor = clerk_actor(clerk)
        reason = f"at the counter of store {clerk.store.code}"
        try:
            if request.POST.get("action") == "set" and set_form.is_valid():
                pin_set(tv_account=tv_account, pin=set_form.cleaned_data["pin"], actor=actor, reason=reason)
                messages.success(request, _("The purchase PIN of %(account)s is set.") % {"account": tv_account})
                return HttpResponseRedirect(_page_url(tv_account))
            if request.POST.get("action") == "clear" and clear_form.is_valid():
                if pin_clear(tv_account=tv_account, actor=actor, reason=reason):
                    messages.success(
                        request, _("The purchase PIN of %(account)s is cleared.") % {"account": tv_account}
                    )
                else:
                    messages.info(request, _("%(account)s has no purchase PIN.") % {"account": tv_account})
                return HttpResponseRedirect(_page_url(tv_account))
        except ApplicationError as exc:
            messages.error(request, str(exc.message))
    context = {
        "clerk": clerk,
        "account_form": account_form,
        "tv_account": tv_account,
        "state": pin_state(tv_account=tv_account) if tv_account else None,
        "set_form": set_form,
        "clear_form": clear_form,
    }
    return render(request, "crm/purchase_pin.html", context, status=400 if request.method == "POST" else 200)
