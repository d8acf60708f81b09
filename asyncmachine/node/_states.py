"""The states of the three roles of a worker pool: worker, supervisor and client.

Every worker schema merges ``WORKER_SCHEMA`` (the Worker mixin); the supervisor's and the
client's machines are built by this package. Payload names and arg keys shared by the roles live
here too, so the wire contract is in one place.
"""

from __future__ import annotations

from .._schema import EXCEPTION, State
from .._states_base import StatesBase


class WorkerStates(StatesBase):
    """The Worker mixin: a worker process serves one client at a time, as its supervisor says."""

    ErrWork: str
    """The job failed (multi; adds ``Exception``). Too many in a row get the worker replaced."""
    ErrSupervisor: str
    """The connection to the supervisor was lost; the worker exits (adds ``Exception``)."""
    Start: str
    RpcReady: str
    """The worker's RPC server listens."""
    SuperConnected: str
    """The worker reported its address to its supervisor and stays connected to it."""
    Ready: str
    """Auto: able to serve: the RPC server listens and the supervisor knows where."""
    Healthcheck: str
    """The supervisor's liveness probe (multi): its tick must grow on every probe."""
    ServeClient: str
    """The supervisor assigned a client (args ``client_id``, ``token``, ``lease``: the
    assignment's id): only that client, with that token, may connect until the state ends (the
    release, which names the lease it ends)."""
    ClientConnected: str
    """The assigned client is connected."""
    Idle: str
    """Auto: not working (the work group is empty)."""
    WorkRequested: str
    """The client asked for work (its args are the job); ``WorkRequestedState`` starts it."""
    Working: str
    WorkReady: str
    """The job is done (results went out as payloads)."""
    ClientSendPayload: str
    """Send ``{"name": ..., "data": ...}`` (the args) to the assigned client (multi)."""


_w = WorkerStates()
_WORK = (_w.Idle, _w.WorkRequested, _w.Working, _w.WorkReady)

WORKER_SCHEMA: dict[str, State] = {
    _w.Exception: State(multi=True),
    _w.ErrWork: State(multi=True, add=(EXCEPTION,), require=(EXCEPTION,)),
    _w.ErrSupervisor: State(add=(EXCEPTION,), require=(EXCEPTION,)),
    _w.Start: State(),
    _w.RpcReady: State(require=(_w.Start,)),
    _w.SuperConnected: State(require=(_w.Start,)),
    _w.Ready: State(auto=True, require=(_w.RpcReady, _w.SuperConnected)),
    _w.Healthcheck: State(multi=True),
    _w.ServeClient: State(require=(_w.Ready,)),
    _w.ClientConnected: State(require=(_w.ServeClient,)),
    _w.Idle: State(auto=True, require=(_w.Ready,), remove=_WORK),
    _w.WorkRequested: State(require=(_w.ServeClient,), remove=_WORK),
    _w.Working: State(require=(_w.ServeClient,), remove=_WORK),
    _w.WorkReady: State(require=(_w.ServeClient,), remove=_WORK),
    _w.ClientSendPayload: State(multi=True, require=(_w.ServeClient,)),
}

CLIENT_WORKER_STATES = frozenset(_WORK)
"""What a client's mutations may change on its worker (the work group): the RPC policy."""


class SupervisorStates(StatesBase):
    """A supervisor keeps ``min + warm`` workers (at most ``max``) and lends them to clients."""

    ErrWorker: str
    """A worker crashed, hung, failed to start or erred too often (multi; args ``worker_id``,
    ``reason``); it was killed and is being replaced."""
    ErrPool: str
    """The pool cannot reach ``min`` ready workers (workers keep failing to start)."""
    Start: str
    PoolStarting: str
    """Fewer than ``min`` workers are ready: forking."""
    PoolReady: str
    """At least ``min`` workers are ready."""
    WorkersAvailable: str
    """At least one worker is idle and unassigned."""
    WorkerAddr: str
    """A worker reports its RPC address (multi; args ``url``; only workers may add it)."""
    WorkerReady: str
    """A worker was adopted: mirrored and ready (multi; args ``worker_id``)."""
    WorkerRequested: str
    """A client asks for a worker (multi; args ``req``, its request id; only clients add it).
    The answer is a ``WorkerAssigned`` payload to that client."""
    WorkerProvided: str
    """A worker was assigned to a client (multi; args ``worker_id``, ``client_id``)."""
    WorkerReleased: str
    """A client gives its worker back (multi; args ``worker_id``)."""


