"""A server process for the crash test (``test_faults.py``): killed with SIGKILL and started again
on the same port with the same SQLite file.

    python tests/rpc/crash_server.py PORT DB

It exposes ``counter`` (a multi state ``Count``). Every run of ``CountState`` is recorded in the
table ``runs``, and the machine's clock in ``machine``, through the idempotency store's
connection: they commit together with the mutation's key, so after a crash the machine, the runs
and the keys agree. Prints the port once it listens.
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncmachine as am
from asyncmachine import rpc


async def main(port: int, db: str) -> None:
    store = rpc.SqliteIdempotency(db)
    conn = store.connection
    conn.execute("CREATE TABLE IF NOT EXISTS runs (n INTEGER)")
    conn.execute("CREATE TABLE IF NOT EXISTS machine (id INTEGER PRIMARY KEY, data TEXT)")
    conn.commit()
    mach = am.Machine({"Count": am.State(multi=True)}, id="counter")
    row = conn.execute("SELECT data FROM machine WHERE id = 1").fetchone()
    if row is not None:
        mach.import_data(json.loads(row[0]))

    class Persist(am.Tracer):
        def transition_end(self, tx: am.Transition) -> None:
            data = json.dumps(mach.export())
            conn.execute("INSERT OR REPLACE INTO machine VALUES (1, ?)", (data,))

    class Runs:
        def CountState(self, e: am.Event) -> None:
            conn.execute("INSERT INTO runs VALUES (?)", (e.args["n"],))

    mach.bind_handlers(Runs())
    mach.bind_tracer(Persist())
    server = rpc.Server([mach], idempotency=store, heartbeat=1.0)
    await server.start(port=port)
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
