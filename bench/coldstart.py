"""Cold and warm start of the upload demo in headless Chromium, against a bare loadPyodide page.

``python -m bench.coldstart [--quick] [--reps 5] [--out build/bench/coldstart.jsonl]`` serves
``build/site`` (``make site``) with the demo's own static file server (``wasm-demo/server.py``) on
127.0.0.1, plus a bare page that only runs ``loadPyodide()`` from the same distribution. Each rep
launches Chromium on a fresh profile and visits a page twice: cold (empty caches), then again in a
new tab (warm: HTTP cache and compiled-code cache filled by the first visit). Reps alternate the
demo and the bare page, so a busy machine slows both alike.

"Interactive" is the page's first ``performance.mark("interactive")``, set with
``body[data-ready=true]``, in ms since its navigation started. Targets: the demo cold no slower
than the bare page cold (ratio <= 1), and the demo warm within 1,500 ms. Every visit must load
without console errors and without a request leaving 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from websockets.asyncio.server import ServerConnection, serve

from bench.harness import loadavg
from bench.report import write_report

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # only 127.0.0.1 resolves (Playwright's request routing would turn the HTTP cache off)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LOCAL = ("http://127.0.0.1", "data:")
BARE_PATH = "/bare-pyodide.html"
BARE_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loadPyodide only</title>
<link rel="icon" href="data:,">
<script type="module">
import { loadPyodide } from "./pyodide/pyodide.mjs";
await loadPyodide({ indexURL: "pyodide/" });
document.body.dataset.ready = "true";
performance.mark("interactive");
</script></head><body data-ready="false"></body></html>
"""
PAGES = {"demo": "/?mode=local", "bare": BARE_PATH}
LOAD_TIMEOUT_MS = 60_000
WARM_TARGET_MS = 1500.0
# bytes the page received: the document and every resource as sent (compressed where it was),
# headers included; a cache hit counts 0, a revalidated one its 304
TRANSFERRED = """() => performance.getEntriesByType("navigation")
    .concat(performance.getEntriesByType("resource"))
    .reduce((sum, entry) => sum + entry.transferSize, 0)"""


class VisitError(RuntimeError):
    """A page logged an error, tried to leave 127.0.0.1, or never became interactive."""


@dataclass
class Visit:
    """One page load: when it became interactive and what it fetched."""

    ready_ms: float
    transferred: int


@dataclass
class Series:
    """The visits of one page in one cache state, across reps."""

    page: str
    cache: str
    visits: list[Visit] = field(default_factory=list)

    def result(self, extra: dict[str, Any]) -> dict[str, Any]:
        ms = [round(v.ready_ms, 1) for v in self.visits]
        return {
            "system": "chromium",
            "workload": "coldstart",
            "param": f"{self.page}-{self.cache}",
            "n": len(ms),
            "unit": "ms to interactive",
            "ms": ms,
            "median_ms": round(statistics.median(ms), 1),
            "min_ms": min(ms),
            "max_ms": max(ms),
            "median_transferred_bytes": int(statistics.median(v.transferred for v in self.visits)),
            "extra": extra,
        }


async def _visit(context: Any, url: str) -> Visit:
    page = await context.new_page()
    errors: list[str] = []
    left: list[str] = []

    def console(msg: Any) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    def request(req: Any) -> None:
        if not req.url.startswith(LOCAL):
            left.append(req.url)

    page.on("console", console)
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("request", request)
    try:
        await page.goto(url)
        await page.wait_for_selector(
            'body[data-ready="true"]', state="attached", timeout=LOAD_TIMEOUT_MS
        )
    except PlaywrightError as err:
        why = f"not interactive ({err.message}); console errors {errors}"
        raise VisitError(f"{url}: {why}") from err
    ready = await page.evaluate('performance.getEntriesByName("interactive")[0].startTime')
    visit = Visit(ready, await page.evaluate(TRANSFERRED))
    await page.close()
    if errors:
        raise VisitError(f"{url}: console errors {errors}")
    if left:
        raise VisitError(f"{url}: requests left 127.0.0.1: {left}")
    return visit


