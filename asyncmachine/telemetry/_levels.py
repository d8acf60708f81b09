"""The severity of a machine's log line, shared by the Loki exporter and the OTel logs bridge.

A line starting with ``[error`` is an error whatever level logged it; otherwise the machine's log
level decides: ``EXTERNAL``, ``CHANGES`` and ``OPS`` are info, ``DECISIONS`` and ``EVERYTHING``
debug. OpenTelemetry gets the same three levels, with finer severity numbers inside each.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._log import LogLevel


@dataclass(frozen=True, slots=True)
class Severity:
    """One line's level: ``name`` is Loki's ``level`` label, the rest OpenTelemetry's severity."""

    name: str
    otel_number: int
    """An OpenTelemetry ``SeverityNumber`` value (1-24)."""
    otel_text: str


ERROR = Severity("error", 17, "ERROR")
_INFO_EXTERNAL = Severity("info", 12, "INFO")  # INFO4: the user's own lines rank highest
_INFO_CHANGES = Severity("info", 11, "INFO")  # INFO3
_INFO_OPS = Severity("info", 9, "INFO")  # INFO
_DEBUG_DECISIONS = Severity("debug", 8, "DEBUG")  # DEBUG4
_DEBUG_EVERYTHING = Severity("debug", 5, "DEBUG")  # DEBUG

_BY_LEVEL: dict[int, Severity] = {
    LogLevel.EXTERNAL: _INFO_EXTERNAL,
    LogLevel.CHANGES: _INFO_CHANGES,
    LogLevel.OPS: _INFO_OPS,
    LogLevel.DECISIONS: _DEBUG_DECISIONS,
    LogLevel.EVERYTHING: _DEBUG_EVERYTHING,
}


def severity(level: int, body: str) -> Severity:
    """The severity of a line logged at ``level`` whose text (without the id prefix) is ``body``."""
    if body.startswith("[error"):
        return ERROR
    return _BY_LEVEL.get(level, _INFO_CHANGES)


def id_prefixes(mach_id: str) -> tuple[str, ...]:
    """The prefixes a machine's log lines start with: ``[<first 5 chars of the id>] `` (the
    default) or ``[<id>] `` (the full id)."""
    return tuple(dict.fromkeys((f"[{mach_id[:5]}] ", f"[{mach_id}] ")))
