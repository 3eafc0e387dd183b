from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LifecycleConfig(AppConfig):
    name = "lifecycle"
    verbose_name = _("Order lifecycle")

    def ready(self) -> None:
        from ipvas import outbox
        from lifecycle.due import deadlines_passed, due_task_names
        from lifecycle.stalled import FOLLOW_UPS

        # An order's deadline messages that its end (or a later deadline) made pointless stay unpublished.
        outbox.skip_unneeded(due_task_names(), deadlines_passed)
        # A follow-up's message is published again until its task succeeds.
        outbox.must_finish(task.name for task in FOLLOW_UPS)
