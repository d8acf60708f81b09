"""Telemetry benchmark: ``python -m bench.telemetry [--quick] [--out build/bench/telemetry.jsonl]``.

W3 (perf-workloads.md: 5 states, 20 handlers, a cycle = ``add1(Hi)`` + ``remove1(Hi)``) with each
exporter bound, as a ratio of W3 with none, all in one run with the variants interleaved rep by
rep (so load changes hit them alike):

- ``none``: no exporter;
- ``unbound``: no exporter on the measured machine while another machine in the process has all
  three bound (binding one must not slow the others at all);
- ``noop-tracer``: a bare ``am.Tracer`` (reference: what any tracer costs the engine);
- ``prometheus``: ``MachMetrics`` (the scrape is not per transition, so none happens);
- ``log-changes``: the machine logging at CHANGES to a logger that drops the lines (reference:
  the part of Loki's cost that is the engine formatting its log lines);
- ``loki``: ``bind_loki`` pushing to a receiver in a child process (the machine logs at CHANGES);
- ``otel-sdk-floor``: the spans, attributes and events ``otel`` makes, made by hand around the
  mutations with no tracer (reference: what the OpenTelemetry SDK alone costs);
- ``otel``: ``OtelTracer`` with transition spans, the SDK's batch processor and OTLP/HTTP exporter
  sending to the same child process;
- ``otel-unsampled``: the same with a sampler that drops the machine's trace (reference: what
  tracing costs a machine that sampling leaves out).

The loop runs on asyncio and yields every 100 cycles so the exporters' own work (Loki's pushes on
the loop, the OTel SDK's export thread) happens alongside; the measured region ends after the last
line and span are shipped (Loki ``flush``, OTel ``force_flush``), so the ratios include shipping.
What is measured is this process's CPU time (``time.process_time``: the loop and the SDK's export
thread, not the receiver), which other processes on a shared box disturb far less than wall time.
Buffers are sized so nothing is dropped; the dropped counts are recorded to show it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncmachine as am
from bench.harness import BenchResult, check, env_info, loadavg
from bench.workloads_am import _w3_handlers_class

N_FULL = 5_000
N_QUICK = 300
YIELD_EVERY = 100
VARIANTS = (
    "none",
    "unbound",
    "noop-tracer",
    "prometheus",
    "log-changes",
    "loki",
    "otel-sdk-floor",
    "otel",
    "otel-unsampled",
)
TARGETS = {"prometheus": 0.8, "loki": 0.7, "otel": 0.3, "unbound": 0.9}
"""Minimum ratios to ``none``; the other variants are references (see the module docs)."""

STATES = [f"H{i}" for i in range(5)]
SCHEMA = {s: am.State() for s in STATES}


# ---------------------------------------------------------------------- the receiver process


def serve_receiver() -> None:
    """The child: answer every POST (Loki 204, OTLP 200 + empty protobuf) until stdin closes."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        if request.path.startswith("/loki/"):
            return web.Response(status=204)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def main() -> None:
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("POST", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.telemetry", "--receive"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.to_thread(proc.stdout.readline))
        yield f"http://127.0.0.1:{port}"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------- variants


class Bound:
    """What a variant bound to a machine: how to ship what is pending, and what it dropped."""

    def __init__(self) -> None:
        self.flushes: list[Callable[[], Awaitable[None]]] = []
        self.closes: list[Callable[[], Awaitable[None] | None]] = []
        self.dropped: dict[str, int] = {}
        self.cycle: Callable[[Callable[[str], object], Callable[[str], object], str], None] | None
        self.cycle = None
        """A loop body replacing ``add1(s); remove1(s)`` (the SDK floor)."""


def otel_provider(url: str, spans: int, bound: Bound, sampled: bool = True) -> tuple[Any, Any]:
    """An SDK tracer provider exporting over OTLP/HTTP to ``url``, sized not to drop any of the
    ``spans`` expected (the dropped count says whether they all went out)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    from asyncmachine.telemetry import otel

    sampler = None if sampled else ParentBased(ALWAYS_OFF)
    provider = TracerProvider(shutdown_on_exit=False, sampler=sampler)
    exporter = otel.CountingSpanExporter(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=spans + 1000, schedule_delay_millis=100)
    )

    async def flush() -> None:
        await asyncio.to_thread(provider.force_flush)

    def close() -> None:
        provider.shutdown()
        bound.dropped["otel_not_exported"] = (spans if sampled else 0) - exporter.exported

    bound.flushes.append(flush)
    bound.closes.append(close)
    return provider, exporter


def bind(variant: str, mach: am.Machine, url: str, n: int, bound: Bound) -> None:
    if variant == "noop-tracer":
        mach.bind_tracer(am.Tracer())
    if variant == "log-changes":
        mach.set_log_level(am.LogLevel.CHANGES)
        mach.set_logger(lambda level, line: None)
    if variant in ("prometheus", "all"):
        from prometheus_client import CollectorRegistry

        from asyncmachine.telemetry import prometheus

        prometheus.MachMetrics(mach, CollectorRegistry())
    if variant in ("loki", "all"):
        from asyncmachine.telemetry import loki

        client = loki.LokiClient(url, max_lines=4 * n + 1000)
        handle = loki.LokiHandle(mach, client, "bench")
        bound.flushes.append(handle.flush)

        async def close_loki() -> None:
            await handle.close()
            bound.dropped["loki_dropped"] = client.dropped

        bound.closes.append(close_loki)
    if variant in ("otel", "otel-unsampled", "all"):
        from asyncmachine.telemetry import otel

        # 2 transitions and 1 activation per cycle and the machine; the unbound variant's other
        # machine makes 3: one transition, one activation, itself
        spans = 3 if variant == "all" else 3 * n + 1
        provider, _ = otel_provider(url, spans, bound, sampled=variant != "otel-unsampled")
        tracer = otel.OtelTracer(provider.get_tracer("bench"), transitions=True)
        tracer.bind(mach)

        async def end_spans() -> None:
            tracer.close()

        bound.flushes.insert(0, end_spans)
    if variant == "otel-sdk-floor":
        sdk_floor(mach, url, n, bound)


def sdk_floor(mach: am.Machine, url: str, n: int, bound: Bound) -> None:
    """The same spans, attributes and events as ``otel``, made by hand around the mutations:
    what the OpenTelemetry SDK alone costs for this span model."""
    from opentelemetry import context, trace

    provider, _ = otel_provider(url, 3 * n + 1, bound)
    tracer = provider.get_tracer("bench")
    mach_span = tracer.start_span(f"mach:{mach.id}", attributes={"asyncmachine.id": mach.id})
    ctx = trace.set_span_in_context(mach_span, context.Context())

    def tx(name: str, mutate: Callable[[str], object], s: str, handlers: tuple[str, str]) -> str:
        span = tracer.start_span(
            name,
            ctx,
            attributes={
                "asyncmachine.id": mach.id,
                "asyncmachine.tx.id": "0123456789abcdef",
                "asyncmachine.mutation": name[:3],
                "asyncmachine.auto": False,
                "asyncmachine.queue_tick": 1,
                "asyncmachine.time_before": 1,
            },
        )
        mutate(s)
        span.add_event(handlers[0])
        span.add_event(handlers[1])
        span.set_attributes(
            {
                "asyncmachine.accepted": True,
                "asyncmachine.states_diff": "+" + s,
                "asyncmachine.time_after": 2,
            }
        )
        span.end()
        return "0123456789abcdef"

    def cycle(add1: Callable[[str], object], remove1: Callable[[str], object], s: str) -> None:
        tx_id = tx("add " + s, add1, s, (s + "Enter", s + "State"))
        attrs = {"asyncmachine.id": mach.id, "asyncmachine.state": s, "asyncmachine.tick": 1}
        state = tracer.start_span(s, ctx, attributes={**attrs, "asyncmachine.tx.id": tx_id})
        tx("remove " + s, remove1, s, (s + "Exit", s + "End"))
        state.set_attribute("asyncmachine.tx.end", tx_id)
        state.end()

    async def end_machine() -> None:
        mach_span.end()

    bound.flushes.insert(0, end_machine)
    bound.cycle = cycle


async def rep(variant: str, n: int, url: str) -> tuple[float, dict[str, int]]:
    """One rep: a fresh machine (and exporters), N cycles, shipping included; CPU ns used."""
    mach = am.Machine(SCHEMA)
    handlers: Any = _w3_handlers_class()()
    mach.bind_handlers(handlers)
    bound = Bound()
    other: am.Machine | None = None
    if variant == "unbound":
        other = am.Machine(SCHEMA)
        bind("all", other, url, n, bound)
        other.add1("H0")
    else:
        bind(variant, mach, url, n, bound)
    add1, remove1 = mach.add1, mach.remove1
    cycle = bound.cycle
    gc.collect()
    started = time.process_time_ns()
    for start in range(0, n, YIELD_EVERY):
        for i in range(start, min(start + YIELD_EVERY, n)):
            s = STATES[i % 5]
            if cycle is None:
                add1(s)
                remove1(s)
            else:
                cycle(add1, remove1, s)
        await asyncio.sleep(0)
    if other is None:
        for flush in bound.flushes:
            await flush()
    elapsed = time.process_time_ns() - started
    if other is not None:
        other.dispose()
        for flush in bound.flushes:
            await flush()
    for close in bound.closes:
        result = close()
        if result is not None:
            await result
    check(handlers.counter == 4 * n, f"W3 {variant}: counter {handlers.counter}, want {4 * n}")
    check(mach.active_states() == [], f"W3 {variant}: {mach.string()}")
    return elapsed, bound.dropped


async def run(quick: bool, reps: int = 5, warmup: int = 1) -> list[BenchResult]:
    n = N_QUICK if quick else N_FULL
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    dropped: dict[str, dict[str, int]] = {v: {} for v in VARIANTS}
    la = loadavg()
    async with receiver() as url:
        for i in range(warmup + reps):
            for variant in VARIANTS:
                gc.collect()
                ns, drops = await rep(variant, n, url)
                if i >= warmup:
                    rates[variant].append(n / (ns / 1e9))
                    for key, count in drops.items():
                        dropped[variant][key] = dropped[variant].get(key, 0) + count
            print(f"  round {i + 1}/{warmup + reps}  (load {loadavg()})", file=sys.stderr)
    results = []
    for variant in VARIANTS:
        med = statistics.median(rates[variant])
        results.append(
            BenchResult(
                system="asyncmachine",
                workload="W3",
                param=f"telemetry={variant}",
                n=n,
                unit="cycle",
                ops_per_sec=[round(r, 1) for r in rates[variant]],
                median_ops_per_sec=round(med, 1),
                min_ops_per_sec=round(min(rates[variant]), 1),
                max_ops_per_sec=round(max(rates[variant]), 1),
                median_ns_per_op=round(1e9 / med, 1),
                extra={"loadavg_before": la, **dropped[variant]},
            )
        )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny N: a smoke run of a few seconds")
    ap.add_argument("--out", default="build/bench/telemetry.jsonl", help="JSON lines output")
    ap.add_argument("--receive", action="store_true", help=argparse.SUPPRESS)  # the child
    args = ap.parse_args(argv)
    if args.receive:
        serve_receiver()
        return 0
    env = env_info()
    print(f"bench.telemetry: {'quick' if args.quick else 'full'} run, {env}", file=sys.stderr)
    started = time.perf_counter()
    results = asyncio.run(
        run(args.quick, reps=1 if args.quick else 7, warmup=0 if args.quick else 1)
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base = results[0].median_ops_per_sec
    with out.open("w") as f:
        for res in results:
            res.extra.update(env, quick=args.quick)
            res.extra["ratio_to_none"] = round(res.median_ops_per_sec / base, 3)
            f.write(res.to_json() + "\n")
    print(f"\nW3 with telemetry, N={results[0].n}, {time.perf_counter() - started:.0f} s")
    print("| exporter | cycles/s (median, min..max) | ratio to none | target |")
    print("|---|---|---|---|")
    for res in results:
        variant = res.param.removeprefix("telemetry=")
        ratio = res.extra["ratio_to_none"]
        target = TARGETS.get(variant)
        verdict = "" if target is None else f">= {target} {'PASS' if ratio >= target else 'FAIL'}"
        print(
            f"| {variant} | {res.median_ops_per_sec:,.0f} "
            f"({res.min_ops_per_sec:,.0f}..{res.max_ops_per_sec:,.0f}) | {ratio:.2f} | {verdict} |"
        )
    print(json.dumps({r.param: r.extra.get("ratio_to_none") for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
