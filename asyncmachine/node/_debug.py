"""Pool machines in the inspector: streamed to am-dbg when ``AM_DBG_ADDR`` is set."""

from __future__ import annotations

import os

from .._machine import Machine


def debug_env(mach: Machine) -> None:
    """Stream ``mach`` to am-dbg when ``AM_DBG_ADDR`` is set (workers inherit it from their
    supervisor); the telemetry package is imported only then, so workers boot fast."""
    if os.environ.get("AM_DBG_ADDR", "").strip():
        from ..telemetry import mach_debug_env

        mach_debug_env(mach)
