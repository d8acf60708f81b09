"""Prometheus metrics: the counters per machine, /metrics, a real Prometheus scraping it, a real
Pushgateway receiving pushes, and pushes to a gateway that is down, slow or failing."""

from __future__ import annotations

import sys

import pytest

if sys.platform == "emscripten":
    pytest.skip("telemetry exporters need sockets and subprocesses", allow_module_level=True)

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from prometheus_client import CollectorRegistry
from telemetry_backends import TIMEOUT, Prometheus, Receiver, free_port, http_get

import asyncmachine as am
from asyncmachine.telemetry import prometheus

SCHEMA: am.Schema = {
    "A": am.State(),
    "B": am.State(require=("A",)),
    "C": am.State(auto=True, require=("B",)),
    "D": am.State(remove=("A",), add=("C",)),
}


def value(reg: CollectorRegistry, name: str, mach: am.Machine) -> float | None:
    return reg.get_sample_value(name, {"machine_id": mach.id})


@pytest.fixture
async def env(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[pytest.MonkeyPatch]:
    """Set AM_* variables with ``env.setenv``; whatever ``mach_metrics_env`` started is stopped."""
    for var in ("AM_PROM_ADDR", "AM_PROM_PUSH_URL", "AM_PROM_PUSH_INTERVAL", "AM_SERVICE"):
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch
    await prometheus.stop_env()


class Handlers:
    def AEnter(self, e: am.Event) -> bool:
        return e.args.get("ok", True) is True

    def AState(self, e: am.Event) -> None: ...

    def BState(self, e: am.Event) -> None: ...


def test_counters_per_transition() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA, id="counted")
    prometheus.MachMetrics(mach, reg)
    mach.bind_handlers(Handlers())

    assert mach.add1("A", {"ok": False}) == am.Canceled  # AEnter refuses
    assert mach.add1("A") == am.Executed  # AEnter + AState
    assert mach.add1("B") == am.Executed  # BState, then the auto C
    assert mach.can_add1("D") == am.Executed  # a check: not counted
    mach.add_err(ValueError("boom"))

    assert value(reg, "am_transitions_total", mach) == 4  # A, B, auto C, Exception
    assert value(reg, "am_transitions_canceled_total", mach) == 1
    assert value(reg, "am_exceptions_total", mach) == 1
    assert value(reg, "am_states_added_total", mach) == 4
    assert value(reg, "am_states_removed_total", mach) == 0
    assert value(reg, "am_handlers_total", mach) == 4  # AEnter twice, AState, BState
    assert value(reg, "am_states_active", mach) == 4
    assert value(reg, "am_states_inactive", mach) == 1
    assert value(reg, "am_states", mach) == 5  # with Exception
    assert value(reg, "am_relations", mach) == 4
    assert value(reg, "am_ref_states", mach) == 4
    assert value(reg, "am_transition_seconds_count", mach) == 5
    assert value(reg, "am_transition_seconds_bucket", mach) is None  # needs an `le`
    inf = reg.get_sample_value(
        "am_transition_seconds_bucket", {"machine_id": mach.id, "le": "+Inf"}
    )
    assert inf == 5
    assert (value(reg, "am_transition_seconds_sum", mach) or 0) > 0

    mach.remove1("A")  # B and C go with it (require)
    assert value(reg, "am_states_removed_total", mach) == 3
    assert value(reg, "am_states_active", mach) == 1  # Exception


def test_queue_size_when_transition_started() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA)
    prometheus.MachMetrics(mach, reg)
    sizes: list[float | None] = []

    class Queueing:
        def AState(self, e: am.Event) -> None:
            e.machine.add1("B")
            e.machine.add1("D")

        def BState(self, e: am.Event) -> None:
            sizes.append(value(reg, "am_queue_size", mach))

    mach.bind_handlers(Queueing())
    mach.add1("A")
    assert sizes == [1]  # D still queued when B's transition started


def test_machines_are_labels_of_one_family() -> None:
    reg = CollectorRegistry()
    m1, m2 = am.Machine(SCHEMA), am.Machine(SCHEMA)
    prometheus.MachMetrics(m1, reg)
    prometheus.MachMetrics(m2, reg)
    m1.add1("A")
    m2.add1("A")
    m2.add1("B")
    assert value(reg, "am_transitions_total", m1) == 1
    assert value(reg, "am_transitions_total", m2) == 3
    with pytest.raises(ValueError, match="already has metrics"):
        prometheus.MachMetrics(m1, reg)


