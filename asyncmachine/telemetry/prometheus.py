"""Prometheus metrics per machine, on ``prometheus-client``, labelled ``machine_id``.

``MachMetrics(mach)`` binds a tracer that keeps plain counters per machine; one collector per
registry turns them into metric families when the registry is scraped or pushed, so a transition
costs a few integer additions and no lock. Metrics (all with the label ``machine_id``):

- ``am_transitions_total``: accepted transitions (auto ones included, checks excluded);
- ``am_transitions_canceled_total``: canceled ones (by a handler, a relation or a rollback;
  auto transitions whose states could not activate are not counted);
- ``am_exceptions_total``: transitions that called ``Exception`` (errors reported);
- ``am_states_added_total`` / ``am_states_removed_total``: activations and deactivations;
- ``am_handlers_total``: handler calls;
- ``am_transition_seconds``: a histogram of the wall time of the transitions above (buckets
  from 10 µs to 1 s);
- ``am_states_active`` / ``am_states_inactive``: how many states are (in)active (read when
  collected); ``am_queue_size``: the queue length when the last transition started;
- ``am_states``, ``am_relations``, ``am_ref_states``: the schema's states, non-empty relation
  lists, and state references inside relations.

Upstream names each metric after its machine and reports averages over a sync window; here the
machine is a label and the counters are cumulative, so averages are PromQL ratios, e.g.
``rate(am_states_added_total[5m]) / rate(am_transitions_total[5m])``.

``mach_metrics_env(mach)`` switches it on from the environment: ``AM_PROM_ADDR=HOST:PORT`` serves
``/metrics`` there, ``AM_PROM_PUSH_URL`` pushes to a Pushgateway every ``AM_PROM_PUSH_INTERVAL``
seconds (15) under the job ``AM_SERVICE``. Both run on the asyncio loop (no threads).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry, push_to_gateway
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from .._schema import EXCEPTION
from .._tracer import Tracer
from ._wait import wait_event

if TYPE_CHECKING:
    from .._machine import Machine
    from .._transition import Transition

__all__ = [
    "BUCKETS",
    "MachMetrics",
    "MetricsServer",
    "Pusher",
    "exposition",
    "mach_metrics_env",
    "serve_metrics",
    "stop_env",
]

BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1, 1.0)
"""Upper bounds of ``am_transition_seconds`` (``+Inf`` follows): transitions take microseconds."""

PUSH_INTERVAL = 15.0
"""Seconds between Pushgateway pushes (upstream's default)."""

_log = logging.getLogger("asyncmachine.telemetry")


class MachMetrics(Tracer):
    """The metrics of one machine in ``registry`` (default: ``prometheus_client.REGISTRY``).

    Constructing it binds it to ``mach``; submachines created later get their own. The series of
    a machine are dropped after the first collection that follows its disposal (so a scrape or a
    push still sees its final values), or at once by :meth:`close`.
    """

    def __init__(self, mach: Machine, registry: CollectorRegistry | None = None) -> None:
        self.registry = REGISTRY if registry is None else registry
        self.machine_id = mach.id
        self.transitions = 0
        self.canceled = 0
        self.exceptions = 0
        self.states_added = 0
        self.states_removed = 0
        self.handlers = 0
        self.states_active = len(mach.active_states())
        self.queue_size = mach.queue_len()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.seconds_sum = 0.0
        self.disposed = False
        self.server: MetricsServer | None = None
        """Where ``mach_metrics_env`` serves these metrics, if it does."""
        self.pusher: Pusher | None = None
        """What pushes these metrics for ``mach_metrics_env``, if anything does."""
        self._started = 0.0
        self._count_schema(mach)
        self._mach = weakref.ref(mach)
        self._collector = _collector(self.registry)
        self._collector.add(self)
        # a machine dropped without dispose() takes its series with it
        weakref.finalize(mach, self._collector.remove, self)
        mach.bind_tracer(self)

    def _count_schema(self, mach: Machine) -> None:
        schema = mach.schema
        self.states = len(schema)
        lists = [
            rel
            for st in schema.values()
            for rel in (st.require, st.add, st.remove, st.after)
            if rel
        ]
        self.relations = len(lists)
        self.ref_states = sum(len(rel) for rel in lists)

    def close(self) -> None:
        """Unbind from the machine and drop its series now."""
        mach = self._mach()
        if mach is not None and self in mach.tracers():
            mach.detach_tracer(self)
        self._collector.remove(self)

    # ------------------------------------------------------------------ hooks

    def transition_start(self, tx: Transition) -> None:
        self._started = perf_counter()
        self.queue_size = tx.machine.queue_len()

    def handler_end(self, tx: Transition, binding_id: str, handler_name: str) -> None:
        self.handlers += 1

    def transition_end(self, tx: Transition) -> None:
        mut = tx.mutation
        if mut.is_check:
            return
        elapsed = perf_counter() - self._started
        if EXCEPTION in mut.called:
            self.exceptions += 1
        if tx.is_accepted:
            self.transitions += 1
            self.states_added += len(tx.enters)
            self.states_removed += len(tx.exits)
        elif mut.is_auto:
            return  # an auto transition with nothing to do is not a cancellation
        else:
            self.canceled += 1
        self.buckets[bisect_left(BUCKETS, elapsed)] += 1
        self.seconds_sum += elapsed

    def active_count(self) -> int:
        """Active states now (read at collection, not per transition: a gauge needs no more)."""
        mach = self._mach()
        if mach is not None and not self.disposed:
            self.states_active = len(mach.active_states())
        return self.states_active

    def schema_change(self, mach: Machine, old_schema: dict[str, Any]) -> None:
        self._count_schema(mach)

    def new_submachine(self, parent: Machine, child: Machine) -> None:
        if child.id not in self._collector.machines:
            MachMetrics(child, self.registry)

    def machine_dispose(self, mach_id: str) -> None:
        self.disposed = True


class _Machines:
    """The collector of one registry: every bound machine's metrics as labelled families."""

    def __init__(self) -> None:
        self.machines: dict[str, MachMetrics] = {}

    def add(self, metrics: MachMetrics) -> None:
        if metrics.machine_id in self.machines:
            raise ValueError(f"machine {metrics.machine_id} already has metrics in this registry")
        self.machines[metrics.machine_id] = metrics

    def remove(self, metrics: MachMetrics) -> None:
        if self.machines.get(metrics.machine_id) is metrics:
            del self.machines[metrics.machine_id]

    def describe(self) -> Iterable[Metric]:
        return list(_families([]))

    def collect(self) -> Iterable[Metric]:
        current = list(self.machines.values())
        for m in current:
            if m.disposed:
                self.remove(m)
        return list(_families(current))


def _families(machines: list[MachMetrics]) -> Iterator[Metric]:
    label = ["machine_id"]
    counters: list[tuple[str, str, Callable[[MachMetrics], float]]] = [
        ("am_transitions", "Accepted transitions.", lambda m: m.transitions),
        ("am_transitions_canceled", "Canceled transitions.", lambda m: m.canceled),
        ("am_exceptions", "Transitions that called Exception.", lambda m: m.exceptions),
        ("am_states_added", "State activations.", lambda m: m.states_added),
        ("am_states_removed", "State deactivations.", lambda m: m.states_removed),
        ("am_handlers", "Handler calls.", lambda m: m.handlers),
    ]
    gauges: list[tuple[str, str, Callable[[MachMetrics], float]]] = [
        ("am_states_active", "Active states now.", lambda m: m.active_count()),
        (
            "am_states_inactive",
            "Inactive states now.",
            lambda m: m.states - m.active_count(),
        ),
        ("am_queue_size", "Queue length when the last transition started.", lambda m: m.queue_size),
        ("am_states", "States in the schema.", lambda m: m.states),
        ("am_relations", "Non-empty relation lists in the schema.", lambda m: m.relations),
        ("am_ref_states", "State references inside relations.", lambda m: m.ref_states),
    ]
    for name, doc, value in counters:
        counter = CounterMetricFamily(name, doc, labels=label)
        for m in machines:
            counter.add_metric([m.machine_id], value(m))
        yield counter
    for name, doc, value in gauges:
        gauge = GaugeMetricFamily(name, doc, labels=label)
        for m in machines:
            gauge.add_metric([m.machine_id], value(m))
        yield gauge
    hist = HistogramMetricFamily("am_transition_seconds", "Transition wall time.", labels=label)
    bounds = [*(repr(b) for b in BUCKETS), "+Inf"]
    for m in machines:
        cumulative, total = [], 0
        for bound, count in zip(bounds, m.buckets, strict=True):
            total += count
            cumulative.append((bound, float(total)))
        hist.add_metric([m.machine_id], cumulative, m.seconds_sum)
    yield hist


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, _Machines] = weakref.WeakKeyDictionary()


