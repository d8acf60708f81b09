"""What can go wrong over RPC, as exception types a caller can tell apart."""

from __future__ import annotations

from typing import Final

from .._errors import AsyncMachineError

CONNECT_REASONS: Final = ("refused", "not_found", "forbidden_origin", "timeout", "protocol")


class RpcError(AsyncMachineError):
    """The server answered a request with an error; ``code`` is the protocol's error code
    (``forbidden``, ``unknown_state``, ...; see ``docs/protocol.md``)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


class AuthError(RpcError):
    """The server refused the token."""


class ConnectError(AsyncMachineError):
    """No connection could be opened; ``reason`` says why, as soon as it is known.

    ``refused`` (nothing listens, or the network failed), ``not_found`` (HTTP 404: wrong path),
    ``forbidden_origin`` (HTTP 403: the server refused the page's ``Origin``), ``timeout`` (no
    answer in time), ``protocol`` (a malformed URL, or a peer that does not speak the protocol).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in CONNECT_REASONS:
            raise ValueError(f"unknown connect error reason {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class DisconnectedError(AsyncMachineError, ConnectionError):
    """The connection was lost (or closed) before the server answered.

    For a mutation this means its outcome is unknown: sending it again with the same ``key``
    runs it at most once.
    """


class ProtocolError(AsyncMachineError):
    """A message that breaks the protocol; ``code`` is the ``err`` code sent back."""

    def __init__(self, code: str, msg: str, req_id: int | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.req_id = req_id


class RemoteError(AsyncMachineError):
    """An error reported by the other end of a connection (``add_err`` from a client): only
    its type name and message travel."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message

    def __repr__(self) -> str:
        return f"RemoteError({self.type_name}: {self.message})"
