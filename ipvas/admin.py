from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["number", "task_name", "due_at", "created_at", "relayed_at"]
    list_filter = ["task_name", ("relayed_at", admin.EmptyFieldListFilter)]

    @admin.display(description=_("number"), ordering="pk")
    def number(self, message: OutboxMessage) -> int:
        return message.pk
