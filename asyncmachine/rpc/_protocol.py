"""The wire protocol shared by both ends: strict JSON text frames, one message each.

Constants, the codec and the field checks only (no I/O), so the sessions, the adapters and the
tests agree on one definition. ``docs/protocol.md`` documents every message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from ._errors import ProtocolError

VERSION: Final = 2
"""Protocol version, sent in ``hello`` and ``welcome``."""

MAX_FRAME: Final = 256 * 1024
"""Default largest frame the server accepts, in bytes (announced in ``welcome``)."""

CLIENT_MAX_FRAME: Final = 16 * 1024 * 1024
"""Default largest frame the Python client accepts (announced in ``hello``)."""

MIN_FRAME: Final = 1024
"""The smallest frame limit a peer may announce."""

MAX_ID: Final = 2**53 - 1
"""Request ids and ticks travel as JSON numbers: keep them exact in JavaScript."""

# close codes (RFC 6455: 1xxx defined by the RFC, 4xxx private to the application)
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL: Final = 1002
"""A peer broke the protocol (a malformed frame)."""
CLOSE_POLICY: Final = 1008
"""Flood, or a client too slow to keep up even after a resync."""
CLOSE_TOO_BIG: Final = 1009
"""A frame larger than the receiver's limit."""
CLOSE_HANDSHAKE: Final = 4000
"""No valid ``hello`` in time, or an unsupported protocol version."""
CLOSE_AUTH: Final = 4001
"""The token was refused."""
CLOSE_TIMEOUT: Final = 4002
"""No frame from the peer within two heartbeat intervals."""
CLOSE_REVOKED: Final = 4003
"""The server application ended the client's access (``Server.disconnect``)."""

# error codes of ``err`` messages
E_BAD_JSON: Final = "bad_json"
E_BAD_MESSAGE: Final = "bad_message"
E_UNKNOWN_TYPE: Final = "unknown_type"
E_UNKNOWN_MACHINE: Final = "unknown_machine"
E_UNKNOWN_STATE: Final = "unknown_state"
E_FORBIDDEN: Final = "forbidden"
E_AUTH: Final = "auth"
E_VERSION: Final = "version"
E_FLOOD: Final = "flood"
E_NOT_SUBSCRIBED: Final = "not_subscribed"
E_TOO_LARGE: Final = "too_large"
E_UNSUPPORTED: Final = "unsupported"
E_TIMEOUT: Final = "timeout"
E_INTERNAL: Final = "internal"

OPS: Final = ("add", "remove", "set", "add_err")
"""Mutation ops; ``add_err`` adds an error state (and ``Exception``) with the client's error."""
CHECK_OPS: Final = ("add", "remove")
"""Ops of the dry runs (``check``, ``explain``)."""

# limits of a mutation's ``src`` (its source) and of an error a client reports
MAX_NAME: Final = 128
"""Longest id (client, tab, machine, transition) or idempotency key, in characters."""
MAX_META: Final = 16
"""Most ``src.meta`` entries."""
MAX_META_KEY: Final = 64
MAX_META_VALUE: Final = 512
MAX_ERR_TYPE: Final = 128
MAX_ERR_MSG: Final = 4096


@dataclass(frozen=True, slots=True)
class CloseRequest:
    """How a session asks its adapter to end the connection, once the queued frames are sent."""

    code: int
    reason: str
    abort: bool = False
    """Drop the connection at once, without the closing handshake (a dead peer)."""


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)
_JSON_SPACE = " \t\n\r"


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(message: Mapping[str, Any]) -> str:
    """Strict JSON: ``NaN``/``Infinity`` raise ``ValueError``, other objects ``TypeError``."""
    return _ENCODER.encode(message)


def loads(text: str) -> Any:
    """Parse strict JSON: ``NaN``, ``Infinity`` and numbers out of range raise ``ValueError``."""
    return _DECODER.decode(text)