def test_other_machines_stay_untouched() -> None:
    reg = CollectorRegistry()
    watched, other = am.Machine(SCHEMA), am.Machine(SCHEMA)
    prometheus.MachMetrics(watched, reg)
    other.add1("A")
    assert other.tracers() == []
    assert value(reg, "am_transitions_total", other) is None


def test_submachines_get_their_own_metrics() -> None:
    reg = CollectorRegistry()
    parent = am.Machine(SCHEMA)
    prometheus.MachMetrics(parent, reg)
    child = am.Machine(SCHEMA, parent=parent)
    child.add1("A")
    assert value(reg, "am_transitions_total", child) == 1
    assert value(reg, "am_transitions_total", parent) == 0


def test_schema_change_updates_schema_gauges() -> None:
    reg = CollectorRegistry()
    mach = am.Machine({"A": am.State()})
    prometheus.MachMetrics(mach, reg)
    assert value(reg, "am_states", mach) == 2
    grown = {"A": am.State(), "B": am.State(require=("A",)), am.EXCEPTION: am.State()}
    mach.set_schema(grown, ["A", "B", am.EXCEPTION])
    assert value(reg, "am_states", mach) == 3
    assert value(reg, "am_ref_states", mach) == 1


def test_disposed_machine_is_collected_once_more_then_dropped() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA)
    prometheus.MachMetrics(mach, reg)
    mach.add1("A")
    mach.dispose()
    assert value(reg, "am_transitions_total", mach) == 1  # the final values, once
    assert value(reg, "am_transitions_total", mach) is None


def test_close_detaches_and_drops() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA)
    metrics = prometheus.MachMetrics(mach, reg)
    metrics.close()
    assert mach.tracers() == []
    mach.add1("A")
    assert value(reg, "am_transitions_total", mach) is None


def test_garbage_machine_takes_its_series_along() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA)
    prometheus.MachMetrics(mach, reg)
    mach_id = mach.id
    del mach
    gc.collect()
    assert reg.get_sample_value("am_transitions_total", {"machine_id": mach_id}) is None


def test_exposition_formats() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA, id="expo")
    prometheus.MachMetrics(mach, reg)
    mach.add1("A")
    body, ctype = prometheus.exposition(reg)
    assert ctype.startswith("text/plain; version=0.0.4")
    assert b'am_transitions_total{machine_id="expo"} 1.0' in body
    body, ctype = prometheus.exposition(reg, "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_serve_metrics() -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA, id="served")
    prometheus.MachMetrics(mach, reg)
    mach.add1("A")
    server = await prometheus.serve_metrics("127.0.0.1:0", reg)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url) as resp:
                assert resp.status == 200
                assert 'am_transitions_total{machine_id="served"} 1.0' in await resp.text()
            async with http.get(server.url.replace("/metrics", "/other")) as resp:
                assert resp.status == 404
    finally:
        await server.close()


async def test_serve_metrics_bad_address() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        await prometheus.serve_metrics("localhost")
    with pytest.raises(ValueError, match="HOST:PORT"):
        await prometheus.serve_metrics("127.0.0.1:http")


# ---------------------------------------------------------------------- environment


async def test_env_unset_binds_nothing(env: pytest.MonkeyPatch) -> None:
    mach = am.Machine(SCHEMA)
    assert prometheus.mach_metrics_env(mach) is None
    assert mach.tracers() == []


@pytest.mark.parametrize(
    ("var", "raw", "match"),
    [
        ("AM_PROM_ADDR", "9100", "AM_PROM_ADDR must be HOST:PORT"),
        ("AM_PROM_ADDR", "127.0.0.1:99999", "AM_PROM_ADDR must be HOST:PORT"),
        ("AM_PROM_PUSH_URL", "127.0.0.1:9091", "AM_PROM_PUSH_URL must be an http"),
        ("AM_PROM_PUSH_INTERVAL", "soon", "AM_PROM_PUSH_INTERVAL must be a positive"),
        ("AM_PROM_PUSH_INTERVAL", "-1", "AM_PROM_PUSH_INTERVAL must be a positive"),
    ],
)
async def test_env_bad_values(env: pytest.MonkeyPatch, var: str, raw: str, match: str) -> None:
    env.setenv("AM_PROM_PUSH_URL", "http://127.0.0.1:9/")
    env.setenv(var, raw)
    mach = am.Machine(SCHEMA)
    with pytest.raises(ValueError, match=match):
        prometheus.mach_metrics_env(mach)
    assert mach.tracers() == []


def test_env_needs_a_running_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AM_PROM_ADDR", "127.0.0.1:0")
    mach = am.Machine(SCHEMA)
    with pytest.raises(RuntimeError, match="running asyncio loop"):
        prometheus.mach_metrics_env(mach)
    assert mach.tracers() == []


