"""Log levels and the line formats shared by the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from typing import Any

Logger = Callable[["LogLevel", str], None]
ArgsMapper = Callable[[Mapping[str, Any]], Mapping[str, str] | None]


class LogLevel(IntEnum):
    """How much the machine logs; each level includes the ones below it."""

    NOTHING = 0
    EXTERNAL = 1
    CHANGES = 2
    OPS = 3
    DECISIONS = 4
    EVERYTHING = 5

    def __str__(self) -> str:
        return self.name.lower()


# The levels as plain ints, for the engine's comparisons (defined here, once).
NOTHING = int(LogLevel.NOTHING)
EXTERNAL = int(LogLevel.EXTERNAL)
CHANGES = int(LogLevel.CHANGES)
OPS = int(LogLevel.OPS)
DECISIONS = int(LogLevel.DECISIONS)
EVERYTHING = int(LogLevel.EVERYTHING)

DEFAULT_LOG_ARGS = ("name", "id", "port", "addr", "err", "path", "url", "uri")


def new_log_args_mapper(max_len: int = 20, names: Iterable[str] = DEFAULT_LOG_ARGS) -> ArgsMapper:
    """Pick the listed args for log lines, each value cut to ``max_len`` characters."""
    keep = tuple(names)

    def mapper(args: Mapping[str, Any]) -> dict[str, str] | None:
        out = {k: truncate(str(args[k]), max_len) for k in keep if k in args}
        return out or None

    return mapper


def typed_log_args(args: Mapping[str, Any]) -> dict[str, str]:
    """Log fields of typed args: values with a ``__am_log_args__()`` method (see ``am.args``)."""
    out: dict[str, str] = {}
    for value in args.values():
        fields = getattr(value, "__am_log_args__", None)
        if fields is not None:
            out.update(fields())
    return out


def log_args(args: Mapping[str, Any], mapper: ArgsMapper | None) -> dict[str, str]:
    """What a log line shows of ``args``: the mapper's pick plus typed args' log fields."""
    if not args:
        return {}
    out = typed_log_args(args)
    if mapper is not None:
        out.update(mapper(args) or {})
    return out


def truncate(text: str, max_len: int) -> str:
    if len(text) <= max_len:
        return text
    if max_len < 5:
        return text[:max_len]
    return text[: max_len - 3] + "..."


def format_args(mapped: Mapping[str, str] | None) -> str:
    """``" (k1=v1 k2=v2)"`` with sorted keys, or ``""``."""
    if not mapped:
        return ""
    return " (" + " ".join(f"{k}={mapped[k]}" for k in sorted(mapped)) + ")"
