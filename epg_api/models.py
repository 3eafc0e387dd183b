from __future__ import annotations

import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey

ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?\Z")


def origins(text: str) -> list[str]:
    """The origins of a ``tv_frame_origins`` text, one per line."""
    return [line.strip().rstrip("/") for line in (text or "").splitlines() if line.strip()]


def validate_origins(text: str) -> None:
    wrong = [origin for origin in origins(text) if not ORIGIN_RE.match(origin)]
    if wrong:
        raise ValidationError(_("Not an origin (scheme://host[:port]): %(wrong)s") % {"wrong": ", ".join(wrong)})


class EpgClient(AbstractAPIKey):
    """An EPG vendor's system, or another key of one. A key is stored hashed (SHA-512) and can be expired or
    revoked in admin.

    The first key of a client is the client: its orders (``Order.origin_id``), Idempotency-Keys and TV
    sessions' orders are kept under this row's id. A key issued later for the same client (a rotation,
    ``issue_key``) is a row of its own with ``acts_for`` naming that first row: it reaches the same orders
    (``client_pk``), and each key is expired or revoked on its own. The library's fields are declared again
    with labels in the project's catalogs (admin shows them).
    """

    prefix = models.CharField(_("key prefix"), max_length=8, unique=True, editable=False)
    hashed_key = models.CharField(_("hashed key"), max_length=150, editable=False)
    created = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    name = models.CharField(
        _("name"),
        max_length=50,
        blank=False,
        default=None,
        help_text=_("The EPG vendor or system this key is for, as staff will recognise it (50 characters at most)."),
    )
    revoked = models.BooleanField(
        _("revoked"),
        blank=True,
        default=False,
        help_text=_("A revoked key is refused at once, everywhere. This cannot be undone."),
    )
    expiry_date = models.DateTimeField(
        _("expires at"),
        blank=True,
        null=True,
        help_text=_("After this moment the key is refused. Empty: it does not expire."),
    )

    # docs/interfaces.md §9: the EPG's pages that may show the TV pages in a frame (CSP frame-ancestors).
    tv_frame_origins = models.TextField(
        _("origins that may frame the TV pages"),
        blank=True,
        default="",
        validators=[validate_origins],
        help_text=_("One origin per line, such as https://epg.example.com; empty: the TV pages are not framed."),
    )

    # The client whose orders this key reaches (its first key); empty: this row is the client. Never a key
    # that acts for another itself (``issue_key`` points at the first one).
    acts_for = models.ForeignKey(
        "self",
        verbose_name=_("key of the client"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="later_keys",
        help_text=_("The client's first key, whose orders this key reaches. Empty: this key is the client's first."),
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("EPG client")
        verbose_name_plural = _("EPG clients")

    @property
    def client_pk(self) -> str:
        """The id the client's orders, Idempotency-Keys and TV sessions' orders are kept under."""
        return self.acts_for_id or self.pk

    def client_keys(self) -> models.QuerySet[EpgClient]:
        """Every key of this key's client, the first one first."""
        client_pk = self.client_pk
        return EpgClient.objects.filter(models.Q(pk=client_pk) | models.Q(acts_for_id=client_pk)).order_by(
            "created", "prefix"
        )

    @property
    def usable(self) -> bool:
        return not self.revoked and not self.has_expired

    def issue_key(self) -> tuple[EpgClient, str]:
        """A new key for this key's client (a rotation), and the key itself (shown once, stored hashed). It
        points at the client's first key, never at a later one: no chain to follow."""
        client = self.acts_for or self
        return EpgClient.objects.create_key(name=client.name, acts_for=client)

    def expire_by(self, moment: datetime) -> None:
        """The key expires at ``moment``, or at the earlier expiry it had; a revoked key stays as it is."""
        if self.revoked or (self.expiry_date is not None and self.expiry_date <= moment):
            return
        self.expiry_date = moment
        self.save(update_fields=["expiry_date"])


class IdempotencyRecord(models.Model):
    """An order created under an Idempotency-Key: the same key and body within 24 h answer the same order."""

    client = models.ForeignKey(EpgClient, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(_("Idempotency-Key"), max_length=64)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_unique_client_key")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


class TvSession(models.Model):
    """A session of the TV pages (docs/interfaces.md §9), asked for by an EPG client's server.

    Its launch URL opens once, within ``LAUNCH_SECONDS`` of its creation; then the set-top box's browser holds
    a cookie for ``COOKIE_SECONDS``, bound to this TV account and EPG client. Only the hashes of the launch
    token and of the cookie are kept.
    """

    session_id = models.CharField(_("session id"), max_length=32, unique=True)
    client = models.ForeignKey(EpgClient, on_delete=models.CASCADE, related_name="tv_sessions")
    tv_account = models.CharField(_("TV account"), max_length=64)
    return_url = models.CharField(_("return URL"), max_length=512)
    product_code = models.CharField(_("product"), max_length=32, blank=True)
    content_id = models.CharField(_("content"), max_length=64, blank=True)
    locale = models.CharField(_("language"), max_length=8)
    launch_token_hash = models.CharField(_("launch token hash"), max_length=64, unique=True)
    launch_expires_at = models.DateTimeField(_("launch URL valid until"))
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    cookie_hash = models.CharField(_("cookie hash"), max_length=64, unique=True, null=True, blank=True)
    expires_at = models.DateTimeField(_("session ends at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("TV session")
        verbose_name_plural = _("TV sessions")

    def __str__(self) -> str:
        return self.session_id