async def test_env_address_in_use(env: pytest.MonkeyPatch) -> None:
    server = await prometheus.serve_metrics("127.0.0.1:0")
    try:
        env.setenv("AM_PROM_ADDR", f"127.0.0.1:{server.port}")
        mach = am.Machine(SCHEMA)
        with pytest.raises(OSError):
            prometheus.mach_metrics_env(mach)
        assert mach.tracers() == []
    finally:
        await server.close()


async def test_real_prometheus_scrapes_transitions(
    env: pytest.MonkeyPatch, prom_server: Callable[[list[str]], Prometheus]
) -> None:
    """AM_PROM_ADDR serves /metrics; Debian's Prometheus scrapes it; its query API agrees."""
    env.setenv("AM_PROM_ADDR", "127.0.0.1:0")
    mach = am.Machine(SCHEMA, id="scraped-by-prometheus")
    metrics = prometheus_env(mach)
    assert metrics.server is not None
    for _ in range(21):
        mach.toggle1("A")
    prom = prom_server([f"127.0.0.1:{metrics.server.port}"])
    query = 'am_transitions_total{machine_id="scraped-by-prometheus"}'
    result = await prom.poll(query, lambda r: bool(r) and r[0]["value"][1] == "21")
    assert result[0]["metric"]["job"] == "am"
    mach.add1("A")  # one more, on the next scrape
    await prom.poll(query, lambda r: bool(r) and r[0]["value"][1] == "22")
    count = await prom.query('am_transition_seconds_count{machine_id="scraped-by-prometheus"}')
    assert count and count[0]["value"][1] == "22"


def prometheus_env(mach: am.Machine) -> prometheus.MachMetrics:
    metrics = prometheus.mach_metrics_env(mach)
    assert metrics is not None
    return metrics


async def test_real_pushgateway(env: pytest.MonkeyPatch, pushgateway: str) -> None:
    env.setenv("AM_PROM_PUSH_URL", pushgateway)
    env.setenv("AM_PROM_PUSH_INTERVAL", "0.05")
    env.setenv("AM_SERVICE", "Upload Service")
    mach = am.Machine(SCHEMA, id="pushed")
    metrics = prometheus_env(mach)
    assert metrics.pusher is not None
    assert metrics.pusher.job == "upload_service"
    mach.add1("A")
    mach.add1("B")
    series = 'am_transitions_total{instance="",job="upload_service",machine_id="pushed"}'
    await until_pushed(pushgateway, f"{series} 3")  # A, B and the auto C
    mach.dispose()  # a last push with the final values, then the series go
    await until_pushed(pushgateway, "", absent=series)
    assert metrics.pusher.failures == 0


async def until_pushed(gateway: str, present: str, absent: str = "") -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            text = (await http_get(f"{gateway}/metrics")).decode()
            if present in text and (not absent or absent not in text):
                return
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------------- faults


@pytest.mark.parametrize("fault", ["down", "500", "slow"])
async def test_push_faults_keep_machines_running(
    fault: str,
    receiver: Callable[[], Awaitable[Receiver]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reg = CollectorRegistry()
    mach = am.Machine(SCHEMA)
    prometheus.MachMetrics(mach, reg)
    rec = await receiver()
    url = rec.url
    if fault == "down":
        url = f"http://127.0.0.1:{free_port()}"
    elif fault == "500":
        rec.status = 500
    else:
        rec.delay = 1.0
    pusher = prometheus.Pusher(url, registry=reg, interval=0.02, timeout=0.1)
    caplog.set_level(logging.WARNING, "asyncmachine.telemetry")
    pusher.start()
    try:
        async with asyncio.timeout(TIMEOUT):
            while pusher.failures < 4:
                mach.toggle1("A")  # the machine keeps going while pushes fail
                await asyncio.sleep(0.01)
        assert pusher.pushes == 0
        assert mach.is1("A") or mach.not1("A")
        warnings = [r for r in caplog.records if "push to" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert url in warnings[0].getMessage()
        # the gateway recovers: pushes work again, and that is logged once too
        if fault != "down":
            rec.status, rec.delay = 200, 0.0
            await rec.wait_for(lambda: pusher.pushes > 0)
            assert any("work again" in r.getMessage() for r in caplog.records)
    finally:
        await pusher.close()


def test_pusher_bad_arguments() -> None:
    with pytest.raises(ValueError, match="url must be an http"):
        prometheus.Pusher("ftp://127.0.0.1/")
    with pytest.raises(ValueError, match="interval must be positive"):
        prometheus.Pusher("http://127.0.0.1:9091", interval=0)
