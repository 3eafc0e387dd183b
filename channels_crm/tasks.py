"""Tasks of the clerk's channel."""

from __future__ import annotations

from channels_crm.sso import purge_used_tickets
from ipvas.tasks import ipvas_task


@ipvas_task(name="channels_crm.tasks.purge_sso_tickets")
def purge_sso_tickets() -> int:
    return purge_used_tickets()
