"""The demo store and clerk of docs/interfaces.md §7 (called by seed_demo)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from channels_crm.models import Clerk, Store


def seed_crm_demo() -> int:
    created = 0
    store, made = Store.objects.get_or_create(code="NX-YC-001", defaults={"name": "宁夏银川第一营业厅"})
    created += made
    if not Clerk.objects.filter(staff_id="clerk01").exists():
        User = get_user_model()
        user, made_user = User.objects.get_or_create(username="crm-clerk01", defaults={"first_name": "演示营业员"})
        if made_user:
            user.set_unusable_password()
            user.save()
        Clerk.objects.create(user=user, staff_id="clerk01", name="演示营业员", store=store, virtual_staff_id="V0001")
        created += 1
    return created
