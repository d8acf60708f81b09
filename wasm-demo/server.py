"""The upload demo's server: the static site and the shared ``upload`` machine on one port.

    python wasm-demo/server.py --site build/site --port 8000

Plain HTTP requests get the site's files; WebSocket connections to ``/rpc`` reach the machine
(``upload-schema.json``), so every tab in remote mode (``?mode=remote``) drives the same machine.
The upload itself is simulated here, in Python, and its progress is pushed to the tabs as payloads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email.utils
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

import asyncmachine as am
from asyncmachine import rpc, telemetry
from asyncmachine.debugger import DebugServer

log = logging.getLogger("asyncmachine.demo")

HERE = Path(__file__).resolve().parent
SCHEMA = am.schema_from_dict(json.loads((HERE / "upload-schema.json").read_text("utf-8")))
MACHINE_ID = "upload"
RPC_PATH = "/rpc"

# the simulated upload; uploader.mjs runs the same one in local mode
LIMIT = 20 * 1024 * 1024
CHUNKS = 20
CHUNK_DELAY = 0.15
STOP_WAIT = 1.0
"""Seconds ``stop()`` waits for connections to close."""

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".ts": "text/plain; charset=utf-8",
}
PRECOMPRESSED = {"br": ".br", "gzip": ".gz"}
"""Content codings served from the siblings tools/precompress.py writes, best first."""
RUNTIME_CACHE = "public, max-age=604800"
RUNTIME_SUFFIXES = (".wasm", ".mjs", ".js", ".zip")
"""Files of /pyodide/ that change only with Pyodide's version (as in netlify.toml); the rest is
revalidated on every use (its ETag answers 304 while the file is unchanged)."""


class UploadStates(am.StatesBase):
    Selecting: str
    Selected: str
    Uploading: str
    Busy: str
    Progress: str
    Paused: str
    Done: str
    Online: str
    Offline: str
    ErrUpload: str


ss = UploadStates()


@dataclass(frozen=True)
class File:
    """A file a page selected: only its name and size travel, the bytes are simulated."""

    name: str
    size: int
    flaky: bool = False
    """The connection drops once halfway through (the demo's way to show ``ErrUpload``)."""

    @classmethod
    def from_args(cls, value: object) -> File | None:
        """The ``file`` arg of ``Selected``, or None when a page sent something malformed."""
        if not isinstance(value, dict):
            return None
        name, size, flaky = value.get("name"), value.get("size"), value.get("flaky", False)
        if not isinstance(name, str) or not 0 < len(name) <= 255:
            return None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return None
        if not isinstance(flaky, bool):
            return None
        return cls(name, size, flaky)

    def refusal(self) -> str | None:
        """Why this file can't be uploaded, if it can't."""
        if self.size == 0:
            return f"{self.name} is empty"
        if self.size > LIMIT:
            return f"{self.name} is {self.size / 2**20:.1f} MB, over the {LIMIT >> 20} MB limit"
        return None


class Uploader(am.ExceptionHandler):
    """Handlers of the shared machine: negotiation guards the upload, ``UploadingState`` does it."""

    def __init__(self, publish: Callable[[dict[str, Any]], None]) -> None:
        self.file: File | None = None
        self.sent = 0
        self.dropped = False
        """The flaky file already dropped its connection (it does so once)."""
        self.resume = False
        """The network went away mid-upload: going online resumes it."""
        self._publish = publish

    def status(self) -> dict[str, Any]:
        """What the tabs show besides the states: the file and its progress."""
        file = None
        if self.file is not None:
            file = {"name": self.file.name, "size": self.file.size, "flaky": self.file.flaky}
        return {"file": file, "sent": self.sent}

    def SelectedEnter(self, e: am.Event) -> bool:
        return File.from_args(e.args.get("file")) is not None

    def SelectedState(self, e: am.Event) -> None:
        self.file = File.from_args(e.args.get("file"))
        self.sent = 0
        self.dropped = self.resume = False
        self._publish(self.status())
        e.machine.ev_add1(e, ss.Uploading)  # uploads start on selection

    def UploadingEnter(self, e: am.Event) -> bool:
        reason = "no file selected" if self.file is None else self.file.refusal()
        if reason is not None:
            e.machine.log(f"refused: {reason}")
        return reason is None

    async def UploadingState(self, e: am.Event) -> None:
        # a task bound to this activation of Uploading: Paused, Offline or a new file cancel it
        mach, file = e.machine, self.file
        if file is None:
            return
        if self.sent >= file.size:
            self.sent = 0
        chunk = -(-file.size // CHUNKS)
        while self.sent < file.size:
            await asyncio.sleep(CHUNK_DELAY)
            if file.flaky and not self.dropped and self.sent >= file.size // 2:
                self.dropped = True
                err = ConnectionResetError(f"connection reset at {100 * self.sent // file.size}%")
                mach.add_err_state(ss.ErrUpload, err)
                return
            self.sent = min(file.size, self.sent + chunk)
            mach.add1(ss.Progress, {"sent": self.sent})
            self._publish(self.status())
        mach.add1(ss.Done)

    def UploadingEnd(self, e: am.Event) -> None:
        self.resume = ss.Offline in e.transition.enters

    def PausedEnter(self, e: am.Event) -> bool:
        return ss.Uploading in e.transition.states_before

    def OnlineState(self, e: am.Event) -> None:
        if self.resume:
            self.resume = False
            e.machine.ev_add1(e, ss.Uploading)


class StaticSite:
    """The ``process_request`` hook of the RPC server: plain GETs get files from ``root``
    (nothing outside it), WebSocket upgrades to ``/rpc`` from the same origin go through."""

    def __init__(self, root: Path, generated: dict[str, bytes] | None = None) -> None:
        self.root = root.resolve()
        self.generated = generated or {}
        """Paths answered with these bytes instead of a file (typed by the path's suffix)."""

    def __call__(self, conn: ServerConnection, request: Request) -> Response | None:
        if getattr(request, "method", "GET") != "GET":  # older websockets parse only GETs
            return conn.respond(HTTPStatus.METHOD_NOT_ALLOWED, "only GET requests are served\n")
        path = unquote(urlsplit(request.path).path)
        if request.headers.get("Upgrade", "").lower() == "websocket" or path == RPC_PATH:
            # the RPC server answers the rest (a plain GET of /rpc: 426, which a page's
            # connect error check reads as "the endpoint is there")
            if path != RPC_PATH:
                return conn.respond(HTTPStatus.NOT_FOUND, f"WebSockets connect to {RPC_PATH}\n")
            origin = request.headers.get("Origin")
            host = request.headers.get("Host", "")
            if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
                log.warning("refused origin %s (the demo serves %s only)", origin, host)
                return conn.respond(HTTPStatus.FORBIDDEN, "cross-origin WebSocket refused\n")
            return None
        if path in self.generated:
            return _response(self.generated[path], _content_type(path))
        file = self.resolve(path)
        if file is None:
            return conn.respond(HTTPStatus.NOT_FOUND, "not found\n")
        return self.file_response(path, file, request.headers)

    def file_response(self, path: str, file: Path, request: Headers) -> Response:
        """``file``, or its precompressed sibling when the request accepts that coding (a ``.gz``
        file is its own); 304 when ``If-None-Match`` holds the ETag of what it would get."""
        siblings = {
            coding: sibling
            for coding, suffix in PRECOMPRESSED.items()
            if (sibling := file.with_name(file.name + suffix)).is_file()
        }
        accept = request.get("Accept-Encoding", "")
        if file.suffix == ".gz" and choose_coding(accept, ["gzip"]):
            # gzip data itself (the memory snapshot), announced as such, as Apache does: the
            # browser inflates it while it arrives, off the page's thread
            siblings, file = {"gzip": file}, file.with_suffix("")
        coding = choose_coding(accept, list(siblings))
        variant = siblings[coding] if coding else file
        stat = variant.stat()
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}{"-" + coding if coding else ""}"'
        cache = RUNTIME_CACHE if _is_runtime(path) else "no-cache"
        headers = [("ETag", etag), ("Cache-Control", cache), ("Vary", "Accept-Encoding")]
        if etag in _etags(request.get("If-None-Match", "")):
            return _response(None, None, headers, HTTPStatus.NOT_MODIFIED)
        if coding:
            headers.append(("Content-Encoding", coding))
        return _response(variant.read_bytes(), _content_type(file.name), headers)

    def resolve(self, path: str) -> Path | None:
        """The file for a URL path (a folder means its index.html), or None."""
        if "\0" in path:
            return None
        file = (self.root / path.lstrip("/")).resolve()
        if not file.is_relative_to(self.root):
            return None
        if file.is_dir():
            file = file / "index.html"
        return file if file.is_file() else None


def choose_coding(accept_encoding: str, available: Sequence[str]) -> str | None:
    """The coding of ``available`` (best first) that an ``Accept-Encoding`` value prefers, or
    None for the file as it is. ``q=0`` refuses a coding; ``*`` stands for the unnamed ones."""
    accepted: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding:
            accepted[coding.lower()] = q
    best, best_q = None, 0.0
    for coding in available:
        q = accepted.get(coding, accepted.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def _etags(if_none_match: str) -> set[str]:
    """The entity tags of an ``If-None-Match`` value (weakly compared, as RFC 9110 says)."""
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",") if tag.strip()}


