"""Payment codes (付款码) scanned at the counter: whose they are, and that each is charged once.

docs/interfaces.md §10: an 18-digit code starting 10–15 is WeChat Pay's, a code of 16–24 digits
starting 25–30 is Alipay's; anything else, or a code already used, is refused at once.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Payment, PaymentCodeUse, PaymentStatus, Provider
from ipvas.errors import InvalidInput
from ipvas.purge import purge_in_batches

WECHATPAY_CODE = re.compile(r"1[0-5][0-9]{16}")
ALIPAY_CODE = re.compile(r"(2[5-9]|30)[0-9]{14,22}")
# What a scanner may add around the digits, or a clerk typing a code shown in groups.
SEPARATORS = re.compile(r"[\s-]+")


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, fields={"code": [message]})


def payment_code_normalize(raw: str) -> str:
    return SEPARATORS.sub("", raw or "")


def payment_code_provider(code: str) -> str:
    """The provider whose payment code ``code`` (normalised) is; ``InvalidInput`` when it is nobody's."""
    if not code:
        raise _refused(_("Scan the customer's payment code."))
    if len(code) > 32 or not (code.isascii() and code.isdigit()):
        raise _refused(_("A payment code is made of digits only. Scan the code in the customer's app again."))
    if WECHATPAY_CODE.fullmatch(code):
        return Provider.WECHATPAY
    if ALIPAY_CODE.fullmatch(code):
        return Provider.ALIPAY
    raise _refused(
        _(
            "This is not a WeChat Pay or Alipay payment code: a WeChat Pay code has 18 digits starting 10 to 15, "
            "an Alipay code 16 to 24 digits starting 25 to 30."
        )
    )


def used_already() -> InvalidInput:
    return _refused(_("This payment code has been used already. Ask the customer to show a new code in the app."))


def payment_code_used(code: str) -> bool:
    return PaymentCodeUse.objects.filter(code=code).exists()


def payment_code_use_record(*, code: str, payment: Payment) -> PaymentCodeUse:
    """Spend ``code`` on ``payment`` (inside the caller's transaction); ``InvalidInput`` if it was spent before."""
    try:
        with transaction.atomic():
            return PaymentCodeUse.objects.create(code=code, provider=payment.provider, payment=payment)
    except IntegrityError:
        raise used_already() from None


def payment_codes_purge() -> int:
    """Forget the codes scanned more than ``PAYMENT_CODE_RETENTION_HOURS`` ago (beat, hourly), but not one whose
    charge is still to be sent. A code is good for a minute or two at its provider; scanned again after this,
    it is sent and the provider refuses it. The payment keeps its provider, trade number and outcome."""
    cutoff = timezone.now() - timedelta(hours=settings.PAYMENT_CODE_RETENTION_HOURS)
    return purge_in_batches(
        PaymentCodeUse.objects.filter(used_at__lt=cutoff).exclude(payment__status=PaymentStatus.CREATING)
    )