def _collector(registry: CollectorRegistry) -> _Machines:
    collector = _collectors.get(registry)
    if collector is None:
        collector = _Machines()
        registry.register(collector)
        _collectors[registry] = collector
    return collector


def exposition(registry: CollectorRegistry | None = None, accept: str = "") -> tuple[bytes, str]:
    """The exposition of ``registry`` for an HTTP ``Accept`` header: ``(body, content type)``.

    What a ``/metrics`` route returns (an RPC server's HTTP port can serve its machines this way).
    """
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY if registry is None else registry), content_type


# ---------------------------------------------------------------------- serving /metrics


class MetricsServer:
    """``/metrics`` over HTTP on the running asyncio loop (aiohttp; no thread)."""

    def __init__(self, sock: socket.socket, registry: CollectorRegistry) -> None:
        self._sock = sock
        self.registry = registry
        self.host, self.port = sock.getsockname()[:2]
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)

    @property
    def url(self) -> str:
        """Where the metrics are: ``http://HOST:PORT/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = exposition(self.registry, request.headers.get("Accept", ""))
        response = web.Response(body=body, headers={"Content-Type": content_type})
        response.enable_compression()  # gzip when the scraper accepts it
        return response

    async def start(self) -> None:
        """Start answering on the bound socket."""
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def close(self) -> None:
        """Stop answering and release the port."""
        await self._runner.cleanup()
        self._sock.close()


def _listen(addr: str, what: str) -> socket.socket:
    host, port = _parse_addr(addr, what)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _parse_addr(addr: str, what: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what} must be HOST:PORT (e.g. 127.0.0.1:9100), got {addr!r}")
    return host, int(port)


async def serve_metrics(
    addr: str = "127.0.0.1:9100", registry: CollectorRegistry | None = None
) -> MetricsServer:
    """Serve ``registry`` at ``http://addr/metrics`` (port 0 picks a free one)."""
    server = MetricsServer(_listen(addr, "addr"), REGISTRY if registry is None else registry)
    await server.start()
    return server


