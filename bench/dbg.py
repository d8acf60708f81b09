"""am-dbg benchmarks: ``python -m bench.dbg [--quick] [--out build/bench/dbg.jsonl]``.

1. ``stream``: W1 and W3 (perf-workloads.md) on asyncmachine, bare and with the machine streamed
   by ``telemetry.debug`` to an am-dbg running in another process, reps interleaved in one run;
   the ratio streamed/bare (target >= 0.5). Two ways: ``sync`` (the timed loop never yields: the
   hooks and the outbox, the sender runs after) and ``yielding`` (the loop yields to the event
   loop every 1,000 mutations, so the sender builds, encodes and sends in the timed region: the
   whole cost of streaming on the machine's thread).
2. ``latency``: a mutation until the inspector page (Chromium) shows it, p50 and p95.
3. ``load``: the inspector page opening a session of 100,000 transitions, served live by am-dbg
   (``--import``) and as a file in the static page: navigation to first render (target <= 2 s),
   and the frame time while scrolling the timeline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncmachine as am
from asyncmachine import telemetry
from asyncmachine.debugger import Session, write_session
from asyncmachine.telemetry._debug import DebugTracer, Outbox
from bench.harness import Timer, check, env_info, loadavg
from bench.workloads_am import _w3_handlers_class

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


@dataclass(frozen=True)
class Sizes:
    w1: int
    w3: int
    reps: int
    latency: int
    load: int


FULL = Sizes(w1=200_000, w3=40_000, reps=5, latency=40, load=100_000)
QUICK = Sizes(w1=2_000, w3=500, reps=1, latency=3, load=2_000)


# ---- 1. stream overhead -----------------------------------------------------------------------


W1_SCHEMA = {"A": am.State(remove=("B",)), "B": am.State(remove=("A",))}
W3_SCHEMA = {f"H{i}": am.State() for i in range(5)}


async def _w1(n: int, timer: Timer, attach: Callable[[am.Machine], Any], yielding: bool) -> None:
    mach = am.Machine(W1_SCHEMA)
    tracer = attach(mach)
    add1 = mach.add1
    step = 500 if yielding else n // 2
    with timer:
        for done in range(0, n // 2, step):
            for _ in range(min(step, n // 2 - done)):
                add1("A")
                add1("B")
            if yielding:
                await asyncio.sleep(0)  # the sender's turn, timed too
    check(mach.tick("A") + mach.tick("B") == 2 * n - 1, "W1: wrong ticks")
    if tracer is not None:
        tracer.close()


async def _w3(n: int, timer: Timer, attach: Callable[[am.Machine], Any], yielding: bool) -> None:
    mach = am.Machine(W3_SCHEMA)
    h: Any = _w3_handlers_class()()
    mach.bind_handlers(h)
    tracer = attach(mach)
    add1, remove1 = mach.add1, mach.remove1
    hs = [f"H{i}" for i in range(5)]
    step = 500 if yielding else n
    with timer:
        for done in range(0, n, step):
            for i in range(done, min(done + step, n)):
                s = hs[i % 5]
                add1(s)
                remove1(s)
            if yielding:
                await asyncio.sleep(0)
    check(h.counter == 4 * n, "W3: wrong counter")
    if tracer is not None:
        tracer.close()


class Attach:
    """Streams the workload's machine to ``addr`` (or, with None, leaves it bare)."""

    def __init__(self, addr: str | None) -> None:
        self.addr = addr
        self.tracer: DebugTracer | None = None

    def __call__(self, mach: am.Machine) -> DebugTracer | None:
        if self.addr is not None:
            self.tracer = telemetry.debug(mach, self.addr)
        return self.tracer


