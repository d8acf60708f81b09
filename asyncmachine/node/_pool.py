"""The supervisor's bookkeeping: one entry per worker process, and what the pool needs next."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ._states import WorkerStates

if TYPE_CHECKING:
    from ..rpc import Client as RpcClient
    from ..rpc import NetMachine

ws = WorkerStates()

Status = Literal["starting", "idle", "busy", "ready"]


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker as ``Supervisor.workers()`` reports it.

    ``status``: ``"starting"`` (forked, not adopted yet), ``"idle"`` (ready and free),
    ``"busy"`` (assigned to a client), ``"ready"`` (adopted, neither idle nor assigned).
    """

    id: str
    pid: int
    url: str | None
    status: Status
    client_id: str | None = None


@dataclass(eq=False)
class WorkerEntry:
    """One worker process and what the supervisor knows of it."""

    id: str
    secret: str
    proc: asyncio.subprocess.Process
    forked_at: float
    url: str | None = None
    rpc: RpcClient | None = None
    net: NetMachine | None = None
    client_id: str | None = None
    """The client it is assigned to (set before the worker hears of it: never assigned twice)."""
    lease: str | None = None
    """The assignment's id: a release names it, so a late one never ends the next assignment."""
    killing: str | None = None
    """Why it is being killed, once it is."""
    errors: deque[float] = field(default_factory=deque)
    """When its recent errors happened."""

    @property
    def ready(self) -> bool:
        net = self.net
        return self.killing is None and net is not None and net.is1(ws.Ready)

    @property
    def idle(self) -> bool:
        net = self.net
        return self.ready and self.client_id is None and net is not None and net.is1(ws.Idle)

    def status(self) -> Status:
        if self.client_id is not None:
            return "busy"
        if self.idle:
            return "idle"
        if self.ready:
            return "ready"
        return "starting"

    def info(self) -> WorkerInfo:
        return WorkerInfo(self.id, self.proc.pid, self.url, self.status(), self.client_id)

    def error(self, now: float, window: float) -> int:
        """Record an error; returns how many happened within ``window`` seconds."""
        errors = self.errors
        errors.append(now)
        while errors and errors[0] < now - window:
            errors.popleft()
        return len(errors)


def pool_target(minimum: int, maximum: int, warm: int) -> int:
    """How many workers to keep: ``min + warm``, capped at ``max``."""
    return min(minimum + warm, maximum)


def check_pool_size(minimum: int, maximum: int, warm: int) -> None:
    """Refuse a pool that cannot be kept (negative sizes, ``min`` over ``max``)."""
    if minimum < 0 or warm < 0 or maximum < 1:
        raise ValueError(
            f"pool sizes must be min >= 0, warm >= 0, max >= 1 (got {minimum}, {warm}, {maximum})"
        )
    if minimum > maximum:
        raise ValueError(f"min ({minimum}) is over max ({maximum})")
