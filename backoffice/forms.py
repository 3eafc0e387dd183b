"""Forms of the admin's hand-made actions: money (lifecycle.manual), subscriptions (lifecycle.subscriptions)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from ipvas.money import fen_to_yuan, yuan_to_fen


class RefundForm(forms.Form):
    """A refund in admin. The amount is in yuan, and so are its errors; only an order paid through WeChat Pay
    or Alipay can be refunded in part (``partial``), the others in full, and then the field is not shown."""

    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))
    amount_yuan = forms.CharField(
        label=_("Amount (yuan)"),
        required=False,
        max_length=16,
        help_text=_("Leave empty to refund everything that was paid."),
    )

    def __init__(self, *args: object, refundable_fen: int, partial: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.refundable_fen = refundable_fen
        if partial:
            self.fields["amount_yuan"].help_text = _(
                "Leave empty to refund everything that can be given back: ¥%(most)s."
            ) % {"most": fen_to_yuan(refundable_fen)}
        else:
            del self.fields["amount_yuan"]

    def clean_amount_yuan(self) -> int | None:
        raw = self.cleaned_data["amount_yuan"].strip()
        if not raw:
            return None
        try:
            amount = yuan_to_fen(raw)
        except ValueError:
            raise forms.ValidationError(_("Write an amount in yuan, like 25.00.")) from None
        if amount <= 0:
            raise forms.ValidationError(_("Write an amount above ¥0.00."))
        if amount > self.refundable_fen:
            raise forms.ValidationError(
                _("At most ¥%(most)s can be refunded.") % {"most": fen_to_yuan(self.refundable_fen)}
            )
        return amount


class SubscriptionCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the subscription's events and in the admin history, with who cancelled it."),
    )


class WorkItemActionForm(forms.Form):
    """What can be done with one work item: only the actions that fit it (backoffice.work.actions_for)."""

    action = forms.ChoiceField(label=_("Action"), widget=forms.RadioSelect)
    note = forms.CharField(label=_("Note"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: object, actions: list[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.actions = dict(actions)
        self.fields["action"].choices = actions
        if len(actions) == 1:
            self.fields["action"].initial = actions[0][0]
