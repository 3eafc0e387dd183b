"""Demo data of docs/interfaces.md §7: the products, and in the sandbox the simulated SMP's accounts,
the CRM's store and clerk, and an admin. Idempotent: what exists is left as it is."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from orders.constants import Channel, PaymentMethod, ProductKind
from orders.models import Product
from sandbox.demo_crm import seed_crm_demo
from sandbox.models import SimSmpAccount, SimSmpProduct

PRODUCTS = [
    ("PPV-MOVIE", "单片点播 · 电影", ProductKind.PER_VIEW, 500, 48, "单部影片，购买后 48 小时内可反复观看。"),
    ("VIP-MONTH", "VIP 影视会员 · 包月", ProductKind.MONTHLY, 2500, None, "全部 VIP 影片与剧集，畅看一个月。"),
    (
        "VIP-QUARTER",
        "VIP 影视会员 · 包季",
        ProductKind.QUARTERLY,
        6800,
        None,
        "全部 VIP 影片与剧集，畅看三个月。",
    ),
    ("VIP-YEAR", "VIP 影视会员 · 包年", ProductKind.YEARLY, 24800, None, "全部 VIP 影片与剧集，畅看一年。"),
]

RENEWABLE = ["VIP-MONTH", "VIP-QUARTER", "VIP-YEAR"]

SMP_ACCOUNTS = [
    ("tv1001", "13800000001", "active", 100000),
    ("tv1002", "13800000002", "active", 100),
    ("tv1003", "13800000003", "suspended", 0),
    ("tv1004", "13800000004", "in_arrears", 0),
]


class Command(BaseCommand):
    help = "Load the demo products, simulated SMP accounts, CRM store and clerk (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        created = 0
        for code, name, kind, price, hours, description in PRODUCTS:
            _, made = Product.objects.get_or_create(
                code=code,
                defaults={
                    "name": name,
                    "description": description,
                    "kind": kind,
                    "price_fen": price,
                    "view_hours": hours,
                    "smp_product_code": f"SMP-{code}",
                    "smp_zero_price_package_code": f"SMP-{code}-0",
                    "crm_activity_code": f"MKT-{code}",
                    "channels": [Channel.EPG, Channel.CRM],
                    "payment_methods": [m.value for m in PaymentMethod],
                    "is_active": True,
                },
            )
            created += made
        # docs/interfaces.md §8: the demo's period products renew (also in a demo made before version 2).
        Product.objects.filter(code__in=RENEWABLE).exclude(kind=ProductKind.PER_VIEW).update(renewable=True)
        if settings.SANDBOX:
            created += self._seed_sandbox()
        created += self._seed_crm()
        created += self._seed_admin()
        self.stdout.write(f"seed_demo: {created} object(s) created" + ("" if created else " (all present already)"))

    def _seed_sandbox(self) -> int:
        created = 0
        for product in Product.objects.filter(code__in=[p[0] for p in PRODUCTS]):
            _, made = SimSmpProduct.objects.get_or_create(
                code=product.smp_product_code,
                defaults={"zero_price_package_code": product.smp_zero_price_package_code},
            )
            created += made
        for tv_account, phone, status, balance in SMP_ACCOUNTS:
            _, made = SimSmpAccount.objects.get_or_create(
                tv_account=tv_account, defaults={"phone": phone, "status": status, "balance_fen": balance}
            )
            created += made
        return created

    def _seed_crm(self) -> int:
        return seed_crm_demo()

    def _seed_admin(self) -> int:
        """An ``admin`` superuser for the embedded demo, its password kept in var/ (never in the repo)."""
        if not settings.SANDBOX:
            return 0
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return 0
        path = settings.VAR_DIR / "demo_admin_password.txt"
        password = path.read_text().strip() if path.exists() else secrets.token_urlsafe(12)
        path.write_text(password)
        path.chmod(0o600)
        User.objects.create_superuser("admin", email="", password=password)
        self.stdout.write(f"seed_demo: admin user 'admin', password in {path}")
        return 1
