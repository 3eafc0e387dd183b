"""Forms of the admin's hand-made actions: money (lifecycle.manual), subscriptions (lifecycle.subscriptions)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ipvas.money import yuan_to_fen


class RefundForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))
    amount_yuan = forms.CharField(
        label=_("Amount (yuan)"),
        required=False,
        max_length=16,
        help_text=_("Leave empty to refund everything that was paid."),
    )

    def clean_amount_yuan(self) -> int | None:
        raw = self.cleaned_data["amount_yuan"].strip()
        if not raw:
            return None
        try:
            return yuan_to_fen(raw)
        except ValueError:
            raise forms.ValidationError(_("Write an amount like 25.00.")) from None


class SubscriptionCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the subscription's events and in the admin history, with who cancelled it."),
    )


class WorkItemActionForm(forms.Form):
    ACTIONS = [
        ("resolve", _("Mark resolved")),
        ("cash_paid_back", _("The store paid the cash back (reverses the CRM activity)")),
        ("retry_refund", _("Retry the refund")),
        ("retry_provisioning", _("Retry provisioning")),
    ]
    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS, widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))