_s = SupervisorStates()

SUPERVISOR_SCHEMA: dict[str, State] = {
    _s.Exception: State(multi=True),
    _s.ErrWorker: State(multi=True, add=(EXCEPTION,), require=(EXCEPTION,)),
    _s.ErrPool: State(add=(EXCEPTION,), require=(EXCEPTION,)),
    _s.Start: State(add=(_s.PoolStarting,)),
    _s.PoolStarting: State(require=(_s.Start,), remove=(_s.PoolReady,)),
    _s.PoolReady: State(require=(_s.Start,), remove=(_s.PoolStarting, _s.ErrPool)),
    _s.WorkersAvailable: State(require=(_s.Start,)),
    _s.WorkerAddr: State(multi=True, require=(_s.Start,)),
    _s.WorkerReady: State(multi=True, require=(_s.Start,)),
    _s.WorkerRequested: State(multi=True, require=(_s.Start,)),
    _s.WorkerProvided: State(multi=True, require=(_s.Start,)),
    _s.WorkerReleased: State(multi=True, require=(_s.Start,)),
}

CLIENT_SUPERVISOR_STATES = frozenset({_s.WorkerRequested, _s.WorkerReleased})
"""What a client's mutations may change on the supervisor: ask for and give back a worker."""
WORKER_SUPERVISOR_STATES = frozenset({_s.WorkerAddr})
"""What a worker's mutations may change on the supervisor: report its address."""


class ClientStates(StatesBase):
    """A pool client: connected to a supervisor, holding at most one worker."""

    ErrSupervisor: str
    """No supervisor answered, or the connection to it was lost (adds ``Exception``)."""
    ErrWorker: str
    """The worker was lost (it died, or was taken back) (multi; adds ``Exception``)."""
    Start: str
    SuperReady: str
    """Connected to a supervisor and mirroring it."""
    WorkerRequested: str
    """Waiting for a worker."""
    WorkerReady: str
    """``client.worker`` is the assigned worker's mirror."""
    WorkerPayload: str
    """Data from the worker (multi; args ``name``, ``data``, ``source``: the worker's id)."""
    Ready: str
    """Auto: holding a worker."""


_c = ClientStates()

CLIENT_SCHEMA: dict[str, State] = {
    _c.Exception: State(multi=True),
    _c.ErrSupervisor: State(add=(EXCEPTION,), require=(EXCEPTION,)),
    _c.ErrWorker: State(multi=True, add=(EXCEPTION,), require=(EXCEPTION,)),
    _c.Start: State(),
    _c.SuperReady: State(require=(_c.Start,)),
    _c.WorkerRequested: State(require=(_c.Start,), remove=(_c.WorkerReady,)),
    _c.WorkerReady: State(require=(_c.Start,), remove=(_c.WorkerRequested,)),
    _c.WorkerPayload: State(multi=True, require=(_c.WorkerReady,)),
    _c.Ready: State(auto=True, require=(_c.WorkerReady,)),
}

PAYLOAD_ASSIGNED = "WorkerAssigned"
"""The supervisor's answer to ``WorkerRequested``: ``{"req", "url", "machine_id", "token"}``."""


def supervisor_machine_id(kind: str) -> str:
    """The id a supervisor of ``kind`` exposes its machine under (clients and pages know it)."""
    return f"ns-{kind}"
