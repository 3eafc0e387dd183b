"""The vocabulary of ordering: statuses, failure codes, kinds, channels, payment methods.

Values are part of the interface contract (docs/interfaces.md §1-2); labels
are the human messages, in English here and Simplified Chinese in locale/.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class OrderStatus(models.TextChoices):
    PRECHECKING = "prechecking", _("Pre-checking")
    AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
    PAYMENT_PENDING = "payment_pending", _("Payment pending")
    PROVISIONING = "provisioning", _("Provisioning")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Failed")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


TERMINAL_STATUSES = frozenset(
    {
        OrderStatus.COMPLETED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.FAILED,
        OrderStatus.REFUNDED,
        OrderStatus.CANCELLED,
    }
)
ACTIVE_STATUSES = frozenset(set(OrderStatus) - TERMINAL_STATUSES)


class FailureCode(models.TextChoices):
    """Why an order ended badly. The label is the message shown to the user."""

    ACCOUNT_NOT_FOUND = "account_not_found", _("This TV account does not exist.")
    ACCOUNT_SUSPENDED = "account_suspended", _("This TV account is suspended.")
    ACCOUNT_IN_ARREARS = "account_in_arrears", _("This account is in arrears; please pay the outstanding bill first.")
    ALREADY_SUBSCRIBED = (
        "already_subscribed",
        _("You can already watch this content; there is no need to buy it again."),
    )
    PRODUCT_NOT_AVAILABLE = "product_not_available", _("This product cannot be ordered for this account.")
    SMP_UNAVAILABLE = "smp_unavailable", _("The service platform is temporarily unavailable; please try again later.")
    PAYMENT_TIMEOUT = "payment_timeout", _("The order was not paid in time.")
    SMS_TIMEOUT = "sms_timeout", _("The SMS confirmation was not answered in time.")
    SMS_DECLINED = "sms_declined", _("The order was declined by SMS reply.")
    INSUFFICIENT_BALANCE = "insufficient_balance", _("The phone bill balance is not enough for this product.")
    PAYMENT_DECLINED = "payment_declined", _("The payment was declined.")
    CRM_ACTIVITY_FAILED = "crm_activity_failed", _("The CRM could not handle the marketing activity.")
    PROVISIONING_FAILED = "provisioning_failed", _("The product could not be activated; any money taken is returned.")
    CANCELLED = "cancelled", _("The order was cancelled.")


# The failure codes the SMP's pre-check may answer with.
PRECHECK_FAILURES = frozenset(
    {
        FailureCode.ACCOUNT_NOT_FOUND,
        FailureCode.ACCOUNT_SUSPENDED,
        FailureCode.ACCOUNT_IN_ARREARS,
        FailureCode.ALREADY_SUBSCRIBED,
        FailureCode.PRODUCT_NOT_AVAILABLE,
    }
)


class ProductKind(models.TextChoices):
    PER_VIEW = "per_view", _("Per view")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    YEARLY = "yearly", _("Yearly")


PERIOD_MONTHS: dict[str, int] = {
    ProductKind.MONTHLY: 1,
    ProductKind.QUARTERLY: 3,
    ProductKind.YEARLY: 12,
}
DEFAULT_VIEW_HOURS = 48


class Channel(models.TextChoices):
    """Where an order came from: a sales channel, or the automatic renewal of a subscription."""

    EPG = "epg", _("TV (EPG)")
    CRM = "crm", _("Business hall (CRM)")
    RENEWAL = "renewal", _("Automatic renewal")


class SalesChannel(models.TextChoices):
    """The channels a product is sold on (a renewal is not a sale of its own)."""

    EPG = Channel.EPG.value, Channel.EPG.label
    CRM = Channel.CRM.value, Channel.CRM.label


class PaymentMethod(models.TextChoices):
    WECHAT_QR = "wechat_qr", _("WeChat Pay QR code")
    ALIPAY_QR = "alipay_qr", _("Alipay QR code")
    PHONE_BILL = "phone_bill", _("Phone bill")
    PHONE_BILL_SMS = "phone_bill_sms", _("Phone bill with SMS confirmation")
    CASH = "cash", _("Cash")
    # docs/interfaces.md §10: the clerk scans the customer's WeChat Pay or Alipay payment code (付款码).
    PAYMENT_CODE = "payment_code", _("Payment code (WeChat Pay / Alipay)")


QR_METHODS = frozenset({PaymentMethod.WECHAT_QR, PaymentMethod.ALIPAY_QR})
# The methods whose money a payment provider (WeChat Pay, Alipay) takes, and so gives back by its refund.
PROVIDER_METHODS = QR_METHODS | {PaymentMethod.PAYMENT_CODE}
CHANNEL_METHODS: dict[str, tuple[str, ...]] = {
    Channel.EPG: (
        PaymentMethod.WECHAT_QR,
        PaymentMethod.ALIPAY_QR,
        PaymentMethod.PHONE_BILL,
        PaymentMethod.PHONE_BILL_SMS,
    ),
    Channel.CRM: (
        PaymentMethod.CASH,
        PaymentMethod.PHONE_BILL,
        PaymentMethod.WECHAT_QR,
        PaymentMethod.ALIPAY_QR,
        PaymentMethod.PAYMENT_CODE,
    ),
}

# --- subscriptions (docs/interfaces.md §8) -------------------------------------------

# How a subscription may be paid, at the start and at every renewal.
RENEWAL_METHODS = (
    PaymentMethod.PHONE_BILL,
    PaymentMethod.PHONE_BILL_SMS,
    PaymentMethod.WECHAT_QR,
    PaymentMethod.ALIPAY_QR,
)
PHONE_BILL_METHODS = frozenset({PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS})
# The methods a subscription renews by deduction under the provider's contract (WeChat Pay 委托代扣,
# Alipay 周期扣款), signed in the same scan that pays the first period (lifecycle.contracts).
DEDUCTION_METHODS = QR_METHODS
# The methods an auto-renewing order offers: the phone bill, which the SMP charges at every renewal, and
# the QR codes, which pay the first period and sign the deduction contract in one scan.
AUTO_RENEW_METHODS = PHONE_BILL_METHODS | DEDUCTION_METHODS


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    CANCELLED = "cancelled", _("Cancelled")
    LAPSED = "lapsed", _("Lapsed")
    ENDED = "ended", _("Ended")


class CancelChannel(models.TextChoices):
    EPG = "epg", _("TV (EPG)")
    SMS = "sms", _("SMS reply TD")
    CRM = "crm", _("Business hall (CRM)")
    ADMIN = "admin", _("Admin")
    PROVIDER = "provider", _("Payment app (contract ended)")


class NoticeKind(models.TextChoices):
    REMINDER = "reminder", _("Reminder before a renewal")
    RENEWED = "renewed", _("Renewed")
    LAPSED = "lapsed", _("Lapsed")
    CANCELLED = "cancelled", _("Cancelled by TD")
    NOTHING_TO_CANCEL = "nothing", _("TD with nothing to cancel")
