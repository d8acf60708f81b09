"""The pool client: asks a supervisor for a worker, then drives the worker directly.

``start(urls)`` connects to the first supervisor of its kind that answers (each tried a few
times) and stays connected, reconnecting in the background. ``req_worker()`` adds
``WorkerRequested`` on the supervisor, waits for the ``WorkerAssigned`` payload meant for this
request, connects to the worker with the one-time token and returns its ``NetMachine``; it
retries on timeouts and lost workers until its time is up. Payloads from the worker arrive as
``WorkerPayload``; losing the worker shows as ``ErrWorker`` and a new ``req_worker()`` gets a
fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

from .._machine import Machine
from .._schema import Schema
from ..rpc import AuthError, NetMachine
from ..rpc import Client as RpcClient
from ..rpc import ClientStates as RpcClientStates
from ._discovery import Discovery, StaticDiscovery
from ._errors import SupervisorError, WorkerError
from ._states import (
    CLIENT_SCHEMA,
    PAYLOAD_ASSIGNED,
    ClientStates,
    SupervisorStates,
    supervisor_machine_id,
)

log = logging.getLogger("asyncmachine.node")

cs = ClientStates()
ss = SupervisorStates()
rcs = RpcClientStates()

CONNECT_TRIES = 3
"""Connection attempts per supervisor URL in ``start``."""


class Client:
    """A pool client of supervisors of ``kind``, holding at most one worker at a time.

    ``token`` authenticates it with the supervisor (its ``authenticate`` hook); ``conn_timeout``
    bounds each connection attempt. ``client.mach`` has :class:`ClientStates`;
    ``client.worker`` is the assigned worker's mirror while ``WorkerReady``.
    """

    def __init__(
        self,
        id: str,
        kind: str,
        worker_schema: Schema,
        *,
        token: str | None = None,
        conn_timeout: float = 5.0,
    ) -> None:
        if not isinstance(id, str) or not 0 < len(id) <= 128:
            raise ValueError("a client id is 1-128 characters")
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string")
        self.id = id
        self.kind = kind
        self.worker_schema = dict(worker_schema)
        self.token = token
        self.conn_timeout = conn_timeout
        self.mach = Machine(CLIENT_SCHEMA, id=f"nc-{id}")
        self.mach.verify_states(cs.names())
        self.worker: NetMachine | None = None
        self.supervisor: NetMachine | None = None
        """The supervisor's machine, mirrored (``PoolReady``, ``WorkersAvailable``...)."""
        self.supervisor_url: str | None = None
        self._super: RpcClient | None = None
        self._worker_rpc: RpcClient | None = None
        self._assigned: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ the supervisor

    async def start(
        self,
        urls: Iterable[str] | None = None,
        *,
        discovery: Discovery | None = None,
        nats: str | None = None,
    ) -> None:
        """Connect to the first supervisor of ``urls`` (or of ``discovery``, or found through
        the NATS server at ``nats``) that answers; raises ``SupervisorError`` when none does
        (``ErrSupervisor`` shows it too)."""
        if self._super is not None:
            raise RuntimeError("client already started")
        if nats is not None and discovery is None:
            from ..rpc.nats import NatsDiscovery  # nats-py only when asked for

            found = NatsDiscovery(nats)
            try:
                urls = await found.supervisors(self.kind)
            finally:
                await found.close()
        if discovery is None:
            if urls is None or isinstance(urls, str):
                raise TypeError("start() takes a list of supervisor URLs (or a discovery)")
            discovery = StaticDiscovery(urls)
        self.mach.add1(cs.Start)
        candidates = await discovery.supervisors(self.kind)
        machine_id = supervisor_machine_id(self.kind)
        reasons: list[str] = []
        for url in candidates:
            for _ in range(CONNECT_TRIES):
                rpc = RpcClient(
                    url,
                    token=self.token,
                    client_id=self.id,
                    request_timeout=self.conn_timeout,
                    backoff=0.2,
                    backoff_max=2.0,
                )
                try:
                    await rpc.connect(self.conn_timeout)
                    net = await rpc.machine(machine_id)
                except Exception as err:
                    await rpc.close()
                    reasons.append(f"{url}: {err}")
                    if isinstance(err, AuthError):
                        break  # a refused token stays refused
                    continue
                self._use_supervisor(url, rpc, net)
                return
        failed = SupervisorError("no supervisor answered: " + "; ".join(reasons or ["no URLs"]))
        self.mach.add_err_state(cs.ErrSupervisor, failed)
        self.mach.remove1(cs.Start)
        raise failed

    def _use_supervisor(self, url: str, rpc: RpcClient, net: NetMachine) -> None:
        self._super, self.supervisor, self.supervisor_url = rpc, net, url
        rpc.on_payload(self._super_payload)
        self.mach.remove([cs.ErrSupervisor])
        self.mach.add1(cs.SuperReady)
        self._spawn(self._follow_supervisor(rpc))

    async def _follow_supervisor(self, rpc: RpcClient) -> None:
        """``SuperReady`` follows the connection (which reconnects on its own)."""
        while rpc.mach.is1(rcs.Start):
            await rpc.mach.when1(rcs.Disconnected)
            self.mach.remove1(cs.SuperReady)
            self.mach.add_err_state(cs.ErrSupervisor, SupervisorError("supervisor connection lost"))
            for future in self._assigned.values():
                if not future.done():
                    future.set_exception(SupervisorError("supervisor connection lost"))
            await rpc.mach.when1(rcs.Ready)
            self.mach.remove([cs.ErrSupervisor])
            self.mach.add1(cs.SuperReady)

    def _super_payload(self, name: str, data: Any, machine_id: str | None) -> None:
        if name != PAYLOAD_ASSIGNED or not isinstance(data, dict):
            return
        future = self._assigned.get(str(data.get("req")))
        if future is not None and not future.done():
            future.set_result(data)
        elif isinstance(data.get("machine_id"), str):
            # an answer nobody waits for any more: give the worker straight back
            self._spawn(self._give_back(data["machine_id"]))

    async def _give_back(self, worker_id: str) -> None:
        if self.supervisor is not None:
            with contextlib.suppress(Exception):
                await self.supervisor.add1(ss.WorkerReleased, {"worker_id": worker_id})

    # ------------------------------------------------------------ the worker

    async def req_worker(self, timeout: float = 5.0) -> NetMachine:
        """Get a worker (or the one already held): ends with ``WorkerReady`` and
        ``client.worker``. Retries until ``timeout`` runs out, then raises ``TimeoutError``
        (``WorkerRequested`` ends)."""
        if self.supervisor is None:
            raise RuntimeError("start() the client first")
        if self.worker is not None and self.mach.is1(cs.WorkerReady):
            return self.worker
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.mach.add1(cs.WorkerRequested)
        last: BaseException | None = None
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    return await asyncio.wait_for(self._request_once(), left)
                except TimeoutError:
                    break
                except Exception as err:  # the worker or the supervisor failed: try again
                    last = err
                    log.info("client %s: request failed: %r", self.id, err)
                    await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
            raise TimeoutError(f"no worker within {timeout:g} s" + (f" ({last})" if last else ""))
        finally:
            self.mach.remove1(cs.WorkerRequested)

    async def _request_once(self) -> NetMachine:
        sup = self.supervisor
        assert sup is not None
        await self.mach.when1(cs.SuperReady)
        req = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._assigned[req] = future
        try:
            await sup.add1(ss.WorkerRequested, {"req": req})
            assigned = await future
        finally:
            self._assigned.pop(req, None)
        return await self._connect_worker(assigned)

    async def _connect_worker(self, assigned: dict[str, Any]) -> NetMachine:
        url, worker_id, token = (
            assigned.get("url"),
            assigned.get("machine_id"),
            assigned.get("token"),
        )
        if not (isinstance(url, str) and isinstance(worker_id, str) and isinstance(token, str)):
            raise WorkerError(f"a malformed assignment: {assigned!r}")
        rpc = RpcClient(
            url,
            token=token,
            client_id=self.id,
            request_timeout=self.conn_timeout,
            max_retries=0,
        )
        try:
            await rpc.connect(self.conn_timeout)
            net = await rpc.machine(worker_id)
        except BaseException:
            await rpc.close()
            await self._give_back(worker_id)
            raise
        rpc.on_payload(lambda name, data, _m: self._worker_payload(net, name, data))
        self._worker_rpc, self.worker = rpc, net
        self.mach.remove1(cs.ErrWorker)
        self.mach.add1(cs.WorkerReady)
        self._spawn(self._follow_worker(rpc, net))
        return net

    def _worker_payload(self, net: NetMachine, name: str, data: Any) -> None:
        if self.worker is net:
            self.mach.add1(cs.WorkerPayload, {"name": name, "data": data, "source": net.id})

    async def _follow_worker(self, rpc: RpcClient, net: NetMachine) -> None:
        await rpc.mach.when1(rcs.Disconnected)
        if self.worker is net:  # not a release: the worker died or was taken back
            self._drop_worker()
            self.mach.add_err_state(cs.ErrWorker, WorkerError(f"worker {net.id} was lost"))
            await rpc.close()

    def _drop_worker(self) -> None:
        self.worker = None
        self._worker_rpc = None
        self.mach.remove1(cs.WorkerReady)

    async def release_worker(self) -> None:
        """Give the worker back to the pool (its token is revoked)."""
        net, rpc = self.worker, self._worker_rpc
        if net is None or rpc is None:
            return
        self._drop_worker()
        await rpc.close()  # the worker goes back to the pool as soon as it sees this
        await self._give_back(net.id)

    async def stop(self) -> None:
        """Release the worker, disconnect from the supervisor."""
        await self.release_worker()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._super is not None:
            await self._super.close()
        self.mach.remove([cs.Start, cs.SuperReady])

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
