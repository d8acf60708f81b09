"""The supervisor: keeps a pool of worker processes of one kind and lends them to clients.

It forks ``min + warm`` workers (at most ``max``) with ``asyncio.create_subprocess_exec``, each
told the supervisor's URL, its id and a secret in the environment. A worker reports its RPC
address (``WorkerAddr``, authenticated by the secret); the supervisor then mirrors it and checks
its health on an interval (a remote ``Healthcheck`` whose tick must grow). A worker that exits,
hangs, fails to report in time or errs too often is killed and replaced; when workers keep
failing to start the pool backs off and shows ``ErrPool``.

Hand-over: a client adds ``WorkerRequested`` (args ``req``) on the supervisor's machine; the
supervisor picks an idle worker, marks it taken, has it accept exactly that client (``ServeClient``
with the client id and a fresh token) and answers the client with a ``WorkerAssigned`` payload
(``req``, ``url``, ``machine_id``, ``token``). The worker comes back when the client adds
``WorkerReleased``, disconnects from the worker or from the supervisor, or never connects: the
worker's ``ServeClient`` ends (the token is revoked) and its mirror shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import logging
import os
import secrets
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._machine import Event, Machine
from .._result import Executed
from .._schema import EXCEPTION, Schema
from ..rpc import NO_ACCESS, ConnInfo, Policy, Principal
from ..rpc import Client as RpcClient
from ..rpc import ClientStates as RpcClientStates
from ..rpc._auth import Authenticate
from ._debug import debug_env
from ._discovery import Discovery, StaticDiscovery
from ._errors import PoolError, WorkerError
from ._launch import Launch
from ._pool import WorkerEntry, WorkerInfo, check_pool_size, pool_target
from ._states import (
    CLIENT_SUPERVISOR_STATES,
    PAYLOAD_ASSIGNED,
    SUPERVISOR_SCHEMA,
    WORKER_SUPERVISOR_STATES,
    SupervisorStates,
    WorkerStates,
    supervisor_machine_id,
)

if TYPE_CHECKING:
    from ..rpc import NetMachine, Server

log = logging.getLogger("asyncmachine.node")

ss = SupervisorStates()
ws = WorkerStates()
rcs = RpcClientStates()

WORKER = "node-worker"
"""The principal of a worker's connection to its supervisor."""
STOP_WAIT = 3.0
"""Seconds workers get to exit after SIGTERM before SIGKILL."""
BACKOFF_MAX = 10.0


class _Handlers:
    """The supervisor machine's handlers: registrations, requests and releases over RPC."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def WorkerAddrEnter(self, e: Event) -> bool:
        source = e.mutation.source if e.mutation else None
        entry = self.sup._entries.get(source.client_id or "") if source else None
        return entry is not None and entry.url is None and isinstance(e.args.get("url"), str)

    def WorkerAddrState(self, e: Event) -> None:
        source = e.mutation.source if e.mutation else None
        assert source is not None and source.client_id is not None
        entry = self.sup._entries[source.client_id]
        entry.url = e.args["url"]
        self.sup._spawn(self.sup._adopt(entry))

    def WorkerRequestedEnter(self, e: Event) -> bool:
        source = e.mutation.source if e.mutation else None
        req = e.args.get("req")
        return (
            source is not None
            and source.client_id is not None
            and source.client_id not in self.sup._entries
            and isinstance(req, str)
            and 0 < len(req) <= 128
        )

    def WorkerRequestedState(self, e: Event) -> None:
        source = e.mutation.source if e.mutation else None
        assert source is not None and source.client_id is not None
        pending = self.sup._pending
        pending.pop(source.client_id, None)
        pending[source.client_id] = e.args["req"]  # one request per client: the newest
        self.sup._serve()

    def WorkerReleasedEnter(self, e: Event) -> bool:
        source = e.mutation.source if e.mutation else None
        entry = self.sup._entries.get(str(e.args.get("worker_id")))
        return (
            source is not None
            and entry is not None
            and entry.client_id is not None
            and entry.client_id == source.client_id
        )

    def WorkerReleasedState(self, e: Event) -> None:
        entry = self.sup._entries[str(e.args["worker_id"])]
        assert entry.lease is not None
        self.sup._spawn(self.sup._release(entry, entry.lease))

    def PoolReadyState(self, e: Event) -> None:
        # PoolReady removed ErrPool: the pool's error is over
        if e.machine.not1(ss.ErrWorker):
            e.machine.remove1(EXCEPTION)

    def ErrWorkerState(self, e: Event) -> None:
        # handled (the worker is being replaced): the error clears itself unless the pool's stays
        if e.machine.is1(ss.ErrPool):
            e.machine.remove1(ss.ErrWorker)
        else:
            e.machine.remove([ss.ErrWorker, EXCEPTION])


class _ServerEvents:
    """Who connects to the supervisor: clients leaving give their workers back."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup

    def ClientConnectedState(self, e: Event) -> None:
        if e.args.get("principal") != WORKER:
            cid = e.args["client_id"]
            self.sup._clients.setdefault(cid, set()).add(e.args["session_id"])
            self.sup._client_principals[cid] = e.args["principal"]

    def ClientDisconnectedState(self, e: Event) -> None:
        if e.args.get("principal") == WORKER:
            return
        sup = self.sup
        cid = e.args["client_id"]
        sessions = sup._clients.get(cid, set())
        sessions.discard(e.args["session_id"])
        if sessions:
            return
        sup._clients.pop(cid, None)
        sup._client_principals.pop(cid, None)
        sup._pending.pop(cid, None)
        for entry in list(sup._entries.values()):
            if entry.client_id == cid and entry.lease is not None:
                sup._spawn(sup._release(entry, entry.lease))