async def stream_overhead(sizes: Sizes, addr: str) -> list[dict[str, Any]]:
    """Median rates bare and streamed, reps interleaved so the machine's load hits both."""
    out = []
    workloads = [("W1", _w1, sizes.w1, "mutation"), ("W3", _w3, sizes.w3, "cycle")]
    for name, fn, n, unit in workloads:
        for yielding in (False, True):
            bare: list[float] = []
            streamed: list[float] = []
            drops: list[int] = []
            for rep in range(sizes.reps + 1):
                for rates, attach in ((bare, Attach(None)), (streamed, Attach(addr))):
                    timer = Timer()
                    await fn(n, timer, attach, yielding)
                    if attach.tracer is not None:
                        outbox = attach.tracer.outbox
                        assert await attach.tracer.flush(30), "am-dbg did not get the stream"
                        drops.append(outbox.dropped_total)
                    if rep:  # the first round warms up
                        rates.append(n / (timer.ns / 1e9))
            mode = "yielding" if yielding else "sync"
            row = {
                "bench": "stream",
                "workload": name,
                "mode": mode,
                "n": n,
                "unit": unit,
                "bare_per_sec": round(statistics.median(bare), 1),
                "streamed_per_sec": round(statistics.median(streamed), 1),
                "ratio": round(statistics.median(streamed) / statistics.median(bare), 3),
                "dropped_total": drops[-1] if drops else 0,
                "target": 0.5,
                "loadavg": loadavg(),
            }
            print(
                f"  stream {name} {mode:<8} bare {row['bare_per_sec']:>10,.0f} {unit}/s, "
                f"streamed {row['streamed_per_sec']:>10,.0f}: ratio {row['ratio']:.2f} "
                f"(target >= 0.5); load {row['loadavg']}",
                file=sys.stderr,
                flush=True,
            )
            out.append(row)
    return out


# ---- am-dbg in another process ----------------------------------------------------------------


@contextmanager
def am_dbg(*args: str) -> Iterator[str]:
    """``python -m asyncmachine.debugger`` on a free port; yields its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncmachine.debugger", "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "inspector at " in line:
                url = line.split("inspector at ")[1].strip()
                break
        else:
            raise RuntimeError("am-dbg did not start")
        yield url.removeprefix("http://").rstrip("/")
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def static_site() -> Iterator[str]:
    """``build/site`` over HTTP (``python -m http.server``), as a static host would serve it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", "build/site"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N (http://...) ..."
        port = line.split(" port ")[1].split()[0]
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


# ---- 2. and 3. the inspector page -------------------------------------------------------------


def session_file(path: Path, transitions: int) -> Path:
    """A session of one 12-state machine with ``transitions`` transitions (relations, handlers,
    some canceled, log lines)."""
    schema = {
        "Start": am.State(),
        "Ready": am.State(auto=True, require=("Start",)),
        **{
            f"Step{i}": am.State(require=("Ready",), remove=(f"Step{(i + 1) % 8}",))
            for i in range(8)
        },
        "Busy": am.State(multi=True),
        "Done": am.State(add=("Busy",)),
    }

    class H:
        def Step3Enter(self, e: am.Event) -> bool:
            return e.args.get("n", 0) % 7 != 0

    outbox = Outbox(transitions + 10)
    mach = am.Machine(
        schema, id="busy-machine", log_level=am.LogLevel.CHANGES, logger=lambda *a: None
    )
    mach.bind_handlers(H())
    DebugTracer(mach, outbox)
    mach.add1("Start")
    n = 1
    while n < transitions:
        mach.add1(f"Step{n % 8}", {"n": n})
        n += 1
    session = Session(max_transitions=transitions + 10)
    conn = session.connect()
    lines = outbox.take(transitions + 10)
    for i in range(0, len(lines), 5000):
        session.receive(conn, "\n".join(lines[i : i + 5000]))
    write_session(path, session.lines())
    return path


READY = "() => document.body.dataset.state === 'ready' && window.__inspectorReadyMs"
# once the n-th transition of the machine "latency" is on the screen: its delay in ms, from the
# end of the transition (the machine's wall clock) to the first frame showing it (the page's)
SHOWN = """(n) => {
    const {ui} = window.__inspector;
    const e = ui.session.machines.get('latency').entries[n - 1];
    return e && ui.shown === e ? ui.shownAt - e.t : false;
}"""

