"""Resolution steps of a finished transition, derived from the schema and what the engine reported.

The engine does not log its reasoning as data; everything needed to reconstruct it is public: the
schema, the called states, the states before and after, and which handlers ran. Each step says
which relation or handler did what, in the order a reader follows the resolution: relations
(adds, then removals, then rejections, then ordering), handlers as they ran, then the changes.
Pure functions of plain data, so the inspector's view of a transition is tested without a socket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._schema import State

Step = dict[str, Any]
"""``{"kind": "rel", "rel": "add", "from": "A", "to": "B", "effect": "activate"}`` and the like
(the step kinds are listed in docs/debugger.md)."""

FINAL_SUFFIXES = ("State", "End")


@dataclass(frozen=True, slots=True)
class TxFacts:
    """What one transition did, as reported through the public tracer hooks."""

    type: str
    called: Sequence[str]
    before: Sequence[str]
    target: Sequence[str]
    enters: Sequence[str]
    exits: Sequence[str]
    ticks: Mapping[str, int]
    """The ticks of the states whose clock moved, after the transition."""
    accepted: bool
    applied: bool
    """The clock changed: accepted, or rolled back after a final handler raised."""
    auto: bool
    handlers: Sequence[str]
    """Handler names in the order they ran (negotiation and final)."""
    raised: Sequence[str]
    """Handlers that raised an exception."""


def is_final(name: str, states: Mapping[str, State]) -> bool:
    """``FooState``, ``FooEnd`` and ``AnyState`` run after the change and cannot cancel it."""
    if name == "AnyState":
        return True
    return any(name.endswith(sfx) and name[: -len(sfx)] in states for sfx in FINAL_SUFFIXES)


def canceled_by(facts: TxFacts, states: Mapping[str, State]) -> str | None:
    """The negotiation handler that cancelled a transition, if one did (it ran last)."""
    if facts.accepted or not facts.handlers:
        return None
    last = facts.handlers[-1]
    return None if is_final(last, states) else last


def resolution_steps(facts: TxFacts, states: Mapping[str, State]) -> list[Step]:
    """The steps of one transition, for the inspector (see the module docstring)."""
    steps: list[Step] = []
    before = set(facts.before)
    target = set(facts.target)
    called = list(facts.called)
    called_set = set(called)
    removing = facts.type == "remove"

    def rel(kind: str, src: str, dst: str, effect: str) -> None:
        steps.append({"kind": "rel", "rel": kind, "from": src, "to": dst, "effect": effect})

    # add: states implied by a called or implied state's `add` (transitively), as the resolver
    # follows them; an active non-Multi state's `add` is not re-applied
    implied: dict[str, str] = {}
    if not removing:
        queue = list(called)
        seen = set(called)
        i = 0
        while i < len(queue):
            name = queue[i]
            i += 1
            state = states.get(name)
            if state is None or (name in before and not state.multi):
                continue
            for x in state.add:
                if x in seen or x not in states:
                    continue
                seen.add(x)
                implied[x] = name
                queue.append(x)
        for x, adder in implied.items():
            if x in target:
                rel("add", adder, x, "activate" if x not in before else "keep")

    # remove: active states that left (or would have, when a handler cancelled), and why
    for s in facts.exits:
        if removing and s in called_set:
            continue  # removed because it was called: no relation involved
        blocker = next((b for b in facts.target if s in _rel(states, b, "remove")), None)
        if blocker is not None:
            rel("remove", blocker, s, "deactivate")
            continue
        missing = next((r for r in _rel(states, s, "require") if r not in target), None)
        if missing is not None:
            rel("require", s, missing, "deactivate")
        elif facts.type == "set":
            steps.append({"kind": "unset", "state": s})

    # rejections: called (or implied) states that did not make it into the target
    if not removing:
        for s in [*called, *(x for x in implied if x not in called_set)]:
            if s in target or s not in states:
                continue
            blocker = next((b for b in facts.target if s in _rel(states, b, "remove")), None)
            if blocker is not None:
                rel("remove", blocker, s, "reject")
                continue
            missing = next((r for r in _rel(states, s, "require") if r not in target), None)
            if missing is not None:
                rel("require", s, missing, "reject")
            else:
                steps.append({"kind": "reject", "state": s})

    # after: handler order among the states that changed
    changed = [*facts.exits, *facts.enters]
    changed_set = set(changed)
    for s in changed:
        for nxt in _rel(states, s, "after"):
            if nxt in changed_set:
                rel("after", s, nxt, "order")

    # handlers as they ran; a negotiation handler that was last before a cancel returned False
    by = canceled_by(facts, states)
    raised = set(facts.raised)
    dropped = {s for s in called if s not in target} if facts.auto and facts.accepted else set()
    for n, name in enumerate(facts.handlers):
        step: Step = {"kind": "handler", "name": name}
        if name in raised:
            step["outcome"] = "raised"
        elif by is not None and n == len(facts.handlers) - 1:
            step["outcome"] = "canceled"
        elif dropped and _refuses(name, dropped):
            step["outcome"] = "refused"
        steps.append(step)

    if facts.applied:
        ticks = facts.ticks
        for s in facts.exits:
            if ticks.get(s, 0) % 2 == 0:
                steps.append({"kind": "deactivate", "state": s})
        for s in facts.enters:
            # an entered state whose tick is even again was rolled back by a raising handler
            kind = "activate" if ticks.get(s, 1) % 2 == 1 else "rollback"
            steps.append({"kind": kind, "state": s})
    if not facts.accepted:
        reason = "handler" if by is not None or raised else "relations"
        cancel: Step = {"kind": "cancel", "reason": reason}
        if by is not None:
            cancel["by"] = by
        steps.append(cancel)
    return steps


def _rel(states: Mapping[str, State], name: str, kind: str) -> tuple[str, ...]:
    state = states.get(name)
    return () if state is None else tuple(getattr(state, kind))


def _refuses(handler: str, dropped: set[str]) -> bool:
    """A negotiation handler of an auto state that was dropped from an auto transition."""
    return any(handler == s + "Enter" or handler.endswith(s) for s in dropped)
