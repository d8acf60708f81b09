"""Host and gateway processes for the NATS tests; the first stdout line is JSON saying it is up.

    python procs.py host NATS_URL MACHINE_ID [--sqlite PATH]
    python procs.py gateway NATS_URL [--token TOKEN]

A host serves a machine whose ``Hit`` handler counts every run (in the SQLite file when given,
in the same transaction as the idempotency key); ``Report`` writes the count and the clock to the
file named by its ``path`` arg. Both run until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from typing import Any

import asyncmachine as am
from asyncmachine import rpc

SCHEMA: am.Schema = {
    "Ready": am.State(),
    "Busy": am.State(require=("Ready",)),
    "Hit": am.State(multi=True),
    "Report": am.State(multi=True),
}


class Handlers:
    def __init__(self, db: sqlite3.Connection | None) -> None:
        self.db = db
        self.runs = 0
        if db is not None:
            db.execute("CREATE TABLE IF NOT EXISTS hits (c TEXT, n INTEGER)")
            db.commit()

    def HitState(self, e: am.Event) -> None:
        self.runs += 1
        if self.db is not None:
            args = e.args or {}
            self.db.execute("INSERT INTO hits VALUES (?, ?)", (str(args.get("c")), args.get("n")))

    def ReportState(self, e: am.Event) -> None:
        mach = e.machine
        report: dict[str, Any] = {"time": list(mach.time()), "runs": self.runs}
        if self.db is not None:
            rows = self.db.execute("SELECT c, n, COUNT(*) FROM hits GROUP BY c, n").fetchall()
            report["rows"] = len(rows)
            report["dupes"] = sum(1 for row in rows if row[2] > 1)
        with open(str((e.args or {})["path"]), "w") as f:
            json.dump(report, f)


async def host(url: str, machine_id: str, sqlite: str | None) -> None:
    mach = am.Machine(SCHEMA, id=machine_id)
    store = rpc.SqliteIdempotency(sqlite) if sqlite else None
    mach.bind_handlers(Handlers(store.connection if store is not None else None))
    mach.add1("Ready")
    served = await rpc.nats.expose(mach, url, idempotency=store)
    print(json.dumps({"host": served.id}), flush=True)
    await _until_terminated()
    await served.close()


async def gateway(url: str, token: str | None) -> None:
    authenticate = None
    if token is not None:
        viewer = rpc.Principal("viewer", default=rpc.Policy(write=False))
        table = {token: rpc.Principal("writer"), "view": viewer}
        authenticate = rpc.tokens(table)
    server = rpc.Server(nats=url, authenticate=authenticate)
    await server.start("127.0.0.1", 0)
    print(json.dumps({"port": server.port}), flush=True)
    await _until_terminated()
    await server.stop()


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


def main(argv: list[str]) -> None:
    kind, url = argv[0], argv[1]
    if kind == "host":
        sqlite = argv[argv.index("--sqlite") + 1] if "--sqlite" in argv else None
        asyncio.run(host(url, argv[2], sqlite))
    else:
        token = argv[argv.index("--token") + 1] if "--token" in argv else None
        asyncio.run(gateway(url, token))


if __name__ == "__main__":
    main(sys.argv[1:])