SCROLL = """async () => {
    const s = document.querySelector('.tl-scroll');
    const frame = () => new Promise((r) => requestAnimationFrame(() => r(performance.now())));
    let last = await frame();
    const times = [];
    for (let k = 1; k <= 30; k++) {
        s.scrollTop = (s.scrollHeight - s.clientHeight) * (k / 30);
        const now = await frame();
        times.push(now - last);
        last = now;
    }
    times.sort((a, b) => a - b);
    return {median: times[15], max: times[29], rows: document.querySelectorAll('.tl-row').length};
}"""


async def inspector(sizes: Sizes, tmp: Path) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    out: list[dict[str, Any]] = []
    path = session_file(tmp / "load.jsonl.gz", sizes.load)
    size = path.stat().st_size
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # 2. live latency, am-dbg in another process
        with am_dbg() as addr:
            mach = am.Machine(W1_SCHEMA, id="latency")
            tracer = telemetry.debug(mach, addr)
            mach.add1("A")
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(f"http://{addr}/?machine=latency")
            await page.wait_for_function(READY)
            await page.wait_for_selector('.mach[data-id="latency"]')
            lat = []
            for n in range(2, sizes.latency + 2):
                mach.add1("AB"[n % 2])
                shown = await page.wait_for_function(SHOWN, arg=n, polling="raf")
                lat.append(float(await shown.json_value()))
                await asyncio.sleep(0.02)  # one at a time, not a burst
            tracer.close()
            await page.close()
        lat.sort()
        row = {
            "bench": "latency",
            "samples": len(lat),
            "p50_ms": round(lat[len(lat) // 2], 1),
            "p95_ms": round(lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0], 1),
            "target_ms": 100,
            "loadavg": loadavg(),
        }
        print(
            f"  latency: p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms (target 100 ms)",
            file=sys.stderr,
        )
        out.append(row)
        # 3. load: live from am-dbg --import, then the file in the static page
        with am_dbg("--import", str(path), "--max-transitions", str(sizes.load + 10)) as addr:
            row = await _load(browser, f"http://{addr}/", None, "live")
        out.append({**row, "transitions": sizes.load, "file_bytes": size})
        if (ROOT / "build" / "site" / "inspector" / "index.html").is_file():
            with static_site() as url:
                row = await _load(browser, f"{url}/inspector/", path, "file")
            out.append({**row, "transitions": sizes.load, "file_bytes": size})
        await browser.close()
    return out


async def _load(browser: Any, url: str, file: Path | None, how: str) -> dict[str, Any]:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    started = time.perf_counter()
    await page.goto(url)
    if file is not None:
        await page.wait_for_function(READY)
        started = time.perf_counter()
        await page.set_input_files("#file", str(file))
        await page.wait_for_selector('#conn[data-state="file"]', timeout=60_000)
        await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r()))")
    else:
        await page.wait_for_function(READY, timeout=60_000)
    seconds = time.perf_counter() - started
    count = await page.evaluate("() => document.querySelector('#tl-count').textContent")
    scroll = await page.evaluate(SCROLL)
    await page.close()
    row = {
        "bench": "load",
        "how": how,
        "seconds": round(seconds, 3),
        "target_s": 2.0,
        "shown": count,
        "scroll_frame_median_ms": round(scroll["median"], 1),
        "scroll_frame_max_ms": round(scroll["max"], 1),
        "rows_in_dom": scroll["rows"],
        "loadavg": loadavg(),
    }
    print(
        f"  load ({how}): {row['seconds']} s to first render of {count} (target <= 2 s); "
        f"scrolling: median frame {row['scroll_frame_median_ms']} ms, "
        f"max {row['scroll_frame_max_ms']} ms, {row['rows_in_dom']} rows in the DOM",
        file=sys.stderr,
    )
    return row


async def run(sizes: Sizes, tmp: Path) -> list[dict[str, Any]]:
    with am_dbg() as addr:
        rows = await stream_overhead(sizes, addr)
    return rows + await inspector(sizes, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbg", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--out", default=str(ROOT / "build" / "bench" / "dbg.jsonl"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"bench.dbg: {'quick' if args.quick else 'full'} run, {env_info()}, load {loadavg()}",
        file=sys.stderr,
    )
    rows = asyncio.run(run(sizes, out.parent))
    with out.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"bench.dbg: results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
