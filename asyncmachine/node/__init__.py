"""Supervised worker pools: a supervisor keeps worker processes of one kind ready, a client asks
it for a worker and then drives that worker's machine directly over RPC.

Needs the ``rpc`` extra (``pip install asyncmachine[rpc]``). See ``docs/node.md``.
"""

from ._client import Client
from ._discovery import Discovery, StaticDiscovery
from ._errors import PoolError, SupervisorError, WorkerError
from ._pool import WorkerInfo
from ._states import (
    CLIENT_SCHEMA,
    PAYLOAD_ASSIGNED,
    SUPERVISOR_SCHEMA,
    WORKER_SCHEMA,
    ClientStates,
    SupervisorStates,
    WorkerStates,
)
from ._supervisor import Supervisor
from ._worker import run_worker

__all__ = [
    "CLIENT_SCHEMA",
    "PAYLOAD_ASSIGNED",
    "SUPERVISOR_SCHEMA",
    "WORKER_SCHEMA",
    "Client",
    "ClientStates",
    "Discovery",
    "PoolError",
    "StaticDiscovery",
    "Supervisor",
    "SupervisorError",
    "SupervisorStates",
    "WorkerError",
    "WorkerInfo",
    "WorkerStates",
    "run_worker",
]
