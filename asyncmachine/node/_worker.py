"""The body of a worker process: its machine over RPC, one client at a time.

The worker starts its own RPC server on 127.0.0.1:0, reports the address to the supervisor that
started it (authenticated with its secret) and stays connected: when that connection ends (the
supervisor stopped or died) the worker exits, so an orphaned worker never lingers. The supervisor
assigns a client by adding ``ServeClient`` with the client's id and a one-time token; from then
only that client id with that token gets in, and its mutations may only touch the work group.
``ServeClient`` ends (the release) when the client lets go, disconnects, never shows up, or the
supervisor takes the worker back: the token is revoked and the client's connection closed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .._machine import Event, Machine
from .._result import Executed
from .._schema import EXCEPTION, Schema, schema_merge
from ..rpc import Client as RpcClient
from ..rpc import ClientStates as RpcClientStates
from ..rpc import ConnInfo, Policy, Principal, RpcError
from ._debug import debug_env
from ._launch import Launch
from ._states import CLIENT_WORKER_STATES, WORKER_SCHEMA, WorkerStates, supervisor_machine_id

log = logging.getLogger("asyncmachine.node")

ws = WorkerStates()
rcs = RpcClientStates()

CONNECT_TIMEOUT = 5.0
"""Seconds to reach the supervisor at start."""
CLIENT_CONNECT_TIMEOUT = 5.0
"""Seconds an assigned client has to connect before the worker goes back to the pool."""
SUPERVISOR = "supervisor"
"""The principal of the supervisor's connection."""
CLIENT = "client"
"""The principal of the assigned client's connection."""


class _Assignment:
    """The client the supervisor assigned: its id, its token, its live connections."""

    def __init__(self, client_id: str, token: str, lease: str) -> None:
        self.client_id = client_id
        self.token = token
        self.lease = lease
        self.sessions: set[str] = set()


class _WorkerHandlers:
    """The mixin's own handlers: assignment, release, payloads to the client."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def ServeClientEnter(self, e: Event) -> bool:
        fields = [e.args.get(key) for key in ("client_id", "token", "lease")]
        return all(isinstance(value, str) and value for value in fields)

    def ServeClientState(self, e: Event) -> None:
        worker = self.worker
        worker.assigned = _Assignment(e.args["client_id"], e.args["token"], e.args["lease"])
        wait = e.args.get("connect_timeout", CLIENT_CONNECT_TIMEOUT)
        ctx = e.machine.new_state_ctx(ws.ServeClient)
        e.machine.fork(ctx, worker.expect_client(float(wait)))

    def ServeClientExit(self, e: Event) -> bool:
        # a release names the assignment it ends: a late one spares the next assignment
        lease = e.args.get("lease")
        assigned = self.worker.assigned
        return lease is None or assigned is None or lease == assigned.lease

    def ServeClientEnd(self, e: Event) -> None:
        self.worker.revoke()
        # a clean slate for the next client
        e.machine.remove([ws.ErrWork, EXCEPTION])

    def ClientSendPayloadEnter(self, e: Event) -> bool:
        return isinstance(e.args.get("name"), str)

    def ClientSendPayloadState(self, e: Event) -> None:
        self.worker.send_to_client(e.args["name"], e.args.get("data"))


class _ServerEvents:
    """The worker's RPC server telling who came and went."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def ClientConnectedState(self, e: Event) -> None:
        assigned = self.worker.assigned
        if (
            e.args.get("principal") == CLIENT
            and assigned is not None
            and e.args.get("client_id") == assigned.client_id
        ):
            assigned.sessions.add(e.args["session_id"])
            self.worker.mach.add1(ws.ClientConnected)

    def ClientDisconnectedState(self, e: Event) -> None:
        assigned = self.worker.assigned
        if e.args.get("principal") == CLIENT and assigned is not None:
            assigned.sessions.discard(e.args.get("session_id", ""))
            if e.args.get("client_id") == assigned.client_id and not assigned.sessions:
                # the client left: the worker goes back to the pool
                self.worker.mach.remove1(ws.ServeClient)


