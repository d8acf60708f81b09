"""The Python half of the JS bridge (``web/asyncmachine.mjs``): the page imports this package only.

Local machines live in ``_local``; remote ones in ``_remote``, imported on the first
``connect()`` (it brings asyncio and the RPC client); both build their call tables from the one
table of machine methods in ``_methods``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._local import (
    Bridge,
    BridgeError,
    JsError,
    MachineBridge,
    Notify,
    new_bridge,
    recording_lines,
    session_lines,
)
from ._methods import METHODS, MUTATIONS, Method

if TYPE_CHECKING:
    from ._remote import NetBridge

__all__ = [
    "METHODS",
    "MUTATIONS",
    "Bridge",
    "BridgeError",
    "JsError",
    "MachineBridge",
    "Method",
    "Notify",
    "connect_bridge",
    "new_bridge",
    "recording_lines",
    "session_lines",
]


async def connect_bridge(url: str, opts_json: str, notify: Notify) -> NetBridge | str:
    """A remote machine's bridge (``am.connect()``), or the JSON error envelope."""
    from ._remote import connect_bridge

    return await connect_bridge(url, opts_json, notify)