# ---------------------------------------------------------------------- pushing


class Pusher:
    """Pushes ``registry`` to a Pushgateway every ``interval`` seconds from an asyncio task.

    A failed push is retried at the next interval; the first failure of an outage is logged
    (warning), and so is the recovery. ``failures`` counts failed pushes.
    """

    def __init__(
        self,
        url: str,
        *,
        job: str = "asyncmachine",
        registry: CollectorRegistry | None = None,
        interval: float = PUSH_INTERVAL,
        timeout: float = 5.0,
    ) -> None:
        _check_http_url(url, "url")
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.url = url
        self.job = job
        self.registry = REGISTRY if registry is None else registry
        self.interval = interval
        self.timeout = timeout
        self.pushes = 0
        self.failures = 0
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._closing = False
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Start pushing (needs a running event loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def push_soon(self) -> None:
        """Push now instead of at the end of the interval."""
        self._wake.set()

    async def push(self) -> bool:
        """Push once now; True when the Pushgateway accepted it."""
        request: dict[str, Any] = {}

        def capture(**kw: Any) -> Callable[[], None]:
            request.update(kw)
            return lambda: None

        # prometheus-client builds the URL (grouping key escaping) and body; aiohttp sends it
        push_to_gateway(self.url, self.job, self.registry, handler=capture)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                request["method"],
                request["url"],
                data=request["data"],
                headers=dict(request["headers"]),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                ok = resp.status < 300
                why = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            ok, why = False, repr(err)
        if ok:
            self.pushes += 1
            if self._failing:
                _log.warning("asyncmachine: pushes to %s work again", self.url)
            self._failing = False
        else:
            self.failures += 1
            if not self._failing:
                _log.warning(
                    "asyncmachine: push to %s failed (%s); retrying every %ss, logged once",
                    self.url,
                    why,
                    self.interval,
                )
            self._failing = True
        return ok

    async def _run(self) -> None:
        while not self._closing:
            await wait_event(self._wake, self.interval)
            self._wake.clear()
            if not self._closing:
                await self.push()

    async def close(self) -> None:
        """Push a last time, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.push()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _check_http_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL, got {url!r}")


# ---------------------------------------------------------------------- environment

_env_servers: dict[str, MetricsServer] = {}
_env_pushers: dict[tuple[str, str], Pusher] = {}
_env_tasks: set[asyncio.Task[None]] = set()


def mach_metrics_env(mach: Machine) -> MachMetrics | None:
    """Metrics for ``mach`` in the default registry when ``AM_PROM_ADDR`` or ``AM_PROM_PUSH_URL``
    is set, else nothing (``None``).

    ``AM_PROM_ADDR=HOST:PORT`` serves ``/metrics`` there (one server per address per process);
    ``AM_PROM_PUSH_URL`` pushes to that Pushgateway every ``AM_PROM_PUSH_INTERVAL`` seconds under
    the job ``AM_SERVICE`` (lowercase, non-alphanumerics as ``_``). Both need a running event
    loop; bad values raise ``ValueError`` before anything is bound.
    """
    addr = os.environ.get("AM_PROM_ADDR", "")
    push_url = os.environ.get("AM_PROM_PUSH_URL", "")
    if not addr and not push_url:
        return None
    if addr:
        _parse_addr(addr, "AM_PROM_ADDR")
    if push_url:
        _check_http_url(push_url, "AM_PROM_PUSH_URL")
    interval = _env_interval()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "mach_metrics_env: AM_PROM_ADDR / AM_PROM_PUSH_URL need a running asyncio loop"
        ) from None
    server = _env_servers.get(addr) if addr else None
    if addr and server is None:
        server = _env_servers[addr] = MetricsServer(_listen(addr, "AM_PROM_ADDR"), REGISTRY)
        task = loop.create_task(server.start())
        _env_tasks.add(task)
        task.add_done_callback(_env_tasks.discard)
    metrics = MachMetrics(mach)
    metrics.server = server
    if push_url:
        job = _job_name(os.environ.get("AM_SERVICE", "") or "asyncmachine")
        pusher = _env_pushers.get((push_url, job))
        if pusher is None:
            pusher = _env_pushers[(push_url, job)] = Pusher(push_url, job=job, interval=interval)
            pusher.start()
        metrics.pusher = pusher
        mach.on_dispose(lambda _id: pusher.push_soon())
    return metrics


def _env_interval() -> float:
    raw = os.environ.get("AM_PROM_PUSH_INTERVAL", "")
    if not raw:
        return PUSH_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ValueError(f"AM_PROM_PUSH_INTERVAL must be a positive number, got {raw!r}")
    return value


def _job_name(service: str) -> str:
    return re.sub(r"[^a-z0-9]", "_", service.lower())


async def stop_env() -> None:
    """Stop what ``mach_metrics_env`` started: servers close, pushers push a last time."""
    for task in list(_env_tasks):
        await task
    servers, pushers = list(_env_servers.values()), list(_env_pushers.values())
    _env_servers.clear()
    _env_pushers.clear()
    for server in servers:
        await server.close()
    for pusher in pushers:
        await pusher.close()
