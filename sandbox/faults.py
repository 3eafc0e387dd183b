"""Fault modes of the simulated systems (docs/interfaces.md §7).

``ok`` answers normally, ``down`` refuses, ``slow`` answers after
``SMP_SIMULATOR_SLOW_SECONDS`` (5 s), ``flaky`` fails every other call. The
mode lives in the database so that the web server and every worker see it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F

from sandbox.models import FaultMode, SimulatedFault


class SimulatedOutage(Exception):
    """The simulated system refuses this call, as a real one that is down would."""


def set_mode(system: str, mode: str) -> None:
    if mode not in FaultMode.values:
        raise ValueError(f"unknown fault mode {mode!r}")
    SimulatedFault.objects.update_or_create(system=system, defaults={"mode": mode, "calls": 0})


def mode_of(system: str) -> str:
    mode = SimulatedFault.objects.filter(system=system).values_list("mode", flat=True).first()
    return mode or FaultMode.OK


def gate(system: str) -> float:
    """Count one call; raise ``SimulatedOutage`` if it must fail, else return the delay to add."""
    mode = mode_of(system)
    if mode == FaultMode.OK:
        return 0.0
    if mode == FaultMode.DOWN:
        raise SimulatedOutage(f"{system} is down")
    if mode == FaultMode.SLOW:
        return settings.SMP_SIMULATOR_SLOW_SECONDS
    with transaction.atomic():
        SimulatedFault.objects.filter(system=system).update(calls=F("calls") + 1)
        calls = SimulatedFault.objects.get(system=system).calls
    if calls % 2 == 1:
        raise SimulatedOutage(f"{system} is flaky and failed call #{calls}")
    return 0.0
