"""Relation resolution: which states a mutation ends with, and in which order (§4.2, §4.3).

Pure functions of the parsed schema; everything that depends only on the schema is computed once,
so resolving a mutation costs time proportional to the states involved, not to the schema size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from ._schema import State

LogFn = Callable[[int, str], None]
"""``log(level, msg)``: the machine filters by its log level."""
_OPS, _DECISIONS = 3, 4


class Resolver:
    """Resolves target states for one parsed schema and state-name order."""

    __slots__ = (
        "_adders",
        "_after",
        "_cycle",
        "_required_by",
        "_requirers",
        "_topo",
        "auto_states",
        "related",
        "removed_by",
        "schema",
    )

    def __init__(self, schema: Mapping[str, State], names: Sequence[str]) -> None:
        self.schema = schema
        self.auto_states = [n for n in names if schema[n].auto]
        """Auto states in ``state_names()`` order: the deterministic candidate order."""
        removed_by: dict[str, list[str]] = {}
        for name in names:
            for x in schema[name].remove:
                removed_by.setdefault(x, []).append(name)
        self.removed_by = removed_by
        """For each state, the states whose ``remove`` lists it."""
        self._after = {n for n in names if schema[n].after}
        self._adders = {n for n in names if schema[n].add}
        self._requirers = {n for n in names if schema[n].require}
        required_by: dict[str, list[str]] = {}
        for name in names:
            for r in schema[name].require:
                required_by.setdefault(r, []).append(name)
        self._required_by = required_by
        self._topo, self._cycle = _require_order(schema, names)
        self.related = (
            self._adders | self._requirers | set(removed_by) | set(self._topo) | self._after
        )
        """States with a relation that resolution must look at; others resolve to themselves."""

    @property
    def require_cycle(self) -> str | None:
        """The first state found on a Require cycle (ordering by Require is then skipped)."""
        return self._cycle

    def target_states(
        self,
        called: Sequence[str],
        to_set: Sequence[str],
        active: set[str],
        excluded: set[str] | None,
        log: LogFn | None,
        is_auto: bool = False,
    ) -> list[str]:
        """Resolve ``to_set`` (the §4.1 states to set) into the sorted target states.

        ``excluded`` states are never implied by ``add`` relations: the states a Remove mutation
        removes, or auto states whose handlers refused them.
        """
        schema = self.schema
        s = list(dict.fromkeys(to_set)) if len(to_set) > 1 else list(to_set)
        if not self._adders.isdisjoint(s):
            s = self._parse_add(s, active, excluded, None)
        if not self._requirers.isdisjoint(s):
            s = self._parse_require(s, log, is_auto)
        if self.removed_by.keys().isdisjoint(s):
            return self.sort(s)
        blocked: set[str] = set()
        r: list[str] = []
        s_set = set(s)
        removed_by = self.removed_by
        for x in s[::-1]:
            blockers = removed_by.get(x)
            if blockers:
                by = [b for b in blockers if b in s_set and b not in blocked]
                if by:
                    blocked.add(x)
                    if log is not None:
                        level = _OPS if x in active else _DECISIONS
                        log(level, f"[rel:remove] {x} by {' '.join(by)}")
                    continue
            r.append(x)
        if not blocked:
            # Nothing was blocked: a second round of Add and Require cannot change the set.
            return self.sort(s)
        to_remove = {x for name in r for x in schema[name].remove}
        if not self._adders.isdisjoint(r):
            r = self._parse_add(r, active, excluded, to_remove)
        t = r[::-1]
        if not self._requirers.isdisjoint(t):
            t = self._parse_require(t, log, is_auto)
        return self.sort(t)

    def _parse_add(
        self,
        states: list[str],
        active: set[str],
        excluded: set[str] | None,
        to_remove: set[str] | None,
    ) -> list[str]:
        """Follow ``add`` relations transitively (upstream stops after two hops).

        An already active, non-Multi state's ``add`` is not re-applied. ``excluded`` are the
        states a Remove mutation is removing; ``to_remove`` are states that must not come back.
        """
        schema = self.schema
        out = states
        seen: set[str] | None = None
        i = 0
        while i < len(out):
            name = out[i]
            i += 1
            state = schema[name]
            if not state.add or (name in active and not state.multi):
                continue
            if seen is None:
                seen = set(out)
            for x in state.add:
                if x in seen or (excluded is not None and x in excluded):
                    continue
                if to_remove is not None and x in to_remove:
                    continue
                seen.add(x)
                if out is states:
                    out = list(states)
                out.append(x)
        return out

    def _parse_require(self, states: list[str], log: LogFn | None, is_auto: bool) -> list[str]:
        """Drop states whose requirements are missing, and then whatever required those.

        A worklist over the reverse Require edges: linear in the states and relations involved,
        where upstream repeats whole passes until nothing changes (same result).
        """
        schema = self.schema
        present = set(states)
        pending = deque(s for s in states if not present.issuperset(schema[s].require))
        if not pending:
            return states
        required_by = self._required_by
        while pending:
            name = pending.popleft()
            if name not in present:
                continue
            present.discard(name)
            if log is not None:
                missing = " ".join(f"-{r}" for r in schema[name].require if r not in present)
                if is_auto:
                    log(_DECISIONS, f"[reject:auto] {name}({missing})")
                else:
                    log(_OPS, f"[reject] {name}({missing})")
            pending.extend(d for d in required_by.get(name, ()) if d in present)
        return [s for s in states if s in present]

    def sort(self, states: list[str]) -> list[str]:
        """Order by the Require graph, then fix adjacent ``after`` violations (§4.3)."""
        if len(states) < 2:
            return states
        topo = self._topo
        if topo and not topo.keys().isdisjoint(states):
            states = sorted(states, key=lambda s: topo.get(s, -1))
        after = self._after
        if not after or not any(s in after for s in states):
            return states
        schema = self.schema
        # Go's insertion sort with a non-transitive comparator; kept for identical orders.
        for i in range(1, len(states)):
            j = i
            while j > 0:
                a, b = states[j], states[j - 1]
                if a in schema[b].after and b not in schema[a].after:
                    states[j], states[j - 1] = b, a
                    j -= 1
                else:
                    break
        return states

    def relations_of(self, name: str) -> list[str]:
        """The relation kinds a state declares, in the order add, require, remove, after."""
        state = self.schema[name]
        return [rel for rel in ("add", "require", "remove", "after") if getattr(state, rel)]

    def relations_between(self, a: str, b: str) -> list[str]:
        state = self.schema[a]
        return [rel for rel in ("add", "require", "remove", "after") if b in getattr(state, rel)]


def _require_order(
    schema: Mapping[str, State], names: Iterable[str]
) -> tuple[dict[str, int], str | None]:
    """Post-order positions in the Require graph; states without Require edges are left out."""
    linked: set[str] = set()
    for name in names:
        req = [r for r in schema[name].require if r in schema]
        if req:
            linked.add(name)
            linked.update(req)
    if not linked:
        return {}, None
    order: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(name: str) -> str | None:
        if name in order:
            return None
        if name in visiting:
            return name
        visiting.add(name)
        for r in schema[name].require:
            if r in schema:
                cycle = visit(r)
                if cycle is not None:
                    return cycle
        visiting.discard(name)
        order[name] = len(order)
        return None

    for name in names:
        if name in linked:
            cycle = visit(name)
            if cycle is not None:
                return {}, cycle
    return order, None
