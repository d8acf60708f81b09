"""Telemetry for machines: the am-dbg debugger stream, OpenTelemetry, Prometheus and Loki.

Every exporter is a :class:`asyncmachine.Tracer`, bound per machine. The exporters' own
dependencies come with the ``asyncmachine[telemetry]`` extra; importing this package imports none
of them: the submodules ``otel``, ``prometheus`` and ``loki`` load on first access.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_SUBMODULES = ("otel", "prometheus", "loki")

__all__: list[str] = []


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
