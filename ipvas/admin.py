from django.contrib import admin

from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["pk", "task_name", "due_at", "created_at", "relayed_at"]
    list_filter = ["task_name", ("relayed_at", admin.EmptyFieldListFilter)]
