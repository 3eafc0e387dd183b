"""WeChat Pay and Alipay served over HTTP by the sandbox, so that the real SDK clients can run.

``adapters/wechatpay/client.py`` and ``adapters/alipay/client.py``
speak the providers' own protocols through their SDKs; pointed at
``/sandbox/wechatpay/fake`` (WECHATPAY_GATEWAY) and
``/sandbox/alipay/fake/gateway.do`` (ALIPAY_GATEWAY) they reach these fakes,
which check their signatures, answer from the simulated providers of
``sandbox/payments.py`` and sign their answers as the providers do.

What both fakes share lives here; the protocols are in
``provider_fakes_wechatpay`` and ``provider_fakes_alipay``. The fault modes of
``sandbox/faults.py`` apply under the provider's name: ``down`` answers as an
unavailable provider does, ``slow`` delays the answer, ``flaky`` fails every
other call.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

from sandbox import faults


class Outage(Exception):
    """The simulated provider is down for this call."""


def fault_delay(system: str) -> float:
    """Count one call under the fault mode; raise ``Outage`` when it must fail, else return the delay."""
    try:
        return faults.gate(system)
    except faults.SimulatedOutage as exc:
        raise Outage(str(exc)) from exc


def pause(seconds: float) -> None:
    if seconds:
        time.sleep(seconds)


def compact_json(value: Any) -> str:
    """JSON as the providers write it: no spaces, Chinese as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def nonce(length: int = 32) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))