def _is_runtime(path: str) -> bool:
    return path.startswith("/pyodide/") and path.endswith(RUNTIME_SUFFIXES)


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def _response(
    body: bytes | None,
    content_type: str | None,
    headers: Sequence[tuple[str, str]] = (("Cache-Control", "no-cache"),),
    status: HTTPStatus = HTTPStatus.OK,
) -> Response:
    """A response that closes its connection; ``body`` None for a 304."""
    fields = [("Date", email.utils.formatdate(usegmt=True))]
    if body is not None and content_type is not None:
        fields += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    fields += [*headers, ("Connection", "close")]
    return Response(status.value, status.phrase, Headers(fields), body or b"")


@dataclass
class DemoServer:
    """A running demo server."""

    url: str
    """Where browsers open the page, e.g. ``http://127.0.0.1:8000/``."""
    machine: am.Machine
    rpc: rpc.Server
    inspector: DebugServer | None = None
    """am-dbg, which the machine (and local-mode pages) stream to: "Inspect the machine"."""

    async def stop(self) -> None:
        """Close the connections, stop listening and dispose the machine (ending its upload)."""
        for tracer in self.machine.tracers():
            if isinstance(tracer, telemetry.DebugTracer) and tracer.stream is not None:
                await tracer.stream.close()
        if self.inspector is not None:
            await self.inspector.stop()
        # a browser's idle spare connection would hold this for websockets' 10 s opening timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.rpc.stop(), STOP_WAIT)
        self.machine.dispose()


