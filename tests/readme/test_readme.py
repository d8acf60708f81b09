"""Every Python and JS code block of README.md runs as written.

Python blocks run one by one in a fresh interpreter; JS blocks run as ES modules in a fresh page
of headless Chromium at the built site's root (``./asyncmachine.mjs``, ``/pyodide/``). A block
that talks to a server on a fixed address gets a real one from the fixtures below, on a free
port: the only change made to a block is that port. A block that names an address no fixture
serves fails, so a new README section that needs a server comes with its fixture.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if sys.platform == "emscripten":
    pytest.skip("runs interpreters, servers and Chromium", allow_module_level=True)

from support import CHROMIUM, CHROMIUM_ARGS, Watch, serve_files, watch_page

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SITE = ROOT / "build" / "site"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")
COMMENT = re.compile(r"\s(#|//)\s.*$", re.M)


def blocks(language: str) -> list[Any]:
    """README's blocks in ``language``, as pytest params named by their first line number."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        if match.group(1) == language:
            line = text.count("\n", 0, match.start()) + 2
            found.append(pytest.param(match.group(2), id=f"line{line}"))
    return found


@dataclass
class Services:
    """Real servers for the blocks, on one event loop in a thread, by the address the README
    gives them. ``used`` records which ones a block talked to."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    ports: dict[str, int] = field(default_factory=dict)
    """README port -> the port of the fixture's server."""
    checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    """README port -> whether its server saw the block's traffic."""

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def rewrite(self, code: str) -> str:
        """The block with each fixed 127.0.0.1 port replaced by its fixture's."""
        unknown = {p for p in ADDRESS.findall(code) if p != "0" and p not in self.ports}
        assert not unknown, f"no fixture serves 127.0.0.1:{unknown}: add one to tests/readme"
        return ADDRESS.sub(lambda m: f"127.0.0.1:{self.ports.get(m.group(1), 0)}", code)

    def assert_used(self, code: str) -> None:
        """Each server the block's code (not its comments) names saw it."""
        code = COMMENT.sub("", code)
        for port in set(ADDRESS.findall(code)) & set(self.checks):
            assert self.checks[port](), f"the block never reached its server at 127.0.0.1:{port}"


class _LokiPush(http.server.BaseHTTPRequestHandler):
    """Loki's push endpoint: what the Loki block sends (no Loki binary in Debian)."""

    pushes: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/loki/api/v1/push":
            self.pushes.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    pytest.importorskip("websockets")
    import asyncmachine as am
    from asyncmachine import rpc
    from asyncmachine.debugger import DebugServer

    s = Services()
    thread = threading.Thread(target=s.loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Any, Any, Any]:
        orders = am.Machine(
            {"Ready": am.State(), "Busy": am.State(require=["Ready"]), "Audit": am.State()},
            id="orders",
        )
        orders.add1("Ready")
        auth = rpc.tokens({"s3cret": rpc.Principal("ops")})
        server = rpc.Server([orders], authenticate=auth, path="/rpc")
        await server.start("127.0.0.1", 0)
        dbg = DebugServer()
        await dbg.start("127.0.0.1", 0)
        return orders, server, dbg

    orders, server, dbg = s.run(start())
    from bench.natsproc import NatsServer

    nats = NatsServer(monitor=True).start()  # the wheel's nats-server
    loki = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LokiPush)
    threading.Thread(target=loki.serve_forever, daemon=True).start()
    with socket.socket() as free:  # a free port for the block that serves metrics itself
        free.bind(("127.0.0.1", 0))
        spare = free.getsockname()[1]
    s.ports = {
        "8765": server.port,  # the JS remote-machine block's server
        "6831": dbg.port,  # am-dbg
        "3100": loki.server_address[1],
        "9464": spare,  # prometheus.serve_metrics in the block itself
        "4222": nats.port,  # the NATS scale-out block
    }
    s.checks = {
        "8765": lambda: s.run(_read(orders.is1, "Busy")),
        "6831": lambda: "worker" in dbg.session.machines,
        "3100": lambda: bool(_LokiPush.pushes),
        "4222": lambda: nats.varz()["in_msgs"] > 0,
    }
    yield s
    nats.stop()
    loki.shutdown()
    s.run(server.stop())
    s.run(dbg.stop())
    s.loop.call_soon_threadsafe(s.loop.stop)
    thread.join(10)


async def _read(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


@pytest.mark.parametrize("code", blocks("python"))
def test_python_block(code: str, services: Services) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AM_", "OTEL_"))}
    run = subprocess.run(
        [sys.executable, "-c", services.rewrite(code)],
        cwd=ROOT,  # as the README says: blocks run from the repository root (examples/...)
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net: the worker-pool block once took over 120 s at load 9
    )
    assert run.returncode == 0, f"the block failed:\n{run.stdout}\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
    services.assert_used(code)


@dataclass
class Site:
    """The built site on 127.0.0.1, plus the page and module of the block under test; one
    browser context for all blocks, so Pyodide's files come from its cache after the first."""

    url: str
    context: Any
    pages: dict[str, Path]
    watch: Watch


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (SITE / "pyodide" / "pyodide-lock.json").exists():
        pytest.fail("build/site is missing: run `make site` first")
    page_file = tmp_path_factory.mktemp("readme") / "index.html"
    page_file.write_text('<!doctype html><link rel="icon" href="data:,"><title>block</title>')
    pages = {"/readme.html": page_file}
    watch = Watch()

    def local_only(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:")):
            route.continue_()
        else:
            watch.blocked.append(route.request.url)
            route.abort()

    with serve_files(SITE, pages) as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.route("**/*", local_only)
        yield Site(url, context, pages, watch)
        context.close()
        browser.close()


@pytest.mark.parametrize("code", blocks("js"))
def test_js_block(code: str, services: Services, site: Site, tmp_path: Path) -> None:
    module = tmp_path / "block.mjs"
    module.write_text(services.rewrite(code), encoding="utf-8")
    name = f"/readme-{tmp_path.name}.mjs"
    site.pages[name] = module
    page = watch_page(site.context.new_page(), site.watch)
    logged: list[str] = []
    page.on("console", lambda msg: logged.append(msg.text))
    page.goto(f"{site.url}/readme.html")
    # the import settles once the module's top-level awaits are done, or rejects
    page.evaluate(f"import({name!r}).then(() => null)")
    page.evaluate("localStorage.clear()")
    page.close()
    site.watch.check()
    assert logged, "the block logged nothing"
    services.assert_used(code)
