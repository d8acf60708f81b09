"""``am-dbg [--listen HOST:PORT] [--import FILE] [--export FILE] [--max-transitions N]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from . import _files
from ._messages import MessageError
from ._session import DEFAULT_MAX_TRANSITIONS, Session

DEFAULT_LISTEN = "127.0.0.1:6831"


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="am-dbg",
        description="The asyncmachine inspector: receives machines (telemetry.debug, "
        "AM_DBG_ADDR) and serves a web page to step through their transitions.",
    )
    p.add_argument(
        "--listen",
        type=_listen,
        default=_listen(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"where to listen (default {DEFAULT_LISTEN}); the page is at http://HOST:PORT/, "
        "machines stream to ws://HOST:PORT/dbg",
    )
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="FILE",
        help="load a session file (.jsonl.gz or .jsonl) first; repeatable",
    )
    p.add_argument("--export", metavar="FILE", help="write the session to FILE when am-dbg stops")
    p.add_argument(
        "--max-transitions",
        type=_positive,
        default=DEFAULT_MAX_TRANSITIONS,
        metavar="N",
        help="transitions kept per machine, the oldest go first "
        f"(default {DEFAULT_MAX_TRANSITIONS})",
    )
    return p


async def serve(args: argparse.Namespace, session: Session) -> None:
    from ._server import DebugServer

    server = DebugServer(session)
    host, port = args.listen
    try:
        await server.start(host, port)
    except OSError as err:
        raise SystemExit(f"am-dbg: cannot listen on {host}:{port}: {err.strerror}") from None
    print(f"am-dbg: inspector at {server.url}", flush=True)
    print(f"am-dbg: machines stream to ws://{server.addr}/dbg (AM_DBG_ADDR={server.addr})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import websockets  # noqa: F401
    except ImportError:
        print("am-dbg needs websockets: pip install 'asyncmachine[telemetry]'", file=sys.stderr)
        return 2
    session = Session(args.max_transitions)
    for path in args.imports:
        try:
            added = session.load(_files.read(path), path)
        except MessageError as err:
            print(f"am-dbg: cannot import: {err}", file=sys.stderr)
            return 2
        print(f"am-dbg: imported {added} machines from {path}")
    try:
        asyncio.run(serve(args, session))
    finally:
        if args.export:
            size = _files.write(args.export, session.lines())
            print(f"am-dbg: wrote {len(session.machines)} machines to {args.export} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