async def serve(
    site: Path, host: str = "127.0.0.1", port: int = 0, inspector: bool = True
) -> DemoServer:
    """Serve ``site`` (a ``make site`` build) and the shared machine on ``host:port``
    (port 0 picks a free one); ``inspector`` also runs am-dbg on a free port of ``host``."""
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site}/index.html is missing: build the site with `make site`")
    dbg = None
    found: dict[str, str] = {"rpc": RPC_PATH}
    if inspector:
        dbg = DebugServer()
        await dbg.start(host, 0)
        found["dbg"] = dbg.url
    # static hosting serves the site's own demo-server.json, which says there is no server
    server = rpc.Server(http=StaticSite(site, {"/demo-server.json": json.dumps(found).encode()}))

    def publish(status: dict[str, Any]) -> None:
        server.send_payload("upload", status, machine=MACHINE_ID)

    def forward_log(level: am.LogLevel, msg: str) -> None:
        tx = mach.transition
        if tx is None or not tx.mutation.is_check:  # the tabs' canAdd1 dry runs stay quiet
            server.send_payload("log", msg, machine=MACHINE_ID)

    mach = am.Machine(SCHEMA, id=MACHINE_ID, log_level=am.LogLevel.OPS, logger=forward_log)
    mach.verify_states(ss.names())
    if dbg is not None:
        telemetry.debug(mach, dbg.addr)
    uploader = Uploader(publish)
    mach.bind_handlers(uploader)
    mach.add1(ss.Online)
    server.expose(mach)
    server.mach.bind_handlers(Greeter(server, uploader))
    await server.start(host, port)
    return DemoServer(f"http://{server.host}:{server.port}/", mach, server, dbg)


class Greeter:
    """Handlers of the RPC server's own machine: a tab that just subscribed learns the file and
    its progress (the clock it already has), right after its snapshot."""

    def __init__(self, server: rpc.Server, uploader: Uploader) -> None:
        self.server = server
        self.uploader = uploader

    def ClientSubscribedState(self, e: am.Event) -> None:
        if e.args["machine_id"] == MACHINE_ID:
            status = self.uploader.status()
            self.server.send_payload("upload", status, session=e.args["session_id"])


async def _run(site: Path, host: str, port: int) -> None:
    demo = await serve(site, host, port)
    print(f"upload demo: {demo.url} (open {demo.url}?mode=remote in several tabs)", flush=True)
    if demo.inspector is not None:
        print(f"inspector (am-dbg): {demo.inspector.url}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await demo.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The upload demo: the site and the shared machine on one port."
    )
    parser.add_argument("--site", type=Path, default=Path("build/site"), help="the built site")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_run(args.site, args.host, args.port))
    except OSError as err:  # no site, or the port is taken
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
