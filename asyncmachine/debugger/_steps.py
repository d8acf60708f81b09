"""Resolution steps of a finished transition, derived from the schema and what the stream sent.

The engine does not report its reasoning as data; everything needed to reconstruct it is public
and streamed: the schema, the called states, the clock before, the target and which handlers
ran. Each step says which relation or handler did what, in the order a
reader follows the resolution: relations (adds, removals, rejections, ordering), handlers as they
ran, then the changes. am-dbg derives them when a transition arrives, in its own process, so a
streamed machine pays nothing for them. Pure functions of JSON data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Step = dict[str, Any]
"""``{"kind": "rel", "rel": "add", "from": "A", "to": "B", "effect": "activate"}`` and the like
(the step kinds are listed in docs/debugger.md)."""
States = Mapping[str, Mapping[str, Any]]
"""A schema in its JSON form: ``{"A": {"require": ["B"], "multi": true}}``."""

FINAL_SUFFIXES = ("State", "End")


def is_final(name: str, states: States) -> bool:
    """``FooState``, ``FooEnd`` and ``AnyState`` run after the change and cannot cancel it."""
    if name == "AnyState":
        return True
    return any(name.endswith(sfx) and name[: -len(sfx)] in states for sfx in FINAL_SUFFIXES)


def canceled_by(msg: Mapping[str, Any], states: States) -> str | None:
    """The negotiation handler that cancelled a transition, if one did (it ran last)."""
    handlers: Sequence[str] = msg.get("handlers") or ()
    if msg["accepted"] or not handlers:
        return None
    last = handlers[-1]
    return None if is_final(last, states) else last


def changes(msg: Mapping[str, Any], states: States) -> tuple[list[str], list[str]]:
    """The states a transition deactivates and activates (or would have, when a handler
    cancelled it); none when the relations rejected it before any handler ran."""
    before: Sequence[str] = msg.get("before", ())
    target: Sequence[str] = msg.get("target", ())
    if not msg["accepted"] and not msg.get("applied") and not msg.get("handlers"):
        return [], []
    tset = set(target)
    bset = set(before)
    called = set(msg["called"])
    exits = [s for s in before if s not in tset]
    enters = [s for s in target if s not in bset or (s in called and _flag(states, s, "multi"))]
    return exits, enters


def resolution_steps(msg: Mapping[str, Any], states: States) -> list[Step]:
    """The steps of one transition message (see the module docstring)."""
    steps: list[Step] = []
    before = set(msg.get("before", ()))
    target_list: Sequence[str] = msg.get("target", ())
    target = set(target_list)
    called = list(msg["called"])
    called_set = set(called)
    mtype = msg["type"]
    accepted = msg["accepted"]
    applied = msg.get("applied", accepted)
    handlers: Sequence[str] = msg.get("handlers") or ()
    exits, enters = changes(msg, states)

    def rel(kind: str, src: str, dst: str, effect: str) -> None:
        steps.append({"kind": "rel", "rel": kind, "from": src, "to": dst, "effect": effect})

    # add: states implied by a called or implied state's `add` (transitively), as the resolver
    # follows them; an active non-Multi state's `add` is not re-applied
    implied: dict[str, str] = {}
    if mtype != "remove":
        queue = list(called)
        seen = set(called)
        i = 0
        while i < len(queue):
            name = queue[i]
            i += 1
            if name not in states or (name in before and not _flag(states, name, "multi")):
                continue
            for x in _rel(states, name, "add"):
                if x in seen or x not in states:
                    continue
                seen.add(x)
                implied[x] = name
                queue.append(x)
        for x, adder in implied.items():
            if x in target:
                rel("add", adder, x, "activate" if x not in before else "keep")

    # remove: active states that left (or would have, when a handler cancelled), and why
    def left_out(s: str, effect: str) -> bool:
        """The relation that keeps ``s`` out of the target: removed by a target state, or
        requiring a state that is not there."""
        blocker = next((b for b in target_list if s in _rel(states, b, "remove")), None)
        if blocker is not None:
            rel("remove", blocker, s, effect)
            return True
        missing = next((r for r in _rel(states, s, "require") if r not in target), None)
        if missing is not None:
            rel("require", s, missing, effect)
            return True
        return False

    for s in exits:
        if mtype == "remove" and s in called_set:
            continue  # removed because it was called: no relation involved
        if not left_out(s, "deactivate") and mtype == "set":
            steps.append({"kind": "unset", "state": s})

    # rejections: called (or implied) states that did not make it into the target
    if mtype != "remove":
        for s in [*called, *(x for x in implied if x not in called_set)]:
            if s not in target and s in states and not left_out(s, "reject"):
                steps.append({"kind": "reject", "state": s})

    # after: handler order among the states that changed
    changed = [*exits, *enters]
    changed_set = set(changed)
    for s in changed:
        for nxt in _rel(states, s, "after"):
            if nxt in changed_set:
                rel("after", s, nxt, "order")

    # handlers as they ran; a negotiation handler that was last before a cancel returned False
    # (or raised: the Exception transition that follows has it as its source's handler)
    by = canceled_by(msg, states)
    dropped = {s for s in called if s not in target} if msg.get("auto") and accepted else set()
    for n, name in enumerate(handlers):
        step: Step = {"kind": "handler", "name": name}
        if by is not None and n == len(handlers) - 1:
            step["outcome"] = "canceled"
        elif dropped and any(name == s + "Enter" or name.endswith(s) for s in dropped):
            step["outcome"] = "refused"  # an auto state's handler refused it
        steps.append(step)

    if applied:
        ticks: Mapping[str, int] = msg.get("ticks", {})
        for s in exits:
            if ticks.get(s, 0) % 2 == 0:
                steps.append({"kind": "deactivate", "state": s})
        for s in enters:
            # an entered state whose tick is even again was rolled back by a raising handler
            kind = "activate" if ticks.get(s, 1) % 2 == 1 else "rollback"
            steps.append({"kind": kind, "state": s})
    if not accepted:
        # a handler canceled it, or raised (a rollback moved the clock); else the relations
        reason = "handler" if by is not None or applied or handlers else "relations"
        cancel: Step = {"kind": "cancel", "reason": reason}
        if by is not None:
            cancel["by"] = by
        steps.append(cancel)
    return steps


def explain(msg: dict[str, Any], states: States, clock: Mapping[str, int]) -> None:
    """Add ``steps`` (and ``canceled_by``) to a transition message that has none; ``clock`` is
    the machine's clock before it (the active states before, and after with the ticks)."""
    if "steps" in msg:
        return
    before = [s for s, t in clock.items() if t % 2 == 1]
    if "target" not in msg:
        after = {**clock, **msg["ticks"]}
        msg["target"] = [s for s, t in after.items() if t % 2 == 1]
    msg["before"] = before
    msg["steps"] = resolution_steps(msg, states)
    by = canceled_by(msg, states)
    if by is not None:
        msg["canceled_by"] = by


def _rel(states: States, name: str, kind: str) -> Sequence[str]:
    spec = states.get(name)
    return () if spec is None else spec.get(kind, ())


def _flag(states: States, name: str, flag: str) -> bool:
    spec = states.get(name)
    return bool(spec and spec.get(flag))
