"""Checks for the messages machines send to am-dbg (and that session files hold).

A message is one JSON object per line; the stream's format is described in docs/debugger.md.
``parse`` turns one line into a checked message or raises ``MessageError`` saying what is wrong,
so one bad line is reported and skipped without losing the lines around it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from .._errors import AsyncMachineError

PROTOCOL_VERSION = 1
STREAM_KINDS = ("hello", "schema", "tx", "dropped", "dispose")
"""What machines send."""
SESSION_KINDS = ("session", "status")
"""What am-dbg adds in session files and in the inspector's feed."""
MAX_LINE = 4 << 20
"""Bytes in one message, at most."""

Message = dict[str, Any]


class MessageError(AsyncMachineError, ValueError):
    """A line that is not a valid message."""


def parse(line: str, kinds: tuple[str, ...] = STREAM_KINDS) -> Message:
    """One checked message from one JSON line."""
    if len(line) > MAX_LINE:
        raise MessageError(f"message of {len(line)} bytes is over the {MAX_LINE} bytes limit")
    try:
        msg = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise MessageError(f"not JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(msg, dict):
        raise MessageError(f"expected a JSON object, got {type(msg).__name__}")
    kind = msg.get("kind")
    if kind not in kinds:
        raise MessageError(f"unknown kind {kind!r} (expected one of {', '.join(kinds)})")
    _CHECKS[kind](msg)
    return msg


def _no_constant(name: str) -> Any:
    raise MessageError(f"not strict JSON: {name}")


def _need(msg: Message, key: str, check: Callable[[Any], bool], what: str) -> None:
    if key not in msg:
        raise MessageError(f"{msg['kind']} message without {key!r}")
    if not check(msg[key]):
        raise MessageError(f"{msg['kind']} message: {key!r} must be {what}, got {msg[key]!r:.80}")


def _opt(msg: Message, key: str, check: Callable[[Any], bool], what: str) -> None:
    if key in msg and msg[key] is not None and not check(msg[key]):
        raise MessageError(f"{msg['kind']} message: {key!r} must be {what}, got {msg[key]!r:.80}")


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_id(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 256


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_clock(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _is_int(t) for k, t in v.items())


def _is_obj(v: Any) -> bool:
    return isinstance(v, dict)


def _is_str_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _check_hello(msg: Message) -> None:
    _need(msg, "v", _is_int, "an integer")
    if msg["v"] > PROTOCOL_VERSION:
        raise MessageError(
            f"hello: protocol version {msg['v']} is newer than this am-dbg's ({PROTOCOL_VERSION})"
        )
    _opt(msg, "proc", _is_obj, "an object")
    _opt(msg, "dropped", _is_int, "a count")


def _check_schema(msg: Message) -> None:
    _need(msg, "id", _is_id, "a machine id")
    _need(msg, "names", _is_names, "a list of state names")
    _need(msg, "states", _is_obj, "an object of states")
    _need(msg, "clock", _is_clock, "an object of ticks")
    _opt(msg, "parent", _is_id, "a machine id")
    _opt(msg, "tags", _is_names, "a list of tags")
    _opt(msg, "t", _is_num, "a time in ms")
    names = msg["names"]
    missing = [n for n in names if n not in msg["states"]]
    if missing:
        raise MessageError(f"schema of {msg['id']}: states {missing!r:.80} are not in 'states'")
    for name, spec in msg["states"].items():
        if not isinstance(spec, dict):
            raise MessageError(f"schema of {msg['id']}: state {name!r} must be an object")
        for rel in ("require", "add", "remove", "after"):
            if rel in spec and not _is_names(spec[rel]):
                raise MessageError(f"schema of {msg['id']}: {name}.{rel} must be a list of names")


def _check_tx(msg: Message) -> None:
    _need(msg, "id", _is_id, "a machine id")
    _need(msg, "tx", _is_id, "a transition id")
    _need(msg, "t", _is_num, "a time in ms")
    _need(msg, "type", lambda v: v in ("add", "remove", "set"), "add, remove or set")
    _need(msg, "called", _is_names, "a list of state names")
    _need(msg, "ticks", _is_clock, "an object of ticks")
    _need(msg, "accepted", _is_bool, "true or false")
    _opt(msg, "auto", _is_bool, "true or false")
    _opt(msg, "qt", _is_int, "a queue tick")
    _opt(msg, "queue", _is_int, "a queue length")
    _opt(msg, "steps", lambda v: isinstance(v, list) and all(map(_is_obj, v)), "a list")
    _opt(msg, "log", lambda v: isinstance(v, list) and all(map(_is_log, v)), "[[level, text]]")
    _opt(msg, "source", _is_source, "an object with mach and tx")
    _opt(msg, "args", _is_str_map, "an object of strings")
    _opt(msg, "canceled_by", _is_str, "a handler name")
    _opt(msg, "applied", _is_bool, "true or false")
    for key in ("before", "target", "handlers"):
        _opt(msg, key, _is_names, "a list of names")


def _is_log(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and _is_int(v[0]) and isinstance(v[1], str)


def _is_source(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(v.get(k, ""), str) for k in ("mach", "tx"))


def _check_dropped(msg: Message) -> None:
    _need(msg, "id", _is_id, "a machine id")
    _need(msg, "count", _is_int, "a count")
    _need(msg, "clock", _is_clock, "an object of ticks")


def _check_dispose(msg: Message) -> None:
    _need(msg, "id", _is_id, "a machine id")


def _check_session(msg: Message) -> None:
    _need(msg, "v", _is_int, "an integer")
    if msg["v"] > PROTOCOL_VERSION:
        raise MessageError(f"session format {msg['v']} is newer than this am-dbg's")


def _check_status(msg: Message) -> None:
    _need(msg, "id", _is_id, "a machine id")
    _opt(msg, "connected", _is_bool, "true or false")
    _opt(msg, "proc", _is_obj, "an object")


_CHECKS: dict[str, Callable[[Message], None]] = {
    "hello": _check_hello,
    "schema": _check_schema,
    "tx": _check_tx,
    "dropped": _check_dropped,
    "dispose": _check_dispose,
    "session": _check_session,
    "status": _check_status,
}


def dumps(msg: Message) -> str:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
