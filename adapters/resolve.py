"""One way to choose an adapter's implementation: a dotted path in settings, resolved once.

``SMP_ADAPTER = "adapters.smp.http.HttpSmpClient"`` in production; the
embedded set-up names the simulator in ``sandbox.simulators``. The instance
is made on first use and kept (clients hold connection pools and parsed
keys); a change of any setting (tests) makes the next call resolve again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

T = TypeVar("T")

_ALL: list[Adapter[Any]] = []


class Adapter(Generic[T]):
    """``get_smp = Adapter[SmpAdapter]("SMP_ADAPTER")``; ``get_smp()`` is the configured implementation."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self._lock = threading.Lock()
        self._path = ""
        self._instance: T | None = None
        _ALL.append(self)

    def __call__(self) -> T:
        path = getattr(settings, self.setting)
        instance = self._instance
        if instance is not None and path == self._path:
            return instance
        with self._lock:
            if self._instance is None or path != self._path:
                factory: Callable[[], T] = import_string(path)
                self._instance, self._path = factory(), path
            return self._instance

    def reset(self) -> None:
        with self._lock:
            self._instance, self._path = None, ""


def _forget_all(**kwargs: Any) -> None:
    for adapter in _ALL:
        adapter.reset()


setting_changed.connect(_forget_all, dispatch_uid="adapters-resolve")
