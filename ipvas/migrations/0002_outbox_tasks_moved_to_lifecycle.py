"""The order lifecycle's tasks moved from orders.tasks and billing.tasks to lifecycle.tasks.

Messages written before the move and not yet relayed carry the old names; they are renamed
so that the relay publishes tasks a worker knows. (A message already in the broker under an
old name is dropped by the worker; the deadline sweep and the refund watch find its order.)
"""

from django.db import migrations

MOVED = {
    "orders.tasks.precheck_order": "lifecycle.tasks.precheck_order",
    "orders.tasks.order_deadline": "lifecycle.tasks.order_deadline",
    "orders.tasks.provision_order": "lifecycle.tasks.provision_order",
    "orders.tasks.sweep_deadlines": "lifecycle.tasks.sweep_deadlines",
    "billing.tasks.send_sms_confirmation": "lifecycle.tasks.send_sms_confirmation",
    "billing.tasks.process_refund": "lifecycle.tasks.process_refund",
    "billing.tasks.close_provider_order": "lifecycle.tasks.close_provider_order",
    "billing.tasks.reverse_phone_bill": "lifecycle.tasks.reverse_phone_bill",
    "billing.tasks.reverse_crm_activity": "lifecycle.tasks.reverse_crm_activity",
    "billing.tasks.revoke_on_smp": "lifecycle.tasks.revoke_on_smp",
}


def rename(apps, schema_editor, mapping=MOVED):
    OutboxMessage = apps.get_model("ipvas", "OutboxMessage")
    for old, new in mapping.items():
        OutboxMessage.objects.filter(task_name=old, relayed_at__isnull=True).update(task_name=new)


def rename_back(apps, schema_editor):
    rename(apps, schema_editor, mapping={new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [("ipvas", "0001_initial")]

    operations = [migrations.RunPython(rename, rename_back)]
