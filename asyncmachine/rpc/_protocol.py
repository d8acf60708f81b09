"""The wire protocol shared by server and clients: JSON text frames, one message each.

Pure functions and constants only (no I/O), so both ends and the tests agree on one definition.
``docs/protocol.md`` documents every message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

VERSION = 1
"""Protocol version, sent in ``hello`` and ``welcome``."""

MAX_FRAME = 256 * 1024
"""Default largest frame either side accepts, in bytes."""

MAX_ID = 2**53 - 1
"""Request ids and ticks travel as JSON numbers: keep them exact in JavaScript."""

# close codes (RFC 6455 ranges: 1xxx defined by the RFC, 4xxx private to the application)
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
"""Flood, or a client too slow to keep up even after a resync."""
CLOSE_HANDSHAKE = 4000
"""No valid ``hello`` in time, or an unsupported protocol version."""
CLOSE_AUTH = 4001
"""The token was refused."""
CLOSE_TIMEOUT = 4002
"""No frame from the peer within two heartbeat intervals."""

# error codes of ``err`` messages
E_BAD_JSON = "bad_json"
E_BAD_MESSAGE = "bad_message"
E_UNKNOWN_TYPE = "unknown_type"
E_UNKNOWN_MACHINE = "unknown_machine"
E_UNKNOWN_STATE = "unknown_state"
E_FORBIDDEN = "forbidden"
E_AUTH = "auth"
E_VERSION = "version"
E_FLOOD = "flood"
E_NOT_SUBSCRIBED = "not_subscribed"
E_INTERNAL = "internal"

OPS = ("add", "remove", "set")


class ProtocolError(Exception):
    """A message that breaks the protocol; ``code`` is the ``err`` code sent back."""

    def __init__(self, code: str, msg: str, req_id: int | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.req_id = req_id


def encode(message: Mapping[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def decode(frame: str | bytes) -> dict[str, Any]:
    """Parse a frame into a message with a string ``t``; raise ``ProtocolError`` otherwise."""
    if isinstance(frame, bytes):
        raise ProtocolError(E_BAD_MESSAGE, "binary frames are not supported")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError(E_BAD_JSON, "frame is not valid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError(E_BAD_MESSAGE, 'a message is a JSON object with a string "t"')
    return message


def req_id(message: Mapping[str, Any]) -> int:
    """The request id: a non-negative integer the peer chose."""
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ProtocolError(E_BAD_MESSAGE, '"id" must be a non-negative integer')
    return value


def field_str(message: Mapping[str, Any], name: str, rid: int | None = None) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError(E_BAD_MESSAGE, f'"{name}" must be a non-empty string', rid)
    return value


def field_states(message: Mapping[str, Any], rid: int | None = None) -> list[str]:
    value = message.get("states")
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ProtocolError(E_BAD_MESSAGE, '"states" must be a list of state names', rid)
    return value


def field_args(message: Mapping[str, Any], rid: int | None = None) -> dict[str, Any] | None:
    value = message.get("args")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProtocolError(E_BAD_MESSAGE, '"args" must be an object', rid)
    return value


def diff(before: Sequence[int], after: Sequence[int]) -> list[list[int]]:
    """``[[index, delta], ...]`` of the ticks that changed (ticks only ever grow)."""
    return [[i, a - b] for i, (a, b) in enumerate(zip(after, before, strict=True)) if a != b]


def apply_diff(time: list[int], changes: Sequence[Sequence[int]]) -> list[int]:
    """Indexes whose tick changed; ``time`` is updated in place. Malformed input raises."""
    changed: list[int] = []
    for item in changes:
        index, delta = item
        if not 0 <= index < len(time) or delta <= 0:
            raise ProtocolError(E_BAD_MESSAGE, f"bad diff entry {item!r}")
        time[index] += delta
        changed.append(index)
    return changed
