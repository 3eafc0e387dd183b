"""What is kept only for a while is deleted on schedule: every purge has its beat entry and its retention setting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.utils import timezone

from billing.models import Payment, PaymentCodeUse, PaymentStatus, SmsInbound
from billing.tasks import purge_payment_codes, purge_sms_replies
from channels_crm.models import SsoTicketUse
from channels_crm.tasks import purge_sso_tickets
from epg_api.models import EpgClient, IdempotencyRecord
from epg_api.tasks import purge_idempotency_keys
from ipvas.actors import Actor, ActorKind
from ipvas.celery import app
from ipvas.models import OutboxMessage
from ipvas.tasks import purge_outbox, purge_sessions
from lifecycle.placing import order_create
from tests.channels_crm.support import sign_in
from tests.epg_api.support import new_api_key
from tests.factories import OrderFactory
from tests.support.tasks import import_tasks

pytestmark = pytest.mark.django_db


def test_every_beat_entry_names_a_task_a_worker_knows():
    import_tasks()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, f"beat entry {name} names an unknown task {entry['task']}"


def test_every_purge_is_scheduled():
    import_tasks()
    purges = {name for name in app.tasks if ".purge_" in name}
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert purges == {
        "ipvas.tasks.purge_outbox",
        "ipvas.tasks.purge_sessions",
        "channels_crm.tasks.purge_sso_tickets",
        "epg_api.tasks.purge_idempotency_keys",
        "epg_api.tasks.purge_tv_sessions",
        "billing.tasks.purge_payment_codes",
        "billing.tasks.purge_sms_replies",
    }
    assert purges <= scheduled


def test_relayed_outbox_messages_go_after_their_retention(settings, time_machine):
    settings.OUTBOX_RETENTION_DAYS = 3
    now = timezone.now()

    def written(at, **fields) -> OutboxMessage:  # a message is written before it is relayed
        time_machine.move_to(at, tick=False)
        return OutboxMessage.objects.create(task_name="t", kwargs={}, due_at=at, **fields)

    waiting = written(now - timedelta(days=9))
    old = written(now - timedelta(days=4), relayed_at=now - timedelta(days=4))
    kept = written(now - timedelta(days=2), relayed_at=now - timedelta(days=2))
    time_machine.move_to(now, tick=False)

    assert purge_outbox.apply().get() == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {kept.pk, waiting.pk}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


def test_used_sso_tickets_go_a_retention_after_they_expired(settings):
    settings.SSO_TICKET_RETENTION_DAYS = 1
    now = timezone.now()
    SsoTicketUse.objects.create(jti="long-expired", expires_at=now - timedelta(days=2))
    SsoTicketUse.objects.create(jti="just-expired", expires_at=now - timedelta(hours=1))
    SsoTicketUse.objects.create(jti="still-valid", expires_at=now + timedelta(minutes=2))

    assert purge_sso_tickets.apply().get() == 1
    assert set(SsoTicketUse.objects.values_list("jti", flat=True)) == {"just-expired", "still-valid"}


def test_idempotency_keys_outlive_their_24_hour_window(settings, demo):
    settings.IDEMPOTENCY_RETENTION_HOURS = 30
    client = EpgClient.objects.get_from_key(new_api_key("retention"))
    order = order_create(
        channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=Actor(ActorKind.EPG_CLIENT, client.pk)
    )
    old = IdempotencyRecord.objects.create(client=client, key="old", fingerprint="f", order=order)
    recent = IdempotencyRecord.objects.create(client=client, key="day-old", fingerprint="f", order=order)
    IdempotencyRecord.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=31))
    IdempotencyRecord.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(hours=25))

    assert purge_idempotency_keys.apply().get() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["day-old"]


def test_a_clerks_session_goes_once_its_shift_is_over(time_machine, demo):
    """Django deletes a session's row only at logout: a shift that simply ends left it for ever."""
    yesterday = sign_in()
    time_machine.move_to(timezone.now() + timedelta(seconds=settings.CRM_SESSION_SECONDS + 60))
    today = sign_in()
    assert Session.objects.count() == 2

    assert purge_sessions.apply().get() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [today.session.session_key]
    assert today.get("/crm/orders/new/").status_code == 200
    assert yesterday.get("/crm/orders/new/").status_code != 200


# --- personal information kept only for a while (review of 2026-12-07: PIPL) --------------------------


def _scanned(code: str, *, hours_ago: float, status: str) -> PaymentCodeUse:
    order = OrderFactory(payment_method="payment_code")
    payment = Payment.objects.create(
        order=order, method="payment_code", provider="wechatpay", out_trade_no=f"{order.order_no}-1",
        amount_fen=order.amount_fen, status=status,
    )  # fmt: skip
    use = PaymentCodeUse.objects.create(code=code, provider="wechatpay", payment=payment)
    PaymentCodeUse.objects.filter(pk=use.pk).update(used_at=timezone.now() - timedelta(hours=hours_ago))
    return use


def test_scanned_payment_codes_go_after_their_retention(settings):
    # A payment code is the customer's one-time bearer credential: needed to send the charge, and to refuse the
    # same scan twice while it could still be charged. It was kept for ever, whole.
    settings.PAYMENT_CODE_RETENTION_HOURS = 24
    _scanned("134567890123450001", hours_ago=25, status=PaymentStatus.PAID)
    _scanned("134567890123450002", hours_ago=25, status=PaymentStatus.REVERSED)
    recent = _scanned("134567890123450003", hours_ago=23, status=PaymentStatus.PAID)
    unsent = _scanned("134567890123450004", hours_ago=25, status=PaymentStatus.CREATING)  # its charge not sent yet

    assert purge_payment_codes.apply().get() == 2
    assert set(PaymentCodeUse.objects.values_list("pk", flat=True)) == {recent.pk, unsent.pk}
    assert Payment.objects.count() == 4  # the money's records stay


def test_sms_replies_go_after_their_retention(settings):
    # Every reply the gateway delivered, whatever the customer wrote, was kept for ever with the number. What
    # a reply decided stays where it acted: the confirmation's reply, the subscription's events.
    settings.SMS_REPLY_RETENTION_DAYS = 180
    now = timezone.now()
    for n, days in enumerate((181, 179)):
        reply = SmsInbound.objects.create(
            digest=f"{n:064d}", sender="13800000001", text="hello", received_at=now, outcome="none_pending"
        )
        SmsInbound.objects.filter(pk=reply.pk).update(created_at=now - timedelta(days=days))

    assert purge_sms_replies.apply().get() == 1
    assert list(SmsInbound.objects.values_list("digest", flat=True)) == [f"{1:064d}"]