async def _cold_and_warm(playwright: Any, url: str) -> tuple[Visit, Visit]:
    """A fresh profile: one visit with empty caches, then one in a new tab with warm caches."""
    with tempfile.TemporaryDirectory(prefix="am-coldstart-") as profile:
        context = await playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            cold = await _visit(context, url)
            warm = await _visit(context, url)
        finally:
            await context.close()
    return cold, warm


async def measure(site: Path, reps: int) -> list[Series]:
    """``reps`` cold+warm visits of the demo and of the bare page, alternating."""
    # the demo's own file server (wasm-demo is not a package)
    static_site = runpy.run_path(str(ROOT / "wasm-demo" / "server.py"))["StaticSite"]
    static = static_site(site, {BARE_PATH: BARE_PAGE})

    async def refuse(conn: ServerConnection) -> None:
        await conn.close()

    series = {(page, cache): Series(page, cache) for page in PAGES for cache in ("cold", "warm")}
    async with (
        serve(refuse, "127.0.0.1", 0, process_request=static) as server,
        async_playwright() as playwright,
    ):
        port = server.sockets[0].getsockname()[1]
        for rep in range(reps):
            for page, path in PAGES.items():
                cold, warm = await _cold_and_warm(playwright, f"http://127.0.0.1:{port}{path}")
                series[page, "cold"].visits.append(cold)
                series[page, "warm"].visits.append(warm)
                print(
                    f"  rep {rep + 1}/{reps} {page:<5} cold {cold.ready_ms:7.0f} ms "
                    f"({cold.transferred:,} B)  warm {warm.ready_ms:6.0f} ms "
                    f"({warm.transferred:,} B)  load {loadavg()}",
                    file=sys.stderr,
                    flush=True,
                )
    return list(series.values())


def render(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: median ms to interactive per page and cache state, then the two targets."""
    by = {row["param"]: row for row in rows}
    out = [
        "| page | cache | ms to interactive, median (min..max) | transferred |",
        "|---|---|---|---|",
    ]
    for row in rows:
        page, cache = row["param"].split("-")
        out.append(
            f"| {page} | {cache} | **{row['median_ms']:,.0f}** "
            f"({row['min_ms']:,.0f}..{row['max_ms']:,.0f}, n={row['n']}) "
            f"| {row['median_transferred_bytes']:,} B |"
        )
    ratio = by["demo-cold"]["median_ms"] / by["bare-cold"]["median_ms"]
    warm = by["demo-warm"]["median_ms"]
    out += [
        "",
        "| target | value | goal | verdict |",
        "|---|---|---|---|",
        f"| demo cold / bare loadPyodide cold | {ratio:.2f} | <= 1 "
        f"| {'PASS' if ratio <= 1 else 'FAIL'} |",
        f"| demo warm visit | {warm:,.0f} ms | <= {WARM_TARGET_MS:,.0f} ms "
        f"| {'PASS' if warm <= WARM_TARGET_MS else 'FAIL'} |",
    ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one rep: checks, not timings")
    parser.add_argument("--reps", type=int, default=5, help="cold+warm visits per page")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "coldstart.jsonl")
    parser.add_argument("--site", type=Path, default=SITE, help="the built site (make site)")
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    if reps < 1:
        parser.error("--reps must be at least 1")
    if not (args.site / "index.html").is_file():
        print(f"bench.coldstart: {args.site} has no index.html: run `make site`", file=sys.stderr)
        return 1
    la = loadavg()
    try:
        series = asyncio.run(measure(args.site, reps))
    except VisitError as err:
        print(f"bench.coldstart: {err}", file=sys.stderr)
        return 1
    extra = {"quick": args.quick, "loadavg_before": la, "loadavg_after": loadavg()}
    rows = [s.result(extra) for s in series]
    write_report(args.out, rows, render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