def decode(frame: str | bytes) -> dict[str, Any]:
    """Parse a frame into a message with a string ``t``; raise ``ProtocolError`` otherwise."""
    if not isinstance(frame, str):
        raise ProtocolError(E_BAD_MESSAGE, "binary frames are not supported")
    if frame[:1] in _JSON_SPACE:  # JSON allows white space around the value
        frame = frame.lstrip(_JSON_SPACE)
    try:
        message, end = _DECODER.raw_decode(frame)
        if end != len(frame) and frame[end:].strip(_JSON_SPACE):
            raise ValueError("extra data")
    except (ValueError, RecursionError):
        raise ProtocolError(E_BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError(E_BAD_MESSAGE, 'a message is a JSON object with a string "t"')
    return message


def frame_size(frame: str) -> int:
    """A text frame's payload size in bytes (UTF-8)."""
    return len(frame) if frame.isascii() else len(frame.encode())


def is_int(value: object, low: int = 0, high: int = MAX_ID) -> TypeGuard[int]:
    return type(value) is int and low <= value <= high


def req_id(message: Mapping[str, Any]) -> int:
    """The request id: a non-negative integer the peer chose."""
    value = message.get("id")
    if not is_int(value):
        raise ProtocolError(E_BAD_MESSAGE, '"id" must be a non-negative integer')
    return int(value)


def field_str(message: Mapping[str, Any], name: str, rid: int | None = None) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(E_BAD_MESSAGE, f'"{name}" must be a non-empty string', rid)
    return value


def field_states(
    message: Mapping[str, Any], rid: int | None = None, name: str = "states"
) -> list[str]:
    value = message.get(name)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ProtocolError(E_BAD_MESSAGE, f'"{name}" must be a list of state names', rid)
    return value


def field_args(message: Mapping[str, Any], rid: int | None = None) -> dict[str, Any] | None:
    value = message.get("args")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(E_BAD_MESSAGE, '"args" must be an object', rid)
    return value


def field_key(message: Mapping[str, Any], rid: int | None = None) -> str | None:
    key = message.get("key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= MAX_NAME):
        raise ProtocolError(
            E_BAD_MESSAGE, f'"key" must be a string of 1-{MAX_NAME} characters', rid
        )
    return key


def _short_str(value: object, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


@dataclass(frozen=True, slots=True)
class Src:
    """Where a mutation comes from, as the client says: the transition of the client's own
    machine that made it (if any), the client, the browser tab, and free-form ``meta``."""

    mach_id: str = ""
    tx_id: str = ""
    mach_time: int = 0
    client_id: str | None = None
    tab_id: str | None = None
    meta: dict[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.mach_id:
            out["m"] = self.mach_id
        if self.tx_id:
            out["tx"] = self.tx_id
        if self.mach_time:
            out["mt"] = self.mach_time
        if self.client_id is not None:
            out["cid"] = self.client_id
        if self.tab_id is not None:
            out["tab"] = self.tab_id
        if self.meta:
            out["meta"] = self.meta
        return out


def check_meta(meta: Mapping[Any, Any]) -> dict[str, str]:
    """``meta`` as the protocol allows it, or ``ValueError``/``TypeError`` saying what is wrong."""
    if len(meta) > MAX_META:
        raise ValueError(f"meta has {len(meta)} entries; at most {MAX_META}")
    out: dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("meta keys and values must be strings")
        if not 0 < len(key) <= MAX_META_KEY or len(value) > MAX_META_VALUE:
            raise ValueError(
                f"meta key {key[:20]!r}: keys take 1-{MAX_META_KEY} characters, "
                f"values at most {MAX_META_VALUE}"
            )
        out[key] = value
    return out


def field_src(message: Mapping[str, Any], rid: int | None = None) -> Src | None:
    """The optional ``src`` object of a mutation, checked field by field."""
    value = message.get("src")
    if value is None:
        return None

    def bad(what: str) -> ProtocolError:
        return ProtocolError(E_BAD_MESSAGE, f'"src" {what}', rid)

    if not isinstance(value, dict):
        raise bad("must be an object")
    names = {"m": "", "tx": "", "cid": None, "tab": None}
    got: dict[str, Any] = {}
    for name, default in names.items():
        item = value.get(name, default)
        if item != default and not _short_str(item, MAX_NAME):
            raise bad(f'"{name}" must be a string of 1-{MAX_NAME} characters')
        got[name] = item
    mach_time = value.get("mt", 0)
    if not is_int(mach_time):
        raise bad('"mt" must be a non-negative integer')
    meta = value.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            raise bad('"meta" must be an object of strings')
        try:
            meta = check_meta(meta)
        except (TypeError, ValueError) as err:
            raise bad(str(err)) from None
    return Src(got["m"], got["tx"], mach_time, got["cid"], got["tab"], meta or None)


def field_err(message: Mapping[str, Any], rid: int | None = None) -> tuple[str, str]:
    """The ``err`` object of an ``add_err`` mutation: the error's type name and message."""
    value = message.get("err")
    if (
        not isinstance(value, dict)
        or not _short_str(value.get("type"), MAX_ERR_TYPE)
        or not isinstance(value.get("msg"), str)
        or len(value["msg"]) > MAX_ERR_MSG
    ):
        raise ProtocolError(
            E_BAD_MESSAGE,
            f'"err" must be {{"type": <1-{MAX_ERR_TYPE} chars>, "msg": <{MAX_ERR_MSG} at most>}}',
            rid,
        )
    return value["type"], value["msg"]


def diff(before: Sequence[int], after: Sequence[int]) -> list[list[int]]:
    """``[[index, delta], ...]`` of the ticks that changed (ticks only ever grow)."""
    return [[i, a - b] for i, (a, b) in enumerate(zip(after, before, strict=True)) if a != b]


def apply_diff(time: list[int], changes: object) -> list[int]:
    """Indexes whose tick changed; ``time`` is updated in place. Malformed input raises
    ``ProtocolError`` and leaves ``time`` as it was."""
    if type(changes) is not list:
        raise ProtocolError(E_BAD_MESSAGE, "a diff is a list of [index, delta] pairs")
    updated = time.copy()
    changed: list[int] = []
    try:
        for index, delta in changes:
            if type(index) is not int or type(delta) is not int or index < 0 or delta <= 0:
                raise ValueError
            updated[index] += delta
            changed.append(index)
    except (TypeError, ValueError, IndexError):
        raise ProtocolError(E_BAD_MESSAGE, f"bad diff {str(changes)[:60]}") from None
    time[:] = updated
    return changed
