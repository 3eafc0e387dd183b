from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from epg_api.authentication import forget_client
from epg_api.models import EpgClient


@receiver(post_save, sender=EpgClient, dispatch_uid="epg-client-saved")
@receiver(post_delete, sender=EpgClient, dispatch_uid="epg-client-deleted")
def forget_changed_client(sender: type[EpgClient], instance: EpgClient, **kwargs: Any) -> None:
    forget_client(instance)
