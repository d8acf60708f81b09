"""A small system of machines for the inspector's tests and screenshots: a page asks an upload
server for a file, the server hands it to a worker; handlers negotiate, one refuses, one fails."""

from __future__ import annotations

from typing import Any

import asyncmachine as am
from asyncmachine import telemetry

PAGE = {
    "Ready": am.State(),
    "Selecting": am.State(remove=("Uploading",)),
    "Uploading": am.State(require=("Ready",), remove=("Selecting", "Done")),
    "Done": am.State(remove=("Uploading",)),
}
SERVER = {
    "Start": am.State(),
    "Ready": am.State(auto=True, require=("Start",)),
    "Receiving": am.State(require=("Ready",), add=("Busy",), remove=("Idle",)),
    "Busy": am.State(remove=("Idle",)),
    "Idle": am.State(auto=True, require=("Ready",), remove=("Busy",)),
    "Stored": am.State(remove=("Receiving",)),
    "ErrDisk": am.State(require=("Exception",)),
}
WORKER = {
    "Working": am.State(remove=("Idle",)),
    "Idle": am.State(remove=("Working",)),
    "Thumbnail": am.State(require=("Working",)),
    "Scanned": am.State(multi=True),
}


class PageHandlers:
    def __init__(self, server: am.Machine) -> None:
        self.server = server

    def UploadingState(self, e: am.Event) -> None:
        self.server.ev_add1(e, "Receiving", {"name": e.args.get("name", "")})


class ServerHandlers:
    def __init__(self, worker: am.Machine) -> None:
        self.worker = worker
        self.refuse = True

    def ReceivingEnter(self, e: am.Event) -> bool:
        refuse, self.refuse = self.refuse, False  # the first upload is refused
        return not refuse

    def ReceivingState(self, e: am.Event) -> None:
        self.worker.ev_add1(e, "Working", {"name": e.args.get("name", "")})

    def StoredState(self, e: am.Event) -> None:
        if e.args.get("name") == "broken.bin":
            raise OSError("disk full")


class WorkerHandlers:
    def WorkingState(self, e: am.Event) -> None:
        e.machine.ev_add1(e, "Thumbnail")
        e.machine.ev_add1(e, "Scanned")


def run(addr: str, rounds: int = 3) -> dict[str, Any]:
    """Build the machines, stream them to ``addr`` and run ``rounds`` uploads."""
    changes = am.LogLevel.CHANGES
    server = am.Machine(SERVER, id="upload-server", tags=["rpc-server"], log_level=changes)
    worker = am.Machine(WORKER, id="thumbs-worker", parent=server)
    page = am.Machine(PAGE, id="browser-page", log_level=changes)
    tracers = [telemetry.debug(m, addr) for m in (server, worker, page)]
    server.set_args_mapper(am.new_log_args_mapper())
    page.set_args_mapper(am.new_log_args_mapper())
    server.bind_handlers(ServerHandlers(worker))
    worker.bind_handlers(WorkerHandlers())
    page.bind_handlers(PageHandlers(server))
    server.add1("Start")
    page.add1("Ready")
    names = ["report.pdf", "photo.jpg", "broken.bin", "notes.txt"]
    for n in range(rounds):
        name = names[n % len(names)]
        page.add1("Selecting")
        page.add1("Uploading", {"name": name})
        server.add1("Stored", {"name": name})
        worker.set(["Idle"])
        server.remove(["Busy", "Stored"])
        page.add1("Done")
    page.add1("Uploading")  # needs Ready: fine; then canceled by relations below
    page.remove1("Ready")
    page.add1("Uploading", {"name": "late.txt"})  # rejected: requires Ready
    return {"server": server, "worker": worker, "page": page, "tracers": tracers}


async def streamed(addr: str, rounds: int = 3) -> dict[str, Any]:
    """``run``, then wait until am-dbg has every transition."""
    out = run(addr, rounds)
    for tracer in out["tracers"]:
        assert await tracer.flush(), "am-dbg did not get the stream"
    return out
