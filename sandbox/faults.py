"""Fault modes of the simulated systems (docs/interfaces.md §7), one per system: ``smp``,
``wechatpay``, ``alipay``, ``sms``, ``crm`` (``SYSTEMS``; ``POST /sandbox/<system>/faults/``).

``ok`` answers normally, ``down`` refuses, ``slow`` answers after
``SMP_SIMULATOR_SLOW_SECONDS`` (the SMP; 5 s) or ``SIMULATOR_SLOW_SECONDS`` (the
others; the same by default), ``flaky`` fails every other call. A slow
answer that comes after the caller's timeout has still done its work, as a
real system's would. The mode lives in the database so that the web server
and every worker see it, in-process simulators and served fakes alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from sandbox.models import FaultMode, SimulatedFault

SYSTEMS = ("smp", "wechatpay", "alipay", "sms", "crm")


class SimulatedOutage(Exception):
    """The simulated system refuses this call, as a real one that is down would."""


def set_mode(system: str, mode: str) -> None:
    if mode not in FaultMode.values:
        raise ValueError(f"unknown fault mode {mode!r}")
    if system not in SYSTEMS:
        raise ValueError(f"unknown simulated system {system!r}")
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
        return settings.SMP_SIMULATOR_SLOW_SECONDS if system == "smp" else settings.SIMULATOR_SLOW_SECONDS
    with transaction.atomic():
        SimulatedFault.objects.filter(system=system).update(calls=F("calls") + 1)
        calls = SimulatedFault.objects.get(system=system).calls
    if calls % 2 == 1:
        raise SimulatedOutage(f"{system} is flaky and failed call #{calls}")
    return 0.0


def answer_late(delay: float, timeout: float, unavailable: Callable[[str], Exception], system: str) -> None:
    """The work is done; the answer takes ``delay`` s. Past the caller's ``timeout`` it never arrives."""
    if not delay:
        return
    time.sleep(min(delay, timeout))
    if delay >= timeout:
        raise unavailable(f"{system} did not answer within {timeout} s")
