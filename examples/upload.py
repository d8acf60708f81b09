"""A file upload as a multi-state machine: relations, handlers, an auto state and waiters.

Run it with ``make demo`` (or ``python examples/upload.py``); it prints the machine's log and ends
by itself.
"""

from __future__ import annotations

import asyncio

import asyncmachine as am


class States(am.StatesBase):
    Selected: str
    Uploading: str
    Paused: str
    Done: str
    Busy: str
    ErrUpload: str


ss = States()

SCHEMA: am.Schema = {
    ss.Selected: am.State(),
    # Uploading needs a selected file; it ends Done and Paused
    ss.Uploading: am.State(require=(ss.Selected,), remove=(ss.Done, ss.Paused)),
    ss.Paused: am.State(require=(ss.Selected,), remove=(ss.Uploading,)),
    ss.Done: am.State(remove=(ss.Uploading, ss.Paused)),
    # Busy follows Uploading on its own (an auto state)
    ss.Busy: am.State(auto=True, require=(ss.Uploading,)),
    ss.ErrUpload: am.State(require=(am.EXCEPTION,)),
}


class Handlers(am.ExceptionHandler):
    """Negotiation (``Enter``) decides; final handlers (``State``) do the work."""

    def __init__(self) -> None:
        self.sent = 0
        self.size = 3

    def UploadingEnter(self, e: am.Event) -> bool:
        # refuse to upload an empty file: the mutation is canceled
        return bool(e.args.get("size", self.size))

    async def UploadingState(self, e: am.Event) -> None:
        # runs as a task bound to the state: pausing cancels it
        mach = e.machine
        while self.sent < self.size:
            await asyncio.sleep(0.01)
            self.sent += 1
            mach.log(f"chunk {self.sent}/{self.size}")
        mach.add1(ss.Done)


async def main() -> None:
    mach = am.Machine(
        SCHEMA,
        id="upload",
        log_level=am.LogLevel.CHANGES,
        logger=lambda level, msg: print(msg),
    )
    mach.verify_states(ss.names())
    mach.bind_handlers(Handlers())

    print("can upload before a file is selected:", mach.can_add1(ss.Uploading) == am.Executed)
    mach.add1(ss.Selected)
    mach.add1(ss.Uploading)
    print(mach.string_all())

    await mach.when1(ss.Busy)
    await asyncio.sleep(0.015)
    mach.add1(ss.Paused)  # Remove relation: Uploading (and so Busy) end
    print("paused:", mach.string_all())
    mach.add1(ss.Uploading)  # resumes: a new task for the new state instance
    await mach.when1(ss.Done)
    print("done:", mach.string_all())
    print("machine time:", sum(mach.time()))


if __name__ == "__main__":
    asyncio.run(main())
