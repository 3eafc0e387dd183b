from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    """A task to run, written in the same transaction as the change that needs it.

    Relayed to Celery when that transaction commits, or by the beat relay if
    the process died first; a rolled-back transaction leaves no message.
    Every task is idempotent, so a message relayed twice does no harm.

    A message of a follow-up that has no row of its own to be found again by (a reversal, a close, an
    unsubscribe: ``outbox.must_finish``) awaits its task's success; one relayed long ago whose task never
    finished (the broker lost it, or it died) is published again (``outbox.republish_unfinished``).
    """

    task_name = models.CharField(_("task"), max_length=200)
    kwargs = models.JSONField(_("arguments"), default=dict)
    due_at = models.DateTimeField(_("due at"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    relayed_at = models.DateTimeField(_("relayed at"), null=True, blank=True)
    # db_default: a node still running the release before (a rolling upgrade) inserts without the column.
    awaits_finish = models.BooleanField(_("awaits its task's success"), default=False, db_default=False)
    # How many times the message of a follow-up was written again because its task never succeeded.
    again = models.PositiveSmallIntegerField(_("times enqueued again"), default=0, db_default=0)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            models.Index(fields=["due_at"], name="outbox_pending_due", condition=Q(relayed_at__isnull=True)),
            # The follow-ups whose task has not finished yet: a few among millions of messages.
            models.Index(fields=["relayed_at"], name="outbox_unfinished", condition=Q(awaits_finish=True)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.due_at:%Y-%m-%d %H:%M:%S}"
