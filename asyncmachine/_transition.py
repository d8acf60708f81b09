"""The records a transition is made of: mutations, transitions, explanations and error args."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ._clock import Clock, Order, Snapshot
from ._result import Result
from ._time import Time

ERR_ARGS_KEY = "_am__Exception"
"""The args key under which an ``Exception`` transition carries its ``ErrArgs``."""


class MutationType(Enum):
    """What a mutation asks for (docs/semantics.md#mutations)."""

    ADD = "add"
    REMOVE = "remove"
    SET = "set"
    EVAL = "eval"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class MutationSource:
    """Which transition caused a mutation, for tracers and debuggers to link cause and effect.

    Set by the ``ev_*`` mutation methods (docs/semantics.md#mutations). For a mutation that came
    over RPC it also says which client, browser tab and ``meta`` (e.g. ``traceparent``) sent it;
    ``mach_id``/``tx_id`` are then empty unless the client sent it from a handler.
    """

    mach_id: str
    tx_id: str
    mach_time: int
    """The sum of the source transition's ``time_before``."""
    client_id: str | None = None
    tab_id: str | None = None
    meta: dict[str, str] | None = None


@dataclass(slots=True, eq=False)
class Mutation:
    """A request to change states, as queued (docs/semantics.md#queue)."""

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
    """Runs even while the machine is disposing (the ``Start`` removal of ``dispose()``)."""


MutationFields = tuple[
    MutationType, list[str], dict[str, Any], bool, bool, int, "MutationSource | None"
]
"""``Mutation``'s first fields, in order: what an idle, unqueued mutation is until asked for."""

_current: ContextVar[Transition | None] = ContextVar("asyncmachine_transition", default=None)


def current_transition() -> Transition | None:
    """The transition whose handlers are running in this context, or ``None``.

    Set while negotiation and final handlers run, and inherited by the tasks those handlers start
    (an ``async def`` final handler, ``mach.fork()``), so code far from the handler can tell
    which transition caused it (docs/semantics.md#handlers).
    """
    return _current.get()


class Transition:
    """One dequeued mutation on its way through relations, handlers and the clock.

    The list fields are copies, made when read. ``time_before``/``time_after`` are rebuilt from
    the machine's clock and the states this transition changed, so a transition costs nothing per
    state of the schema; they are exact while it runs and until the machine's next transition.
    """

    __slots__ = (
        "_applied",
        "_before",
        "_clock",
        "_enters",
        "_exits",
        "_id",
        "_machine",
        "_mutation",
        "_rolled_back",
        "_target",
        "is_accepted",
        "is_completed",
        "machine_id",
    )

    def __init__(
        self,
        machine: Any,
        machine_id: str,
        clock: Clock,
        mutation: Mutation | MutationFields,
        before: Order | Snapshot,
    ) -> None:
        self._id = ""
        self._machine = machine
        self.machine_id = machine_id
        """The id of the machine this transition runs on."""
        self._clock = clock
        self._mutation = mutation
        self._before = before
        self._target: Order | None = None
        """``None`` until resolved; also after an add or remove without relations, whose target
        follows from ``_before`` and the mutation (computed when read)."""
        self._enters: Sequence[str] = ()
        self._exits: Sequence[str] = ()
        self.is_accepted = False
        """Still going ahead: relations and negotiation handlers let it through."""
        self.is_completed = False
        """It has ended (applied, or canceled)."""
        self._applied = False
        self._rolled_back: Sequence[str] = ()
        """Entered states deactivated again after a final handler raised."""

    @property
    def id(self) -> str:
        """16 random hex characters, made on first use."""
        if not self._id:
            self._id = f"{random.getrandbits(64):016x}"
        return self._id

    @property
    def mutation(self) -> Mutation:
        """The mutation being processed."""
        mut = self._mutation
        if type(mut) is tuple:  # an idle mutation nobody queued: made when first asked for
            mut = self._mutation = Mutation(*mut)
        return mut  # type: ignore[return-value]

    @property
    def machine(self) -> Any:
        """The ``am.Machine`` this transition runs on (typed ``Any`` to keep this module below
        the machine in the import graph)."""
        return self._machine

    @property
    def called_states(self) -> list[str]:
        """The states the mutation named."""
        return list(self._mutation[1] if type(self._mutation) is tuple else self.mutation.called)

    @property
    def target_states(self) -> list[str]:
        """The states active after this transition, as resolved (docs/semantics.md#relations)."""
        return list(self._target_order())

    @property
    def states_before(self) -> list[str]:
        """The states active when it started."""
        return list(self._before_order())

    def _before_order(self) -> Order:
        before = self._before
        if isinstance(before, Snapshot):
            before = self._before = before.order()
        return before

    def _target_order(self) -> Order:
        target = self._target
        if target is None:
            before, mut = self._before_order(), self.mutation
            if mut.type is MutationType.REMOVE:
                gone = set(self._exits)
                target = tuple(s for s in before if s not in gone)
            else:
                called = mut.called
                target = (*called, *(s for s in before if s not in called))
            self._target = target
        return target

    @property
    def enters(self) -> list[str]:
        """The states it activates (and called Multi states it re-activates), in order."""
        return list(self._enters)

    @property
    def exits(self) -> list[str]:
        """The states it deactivates, in order."""
        return list(self._exits)

    @property
    def is_auto(self) -> bool:
        """An auto transition, queued by the machine for its auto states."""
        return self.mutation.is_auto

    @property
    def args(self) -> dict[str, Any]:
        """The mutation's args (one dict, shared by every handler)."""
        return self.mutation.args

    @property
    def type(self) -> MutationType:
        """The mutation's type."""
        return self.mutation.type

    @property
    def source(self) -> MutationSource | None:
        """The transition that caused this one's mutation, when known."""
        return self.mutation.source

    def _bumps(self) -> dict[str, int]:
        """How much each changed state ticks: 1, or 2 for a Multi re-entry."""
        before = self._before_order()
        bump = dict.fromkeys(self._exits, 1)
        for s in self._enters:
            bump[s] = 2 if s in before else 1
        for s in self._rolled_back:
            bump[s] += 1
        return bump

    @property
    def time_before(self) -> Time:
        """The clock when it started (``state_names()`` order)."""
        clock = self._clock
        if not self._applied:
            return clock.time()
        bump = self._bumps()
        return Time(clock.ticks[s] - bump.get(s, 0) for s in clock.names)

    @property
    def time_after(self) -> Time:
        """The clock after it; a prediction until it is applied, the current one if canceled."""
        clock = self._clock
        if self._applied or not self.is_accepted:
            return clock.time()
        bump = self._bumps()
        return Time(clock.ticks[s] + bump.get(s, 0) for s in clock.names)

    def __str__(self) -> str:
        return f"tx#{self.id}\n[{self.mutation.type}] {' '.join(self.mutation.called)}"

    def __repr__(self) -> str:
        return f"<Transition {self.mutation.type} {' '.join(self.mutation.called)}>"


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a mutation would be executed or canceled: a dry run that changes nothing.

    ``target`` is the resolved target (also when a handler would cancel); ``rejected`` lists the
    called states the relations drop, each with a reason naming the other state (``"requires
    Bar"``, ``"removed by Bar"``); see docs/semantics.md#explanations.
    """

    result: Result
    target: list[str]
    added: list[str]
    removed: list[str]
    canceled_by: str | None = None
    """The negotiation handler that returned ``False`` (or raised), if one did."""
    rejected: list[tuple[str, str]] = field(default_factory=list)


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
    logged: bool = False
    """The machine already logged it (a handler or a task raised it)."""