class Worker:
    """One worker process: a machine with the Worker mixin, served over RPC."""

    def __init__(self, schema: Schema, handlers: Any, *, kind: str, launch: Launch) -> None:
        self.kind = kind
        self.launch = launch
        self.mach = Machine(schema_merge(WORKER_SCHEMA, schema), id=launch.worker_id)
        self.assigned: _Assignment | None = None
        self.mach.bind_handlers(_WorkerHandlers(self))
        if handlers is not None:
            self.mach.bind_handlers(handlers)
        from ..rpc import Server

        self.server = Server([self.mach], authenticate=self._authenticate)
        self.server.mach.bind_handlers(_ServerEvents(self))
        debug_env(self.mach)

    def _authenticate(self, token: str | None, conn: ConnInfo) -> Principal | None:
        if token is None:
            return None
        if hmac.compare_digest(token, self.launch.secret):
            return Principal(SUPERVISOR)
        assigned = self.assigned
        if (
            assigned is not None
            and conn.client_id == assigned.client_id
            and hmac.compare_digest(token, assigned.token)
        ):
            policy = Policy(states=CLIENT_WORKER_STATES)
            return Principal(
                CLIENT, {self.mach.id: policy}, default=Policy(read=False, write=False)
            )
        return None

    async def expect_client(self, wait: float) -> None:
        """Give the assignment back when the client does not connect in time."""
        await asyncio.sleep(wait)
        if self.mach.not1(ws.ClientConnected):
            log.info("worker %s: the client never connected", self.mach.id)
            self.mach.remove1(ws.ServeClient)

    def revoke(self) -> None:
        assigned, self.assigned = self.assigned, None
        if assigned is not None:
            self.server.disconnect(client=assigned.client_id, reason="worker released")

    def send_to_client(self, name: str, data: Any) -> None:
        assigned = self.assigned
        if assigned is not None:
            self.server.send_payload(name, data, machine=self.mach.id, client=assigned.client_id)

    async def run(self) -> int:
        """Serve until the supervisor goes away or SIGTERM; returns the exit status."""
        mach = self.mach
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        mach.add1(ws.Start)
        await self.server.start("127.0.0.1", 0)
        mach.add1(ws.RpcReady)
        launch = self.launch
        sup = RpcClient(
            launch.supervisor_url,
            token=launch.secret,
            client_id=launch.worker_id,
            request_timeout=CONNECT_TIMEOUT,
            max_retries=0,
        )
        try:
            try:
                await sup.connect(CONNECT_TIMEOUT)
                net = await sup.machine(supervisor_machine_id(self.kind))
                if await net.add1("WorkerAddr", {"url": self.server.url}) != Executed:
                    raise RpcError("canceled", "the supervisor does not know this worker")
            except (RpcError, OSError, TimeoutError) as err:
                log.error("worker %s: cannot report to %s: %s", mach.id, launch.supervisor_url, err)
                mach.add_err_state(ws.ErrSupervisor, err)
                return 1
            mach.add1(ws.SuperConnected)
            lost = asyncio.ensure_future(_wait(sup.mach.when1(rcs.Disconnected)))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([lost, stopped], return_when=asyncio.FIRST_COMPLETED)
            for task in (lost, stopped):
                task.cancel()
            if not stop.is_set():
                log.info("worker %s: the supervisor is gone; exiting", mach.id)
                mach.add_err_state(ws.ErrSupervisor, ConnectionError("supervisor lost"))
                return 1
            return 0
        finally:
            mach.remove1(ws.Start)
            await sup.close()
            await self.server.stop()
            mach.dispose()


async def _wait(waiter: Any) -> None:
    await waiter


def run_worker(
    schema: Schema, handlers: Any, *, kind: str, argv: Sequence[str] | None = None
) -> int:
    """The blocking main function of a worker process (it runs its own event loop).

    ``schema`` is merged over ``WORKER_SCHEMA``; ``handlers`` is bound to the machine (work
    arrives through its ``WorkRequestedState``; results go to the client with
    ``e.machine.add1("ClientSendPayload", {"name": ..., "data": ...})``). The supervisor's
    address, the worker id and its secret come from ``argv`` (``--supervisor``, ``--id``,
    ``--secret``; default ``sys.argv``) or the environment the supervisor sets. Returns the exit
    status: 0 after SIGTERM, 1 when the supervisor is unreachable or gone.
    """
    launch = Launch.parse(sys.argv[1:] if argv is None else argv)
    return asyncio.run(Worker(schema, handlers, kind=kind, launch=launch).run())
