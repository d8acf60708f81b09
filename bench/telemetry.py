"""Telemetry benchmark: ``python -m bench.telemetry [--quick] [--out build/bench/telemetry.jsonl]``.

W3 (perf-workloads.md: 5 states, 20 handlers, a cycle = ``add1(Hi)`` + ``remove1(Hi)``) with each
exporter bound, as a ratio of W3 with none, all in one run with the variants interleaved rep by
rep (so load changes hit them alike):

- ``none``: no exporter; ``noop-tracer``: a bare ``am.Tracer`` (what any tracer costs the engine);
- ``prometheus``: ``MachMetrics`` (the scrape is not per transition, so none happens);
- ``loki``: ``bind_loki`` pushing to a receiver in a child process (the machine logs at CHANGES);
- ``otel``: ``OtelTracer`` with transition spans, the SDK's batch processor and OTLP/HTTP exporter
  sending to the same child process;
- ``unbound``: no exporter on the measured machine while another machine in the process has all
  three bound (binding one must not slow the others at all).

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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncmachine as am
from bench.harness import BenchResult, check, env_info, loadavg
from bench.workloads_am import _w3_handlers_class

N_FULL = 5_000
N_QUICK = 300
YIELD_EVERY = 100
VARIANTS = ("none", "noop-tracer", "prometheus", "loki", "otel", "unbound")
TARGETS = {"prometheus": 0.8, "loki": 0.7, "otel": 0.3, "unbound": 0.95}
"""Minimum ratios to ``none``; ``noop-tracer`` is reported for reference."""

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
        self.flushes: list[Callable[[], Any]] = []
        self.closes: list[Callable[[], Any]] = []
        self.dropped: dict[str, int] = {}


async def bind(variant: str, mach: am.Machine, url: str, n: int, bound: Bound) -> None:
    if variant == "noop-tracer":
        mach.bind_tracer(am.Tracer())
    if variant in ("prometheus", "all"):
        from prometheus_client import CollectorRegistry

        from asyncmachine.telemetry import prometheus

        prometheus.MachMetrics(mach, CollectorRegistry())
    if variant in ("loki", "all"):
        from asyncmachine.telemetry import loki

        client = loki.LokiClient(url, max_lines=4 * n + 1000)
        handle = loki.LokiHandle(mach, client, "bench")
        bound.flushes.append(handle.flush)
        bound.closes.append(handle.close)
        bound.dropped["loki_dropped"] = 0

        def loki_dropped() -> None:
            bound.dropped["loki_dropped"] = client.dropped

        bound.closes.append(loki_dropped)
    if variant in ("otel", "all"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from asyncmachine.telemetry import otel

        provider = TracerProvider(shutdown_on_exit=False)
        exporter = otel.CountingSpanExporter(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=4 * n + 1000, schedule_delay_millis=100)
        )
        tracer = otel.OtelTracer(provider.get_tracer("bench"), transitions=True)
        tracer.bind(mach)

        async def otel_flush() -> None:
            tracer.close()
            await asyncio.to_thread(provider.force_flush)

        def otel_close() -> None:
            provider.shutdown()
            # every span exported: 2 transitions and 1 activation per cycle, plus the machine
            bound.dropped["otel_not_exported"] = 3 * n + 1 - exporter.exported

        bound.flushes.append(otel_flush)
        bound.closes.append(otel_close)


async def rep(variant: str, n: int, url: str) -> tuple[float, dict[str, int]]:
    """One rep: a fresh machine (and exporters), N timed cycles, shipping included; ns elapsed."""
    mach = am.Machine(SCHEMA)
    handlers: Any = _w3_handlers_class()()
    mach.bind_handlers(handlers)
    bound = Bound()
    other: am.Machine | None = None
    if variant == "unbound":
        other = am.Machine(SCHEMA)
        await bind("all", other, url, n, bound)
        other.add1("H0")
    else:
        await bind(variant, mach, url, n, bound)
    add1, remove1 = mach.add1, mach.remove1
    gc.collect()
    started = time.process_time_ns()
    for start in range(0, n, YIELD_EVERY):
        for i in range(start, min(start + YIELD_EVERY, n)):
            s = STATES[i % 5]
            add1(s)
            remove1(s)
        await asyncio.sleep(0)
    if variant != "unbound":
        for flush in bound.flushes:
            await flush()
    elapsed = time.process_time_ns() - started
    for close in bound.closes:
        result = close()
        if asyncio.iscoroutine(result):
            await result
    if other is not None:
        other.dispose()
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
    results = asyncio.run(run(args.quick))
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
