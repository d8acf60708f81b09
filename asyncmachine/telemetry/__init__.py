"""Telemetry for machines: the am-dbg debugger stream, OpenTelemetry, Prometheus and Loki.

Every exporter is a :class:`asyncmachine.Tracer`, bound per machine. The exporters' own
dependencies come with the ``asyncmachine[telemetry]`` extra; importing this package imports none
of them: the submodules ``otel``, ``prometheus`` and ``loki`` load on first access.

``debug(mach)`` streams a machine to ``am-dbg`` (the web inspector, ``python -m
asyncmachine.debugger``); ``mach_debug_env(mach)`` does so when ``AM_DBG_ADDR`` is set.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ._debug import DebugTracer
from ._debug_stream import debug, mach_debug_env

_SUBMODULES = ("otel", "prometheus", "loki")

__all__: list[str] = ["DebugTracer", "debug", "mach_debug_env"]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
