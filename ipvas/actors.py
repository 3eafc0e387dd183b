"""Who did something: written with every transition, money movement and audit row."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    SYSTEM = "system", _("system")
    TASK = "task", _("background task")
    EPG_CLIENT = "epg_client", _("EPG client")
    CLERK = "clerk", _("clerk")
    ADMIN = "admin", _("admin")
    PROVIDER = "provider", _("payment provider")
    SMS = "sms", _("SMS reply")
    SMP = "smp", _("SMP")


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str = ""

    @classmethod
    def task(cls, name: str) -> Actor:
        return cls(ActorKind.TASK, name)

    @classmethod
    def system(cls, what: str = "") -> Actor:
        return cls(ActorKind.SYSTEM, what)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}" if self.id else self.kind.value
