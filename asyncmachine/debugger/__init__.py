"""am-dbg: the web inspector for machines streamed with ``asyncmachine.telemetry.debug``.

``python -m asyncmachine.debugger`` (or the ``am-dbg`` command) serves the inspector page and
receives machines; ``DebugServer`` is the same server for use inside a program or a test, and
``Session`` what it holds. Session files (``.jsonl.gz``) are read and written by ``read_session``
and ``write_session``. The server needs the ``websockets`` package (``asyncmachine[telemetry]``);
the rest does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._files import read as read_session
from ._files import write as write_session
from ._messages import MessageError
from ._session import DEFAULT_MAX_TRANSITIONS, Session

if TYPE_CHECKING:
    from ._server import DebugServer

__all__ = [
    "DEFAULT_MAX_TRANSITIONS",
    "DebugServer",
    "MessageError",
    "Session",
    "read_session",
    "write_session",
]


def __getattr__(name: str) -> Any:
    if name == "DebugServer":
        from ._server import DebugServer

        return DebugServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
