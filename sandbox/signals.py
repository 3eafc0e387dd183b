"""In the sandbox the simulated SMP learns every product an admin configures,
so that a new product can be ordered in a demo at once. (A real SMP is told
by its own operators.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from orders.models import Product


@receiver(post_save, sender=Product, dispatch_uid="sandbox-register-smp-product")
def register_product_in_simulated_smp(sender: type[Product], instance: Product, **kwargs: Any) -> None:
    if not settings.SANDBOX or kwargs.get("raw"):
        return
    from sandbox.models import SimCrmActivityCode, SimSmpProduct

    SimSmpProduct.objects.update_or_create(
        code=instance.smp_product_code,
        defaults={"zero_price_package_code": instance.smp_zero_price_package_code},
    )
    if instance.crm_activity_code:
        SimCrmActivityCode.objects.get_or_create(code=instance.crm_activity_code)
