"""The records a transition is made of: mutations, transitions, handler events, error args."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from ._result import Executed, Result
from ._time import Time

if TYPE_CHECKING:
    from ._machine import Machine

ERR_ARGS_KEY = "_am__Exception"
"""The args key under which an ``Exception`` transition carries its ``ErrArgs``."""


class MutationType(Enum):
    ADD = "add"
    REMOVE = "remove"
    SET = "set"
    EVAL = "eval"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class MutationSource:
    """Which transition caused a mutation (set by the ``ev_*`` mutation methods), and for a
    mutation that came over RPC, which client, browser tab and ``meta`` (e.g. ``traceparent``)
    sent it; ``mach_id``/``tx_id`` are then empty unless the client sent it from a handler."""

    mach_id: str
    tx_id: str
    mach_time: int
    """The sum of the source transition's ``time_before``."""
    client_id: str | None = None
    tab_id: str | None = None
    meta: dict[str, str] | None = None


@dataclass(slots=True, eq=False)
class Mutation:
    """A request to change states, as queued."""

    type: MutationType
    called: list[str]
    args: dict[str, Any]
    is_auto: bool = False
    is_check: bool = False
    queue_tick: int = 0
    """The queue tick it runs at; 0 for prepended mutations (auto, checks, errors)."""
    source: MutationSource | None = None
    eval_label: str = ""
    """Where an eval came from (evals only)."""
    eval_fn: Callable[[], Any] | None = field(default=None, repr=False)
    internal: bool = field(default=False, repr=False)
    result: Result = field(default=Executed, repr=False)


@dataclass(frozen=True, slots=True)
class PanicInfo:
    """What a raising handler interrupted."""

    handler: str
    called_states: tuple[str, ...]
    states_before: tuple[str, ...]
    transition: Transition


@dataclass(frozen=True, slots=True)
class ErrArgs:
    """The error carried by an ``Exception`` transition (``args[ERR_ARGS_KEY]``)."""

    err: BaseException
    trace: str = ""
    panic: PanicInfo | None = None


class Transition:
    """One dequeued mutation on its way through relations, handlers and the clock.

    ``time_before``/``time_after`` are rebuilt on demand from the machine's clock and the ticks
    this transition changed, so a transition costs nothing per state of the schema. They are exact
    while the transition runs and until the machine's next transition.
    """

    __slots__ = (
        "_id",
        "_machine",
        "_ticks_before",
        "called_states",
        "enters",
        "exits",
        "is_accepted",
        "is_completed",
        "mutation",
        "states_before",
        "target_states",
    )

    def __init__(self, machine: Machine, mutation: Mutation, states_before: list[str]) -> None:
        self._id = ""
        self._machine = machine
        self.mutation = mutation
        self.called_states: list[str] = mutation.called
        self.states_before: list[str] = states_before
        self.target_states: list[str] = []
        self.enters: list[str] = []
        self.exits: list[str] = []
        self.is_accepted = False
        self.is_completed = False
        self._ticks_before: dict[str, int] | None = None
        """Ticks of the changed states before the apply step; None until applied."""

    @property
    def id(self) -> str:
        if not self._id:
            self._id = f"{random.getrandbits(64):016x}"
        return self._id

    @property
    def machine(self) -> Machine:
        return self._machine

    @property
    def is_auto(self) -> bool:
        return self.mutation.is_auto

    @property
    def args(self) -> dict[str, Any]:
        return self.mutation.args

    @property
    def type(self) -> MutationType:
        return self.mutation.type

    @property
    def time_before(self) -> Time:
        mach = self._machine
        if self._ticks_before is None:
            return mach.time()
        before = self._ticks_before
        return Time(before.get(s, t) for s, t in zip(mach.state_names(), mach.time(), strict=True))

    @property
    def time_after(self) -> Time:
        """The clock after this transition; a prediction until it is applied."""
        mach = self._machine
        if self._ticks_before is not None or not self.is_accepted:
            return mach.time()
        bump = dict.fromkeys(self.exits, 1)
        for s in self.enters:
            bump[s] = 2 if s in self.states_before else 1
        now = zip(mach.state_names(), mach.time(), strict=True)
        return Time(t + bump.get(s, 0) for s, t in now)

    def __str__(self) -> str:
        return f"tx#{self.id}\n[{self.mutation.type}] {' '.join(self.called_states)}"

    def __repr__(self) -> str:
        return f"<Transition {self.mutation.type} {' '.join(self.called_states)}>"


class Event:
    """What a handler receives: its name, the machine, the transition and the shared args."""

    __slots__ = ("machine", "name", "transition")

    def __init__(self, machine: Machine, name: str, transition: Transition) -> None:
        self.machine = machine
        self.name = name
        self.transition = transition

    @property
    def args(self) -> dict[str, Any]:
        """The mutation's args: one dict shared by every handler of the transition."""
        return self.transition.mutation.args

    @property
    def mutation(self) -> Mutation:
        return self.transition.mutation

    @property
    def machine_id(self) -> str:
        return self.machine.id

    def is_valid(self) -> bool:
        """True while this event's transition runs and has not been canceled."""
        tx = self.transition
        return self.machine.transition is tx and not tx.is_completed and tx.is_accepted

    def __repr__(self) -> str:
        return f"<Event {self.name}>"