class Supervisor:
    """A pool of worker processes of one ``kind`` (see the module's docstring for the flows).

    ``worker_cmd`` is the argv of a worker process (e.g. ``[sys.executable, "worker.py"]``).
    ``authenticate`` vets clients like ``rpc.Server``'s hook (default: anyone); whatever it
    grants, a client's mutations on the supervisor may only request and release workers.
    Timings (seconds): ``heartbeat`` between health checks, ``health_timeout`` for a worker to
    answer one, ``conn_timeout`` for a worker to report after its fork and for a client to
    connect to the worker it was given; a worker with more than ``max_errors`` errors within
    ``error_window`` is replaced; after ``max_start_failures`` workers in a row fail to start,
    forking backs off from ``pool_pause`` (doubling) and ``ErrPool`` shows while under ``min``.
    """

    def __init__(
        self,
        kind: str,
        worker_cmd: Sequence[str],
        worker_schema: Schema,
        *,
        min: int = 2,
        max: int = 10,
        warm: int = 5,
        authenticate: Authenticate | None = None,
        discovery: Discovery | None = None,
        nats: str | None = None,
        heartbeat: float = 1.0,
        health_timeout: float = 5.0,
        conn_timeout: float = 10.0,
        max_errors: int = 3,
        error_window: float = 60.0,
        max_start_failures: int = 3,
        pool_pause: float = 0.5,
        worker_env: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string")
        if isinstance(worker_cmd, str) or not worker_cmd:
            raise TypeError("worker_cmd is the argv of a worker process: a non-empty list")
        if not all(isinstance(arg, str) for arg in worker_cmd):
            raise TypeError("worker_cmd must hold strings only")
        check_pool_size(min, max, warm)
        missing = sorted(set(ws.names()) - set(worker_schema))
        if missing:
            raise ValueError(
                "worker_schema must merge node.WORKER_SCHEMA; missing: " + ", ".join(missing)
            )
        self.kind = kind
        self.worker_cmd = list(worker_cmd)
        self.worker_schema = dict(worker_schema)
        self.min, self.max, self.warm = min, max, warm
        self.heartbeat = heartbeat
        self.health_timeout = health_timeout
        self.conn_timeout = conn_timeout
        self.max_errors = max_errors
        self.error_window = error_window
        self.max_start_failures = max_start_failures
        self.pool_pause = pool_pause
        self.worker_env = dict(worker_env or {})
        if nats is not None and discovery is None:
            from ..rpc.nats import NatsDiscovery  # nats-py only when asked for

            discovery = NatsDiscovery(nats)
        self.discovery: Discovery = discovery if discovery is not None else StaticDiscovery()
        self._authenticate_client = authenticate
        self.mach = Machine(SUPERVISOR_SCHEMA, id=supervisor_machine_id(kind))
        self.mach.verify_states(ss.names())
        self.mach.bind_handlers(_Handlers(self))
        debug_env(self.mach)
        self.server: Server | None = None
        self._entries: dict[str, WorkerEntry] = {}
        self._pending: OrderedDict[str, str] = OrderedDict()
        """Clients waiting for a worker: client id -> request id, oldest first."""
        self._clients: dict[str, set[str]] = {}
        """Connected clients: client id -> session ids."""
        self._client_principals: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dirty: asyncio.Event | None = None
        self._start_failures = 0
        self._forked = 0

    # ------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the supervisor is not started")
        return self.server.url

    def workers(self) -> list[WorkerInfo]:
        """Every worker process the supervisor keeps, in fork order."""
        return [entry.info() for entry in self._entries.values() if entry.killing is None]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve the supervisor machine on ``host:port`` and start forking the pool."""
        if self.server is not None:
            raise RuntimeError("supervisor already started")
        from ..rpc import Server

        server = Server([self.mach], authenticate=self._authenticate)
        server.mach.bind_handlers(_ServerEvents(self))
        await server.start(host, port)
        self.server = server
        self._dirty = asyncio.Event()
        self.mach.add1(ss.Start)
        self._spawn(self._normalize_loop())
        self._spawn(self._health_loop())
        self._poke()
        await self.discovery.announce(self.kind, self.mach.id, self.url)

    async def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after a few seconds) and stop serving."""
        server = self.server
        if server is None:
            return
        self.server = None
        self.mach.remove1(ss.Start)
        with contextlib.suppress(Exception):
            await self.discovery.withdraw(self.kind, self.mach.id)
        closer = getattr(self.discovery, "close", None)  # a NATS connection, say
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        entries = list(self._entries.values())
        for entry in entries:
            entry.killing = entry.killing or "supervisor stopped"
            with contextlib.suppress(ProcessLookupError):
                entry.proc.terminate()
        for entry in entries:
            try:
                await asyncio.wait_for(entry.proc.wait(), STOP_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    entry.proc.kill()
                await entry.proc.wait()
            if entry.rpc is not None:
                await entry.rpc.close()
        self._entries.clear()
        await server.stop()

    async def __aenter__(self) -> Supervisor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ who may do what

    async def _authenticate(self, token: str | None, conn: ConnInfo) -> Principal | None:
        mid = self.mach.id
        entry = self._entries.get(conn.client_id)
        if entry is not None:  # a worker's id: only its secret gets in
            if token is not None and hmac.compare_digest(token, entry.secret):
                return Principal(
                    WORKER, {mid: Policy(states=WORKER_SUPERVISOR_STATES)}, default=NO_ACCESS
                )
            return None
        if self._authenticate_client is None:
            base: Principal | None = Principal("anonymous")
        else:
            answer = self._authenticate_client(token, conn)
            base = await answer if inspect.isawaitable(answer) else answer
        if not isinstance(base, Principal) or base.name == WORKER:
            return None
        owner = self._client_principals.get(conn.client_id)
        if owner is not None and owner != base.name:
            log.warning("client id %s is in use by another principal: refused", conn.client_id)
            return None
        policy = base.policy(mid)
        client_policy = Policy(
            read=policy.read,
            write=policy.write,
            states=CLIENT_SUPERVISOR_STATES,
            read_states=policy.read_states,
        )
        return Principal(base.name, {**base.policies, mid: client_policy}, default=base.default)

    # ------------------------------------------------------------ the pool

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _poke(self) -> None:
        """Something changed: re-evaluate the pool."""
        self._update_pool()
        if self._dirty is not None:
            self._dirty.set()

    def _update_pool(self) -> None:
        mach = self.mach
        if not mach.is1(ss.Start):
            return
        ready = sum(entry.ready for entry in self._entries.values())
        if ready >= self.min:
            if mach.not1(ss.PoolReady):
                mach.add1(ss.PoolReady)
        elif mach.is1(ss.PoolReady):
            mach.remove1(ss.PoolReady)
            mach.add1(ss.PoolStarting)
        available = any(entry.idle for entry in self._entries.values())
        if available != mach.is1(ss.WorkersAvailable):
            (mach.add1 if available else mach.remove1)(ss.WorkersAvailable)

    async def _normalize_loop(self) -> None:
        assert self._dirty is not None
        target = pool_target(self.min, self.max, self.warm)
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            alive = sum(entry.killing is None for entry in self._entries.values())
            if alive >= target:
                continue
            failures = self._start_failures - self.max_start_failures
            if failures >= 0:
                ready = sum(entry.ready for entry in self._entries.values())
                if ready < self.min and self.mach.not1(ss.ErrPool):
                    err = PoolError(f"{self._start_failures} workers in a row failed to start")
                    self.mach.add_err_state(ss.ErrPool, err)
                await asyncio.sleep(min(BACKOFF_MAX, self.pool_pause * 2**failures))
            for _ in range(target - alive):
                await self._fork()
            self._update_pool()

    async def _fork(self) -> None:
        self._forked += 1
        wid = f"nw-{self.kind}-{self._forked}-{secrets.token_hex(3)}"
        launch = Launch(self.url, wid, secrets.token_urlsafe(24))
        env = {**os.environ, **self.worker_env, **launch.env()}
        loop = asyncio.get_running_loop()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.worker_cmd, env=env, stdin=asyncio.subprocess.DEVNULL
            )
        except OSError as err:
            self._start_failures += 1
            self._error(wid, f"cannot start {self.worker_cmd[0]}: {err}")
            self._dirty_later()
            return
        entry = WorkerEntry(wid, launch.secret, proc, loop.time())
        self._entries[wid] = entry
        self._spawn(self._watch(entry))
        self._spawn(self._expect_report(entry))

    def _dirty_later(self) -> None:
        if self._dirty is not None:
            self._dirty.set()

    async def _watch(self, entry: WorkerEntry) -> None:
        """Reap the process; a death nobody asked for is an error, and the pool refills."""
        code = await entry.proc.wait()
        self._entries.pop(entry.id, None)
        if entry.killing is None:
            entry.killing = f"exited with status {code}"
            if entry.net is None:
                self._start_failures += 1
            self._error(entry.id, entry.killing)
        if entry.rpc is not None:
            await entry.rpc.close()
        self._poke()

    async def _expect_report(self, entry: WorkerEntry) -> None:
        await asyncio.sleep(self.conn_timeout)
        if entry.net is None and entry.killing is None:
            self._start_failures += 1
            self._fail(entry, f"did not report within {self.conn_timeout:g} s")

    async def _adopt(self, entry: WorkerEntry) -> None:
        """Mirror a worker that reported its address; it counts once its mirror is Ready."""
        assert entry.url is not None
        client = RpcClient(
            entry.url,
            token=entry.secret,
            client_id=self.mach.id,
            request_timeout=self.health_timeout,
            max_retries=0,
        )
        entry.rpc = client
        try:
            await client.connect(self.conn_timeout)
            net = await client.machine(entry.id)
            await asyncio.wait_for(_wait(net.when1(ws.Ready)), self.conn_timeout)
        except Exception as err:
            self._start_failures += 1
            self._fail(entry, f"cannot adopt it: {err!r}")
            return
        if entry.killing is not None:
            return
        entry.net = net
        net.on_update(lambda on, off: self._worker_changed(entry, net, on, off))
        self._start_failures = 0
        self.mach.add1(ss.WorkerReady, {"worker_id": entry.id})
        self._poke()
        self._serve()
        await client.mach.when1(rcs.Disconnected)
        self._fail(entry, "its connection was lost")

    def _worker_changed(
        self, entry: WorkerEntry, net: NetMachine, activated: list[str], deactivated: list[str]
    ) -> None:
        if entry.killing is not None:
            return
        if ws.ServeClient in deactivated and entry.client_id is not None:
            log.info("worker %s released by %s", entry.id, entry.client_id)
            entry.client_id = entry.lease = None
        if EXCEPTION in activated:
            now = asyncio.get_running_loop().time()
            if entry.error(now, self.error_window) > self.max_errors:
                self._fail(entry, f"more than {self.max_errors} errors")
                return
        self._update_pool()
        self._serve()

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            checks = [
                self._check(entry)
                for entry in list(self._entries.values())
                if entry.net is not None and entry.killing is None
            ]
            await asyncio.gather(*checks)

    async def _check(self, entry: WorkerEntry) -> None:
        net = entry.net
        assert net is not None
        before = net.tick(ws.Healthcheck)
        try:
            await asyncio.wait_for(net.add1(ws.Healthcheck), self.health_timeout)
        except Exception as err:
            self._fail(entry, f"no heartbeat ({err!r})")
            return
        if net.tick(ws.Healthcheck) <= before:
            self._fail(entry, "its Healthcheck tick did not grow")

    def _error(self, worker_id: str, reason: str) -> None:
        log.warning("worker %s: %s", worker_id, reason)
        err = WorkerError(f"{worker_id}: {reason}")
        self.mach.add_err_state(ss.ErrWorker, err, {"worker_id": worker_id, "reason": reason})

    def _fail(self, entry: WorkerEntry, reason: str) -> None:
        """Kill a worker that cannot be trusted any more; the watcher reaps and replaces it."""
        if entry.killing is not None:
            return
        entry.killing = reason
        self._error(entry.id, reason)
        with contextlib.suppress(ProcessLookupError):
            entry.proc.kill()
        self._poke()

    # ------------------------------------------------------------ lending workers

    def _serve(self) -> None:
        """Give idle workers to the clients waiting, oldest request first."""
        pending = self._pending
        while pending:
            entry = next((e for e in self._entries.values() if e.idle), None)
            if entry is None:
                return
            cid, req = pending.popitem(last=False)
            entry.client_id = cid  # taken: nobody else gets it meanwhile
            entry.lease = lease = secrets.token_hex(6)
            self._spawn(self._assign(entry, cid, req, lease))
        self._update_pool()

    async def _assign(self, entry: WorkerEntry, cid: str, req: str, lease: str) -> None:
        net = entry.net
        assert net is not None and self.server is not None
        token = secrets.token_urlsafe(24)
        args = {
            "client_id": cid,
            "token": token,
            "lease": lease,
            "connect_timeout": self.conn_timeout,
        }
        try:
            result = await asyncio.wait_for(net.add1(ws.ServeClient, args), self.health_timeout)
        except Exception as err:
            self._requeue(cid, req)
            self._fail(entry, f"cannot assign it ({err!r})")
            return
        if result != Executed:
            entry.client_id = entry.lease = None
            self._requeue(cid, req)
            self._poke()
            return
        data = {"req": req, "url": entry.url, "machine_id": entry.id, "token": token}
        if cid not in self._clients or not self.server.send_payload(
            PAYLOAD_ASSIGNED, data, machine=self.mach.id, client=cid
        ):
            await self._release(entry, lease)  # the client left meanwhile
            return
        self.mach.add1(ss.WorkerProvided, {"worker_id": entry.id, "client_id": cid})

    def _requeue(self, cid: str, req: str) -> None:
        if cid in self._clients and cid not in self._pending:
            self._pending[cid] = req
            self._pending.move_to_end(cid, last=False)

    async def _release(self, entry: WorkerEntry, lease: str) -> None:
        """End the assignment ``lease``: the worker's ``ServeClient`` ends (the token is
        revoked); the worker refuses when it serves another assignment by then."""
        net = entry.net
        if net is None or entry.killing is not None or entry.lease != lease:
            return
        try:
            await asyncio.wait_for(
                net.remove1(ws.ServeClient, {"lease": lease}), self.health_timeout
            )
        except Exception as err:
            self._fail(entry, f"cannot release it ({err!r})")
            return
        if net.not1(ws.ServeClient) and entry.lease == lease:
            entry.client_id = entry.lease = None
            self._poke()
            self._serve()


async def _wait(waiter: Any) -> None:
    await waiter
