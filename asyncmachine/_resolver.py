"""Relation resolution: which states a mutation ends with, and in which order.

Pure functions of the parsed schema (docs/semantics.md#relations, #ordering); everything that
depends only on the schema is computed once, so resolving a mutation costs time proportional to
the states involved, not to the schema size. Because resolution is pure, its results are also
remembered per active-state list (:class:`Memo`), so a machine that cycles through the same
situations resolves each of them once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

from ._clock import StateSet
from ._log import DECISIONS, OPS
from ._schema import State

LogFn = Callable[[int, str], None]
"""``log(level, msg)``: the machine filters by its log level."""
Why = dict[str, str]
"""Why states were dropped: state -> ``"requires X"`` / ``"removed by X"`` (for explanations)."""

ADD, REMOVE, SET = 0, 1, 2
"""Mutation kinds as the resolver sees them (plain ints: cheap to compare and to hash)."""


class Resolver:
    """Resolves target states for one parsed schema and state-name order."""

    __slots__ = (
        "_adders",
        "_after",
        "_cycle",
        "_required_by",
        "_requirers",
        "_topo",
        "_topo_key",
        "auto_states",
        "multi",
        "related",
        "removed_by",
        "schema",
    )

    def __init__(self, schema: Mapping[str, State], names: Sequence[str]) -> None:
        self.schema = schema
        self.multi = frozenset(n for n in names if schema[n].multi)
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
        topo = self._topo
        self._topo_key = {n: topo.get(n, -1) for n in names}
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
        active: StateSet,
        excluded: set[str] | None,
        log: LogFn | None,
        is_auto: bool = False,
        why: Why | None = None,
    ) -> list[str]:
        """Resolve ``to_set`` (the states to set, docs/semantics.md#relations) into the sorted
        target states.

        ``excluded`` states are never implied by ``add`` relations: the states a Remove mutation
        removes, or auto states whose handlers refused them.
        """
        schema = self.schema
        s = list(dict.fromkeys(to_set)) if len(to_set) > 1 else list(to_set)
        if not self._adders.isdisjoint(s):
            s = self._parse_add(s, active, excluded, None)
        if not self._requirers.isdisjoint(s):
            s = self._parse_require(s, log, is_auto, why)
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
                        level = OPS if x in active else DECISIONS
                        log(level, f"[rel:remove] {x} by {' '.join(by)}")
                    if why is not None:
                        why.setdefault(x, f"removed by {by[0]}")
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
            t = self._parse_require(t, log, is_auto, why)
        return self.sort(t)

    def _parse_add(
        self,
        states: list[str],
        active: StateSet,
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

    def _parse_require(
        self, states: list[str], log: LogFn | None, is_auto: bool, why: Why | None = None
    ) -> list[str]:
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
                    log(DECISIONS, f"[reject:auto] {name}({missing})")
                else:
                    log(OPS, f"[reject] {name}({missing})")
            if why is not None:
                first = next(r for r in schema[name].require if r not in present)
                why.setdefault(name, f"requires {first}")
            pending.extend(d for d in required_by.get(name, ()) if d in present)
        return [s for s in states if s in present]

    def sort(self, states: list[str]) -> list[str]:
        """Order by the Require graph, then fix adjacent ``after`` violations
        (docs/semantics.md#ordering)."""
        if len(states) < 2:
            return states
        topo = self._topo
        if topo and not topo.keys().isdisjoint(states):
            states = sorted(states, key=self._topo_key.__getitem__)
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

    def resolve(
        self,
        kind: int,
        called: Sequence[str],
        before: Sequence[str],
        active: StateSet,
        is_auto: bool = False,
        is_check: bool = False,
        log: LogFn | None = None,
        why: Why | None = None,
    ) -> Resolution:
        """The whole relation step of a transition: target, acceptance, exits and enters.

        ``before`` is the active list, ``active`` the same as a set. A called state the relations
        drop cancels the mutation, except for auto mutations (the others go ahead, resolved
        again without it) and checks calling a Multi state (docs/semantics.md#relations).
        """
        if kind == ADD:
            to_set: Sequence[str] = [*called, *before] if before else called
        elif kind == REMOVE:
            removing = called if len(called) < 8 else set(called)
            to_set = [s for s in before if s not in removing]
        else:
            to_set = called
        if self.related.isdisjoint(to_set):
            target = list(dict.fromkeys(to_set)) if len(to_set) > 1 else list(to_set)
        else:
            excluded = set(called) if kind == REMOVE else None
            target = self.target_states(called, to_set, active, excluded, log, is_auto, why)
        target_set = set(target)
        accepted = True
        if kind != REMOVE and not target_set.issuperset(called):
            rejected = [s for s in called if s not in target_set]
            if is_auto:
                accepted = len(rejected) < len(called)
                if accepted:
                    target = self.reresolve_auto(called, target_set, None, before, active)
                    target_set = set(target)
            else:
                accepted = is_check and not self.multi.isdisjoint(called)
            if not accepted and log is not None:
                log(OPS, f"[cancel:reject] {' '.join(rejected)}")
        if not accepted:
            return Resolution(tuple(target), frozenset(target_set), (), (), False)
        return Resolution(
            tuple(target),
            frozenset(target_set),
            tuple(self.exits(before, target_set)),
            tuple(self.enters(target, active, called)),
            True,
        )

    def exits(self, before: Sequence[str], target: StateSet) -> list[str]:
        """Active states not in the target, ordered like targets."""
        exits = [s for s in before if s not in target]
        return self.sort(exits) if len(exits) > 1 else exits

    def enters(self, target: Sequence[str], active: StateSet, called: Sequence[str]) -> list[str]:
        """Target states not active yet, plus called Multi states (re-entered)."""
        multi = self.multi
        if multi and not multi.isdisjoint(called):
            recalled = multi.intersection(called)
            return [s for s in target if s not in active or s in recalled]
        return [s for s in target if s not in active]

    def reresolve_auto(
        self,
        called: Sequence[str],
        kept: StateSet,
        refused: set[str] | None,
        before: Sequence[str],
        active: StateSet,
    ) -> list[str]:
        """Resolve an auto mutation again with only its accepted candidates.

        States refused by their own handlers (``refused``) stay out even when another state
        ``add``s them (docs/semantics.md#auto-states).
        """
        called = [s for s in called if s in kept]
        if not called:
            return []
        return self.target_states(called, [*called, *before], active, refused or None, None, True)

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


class Resolution:
    """A resolved mutation: the new active states in order, what exits and enters, acceptance.

    Immutable, so the memo can hand the same object to many transitions (and the clock can keep
    its tuple and frozenset as the active states).
    """

    __slots__ = ("accepted", "enters", "exits", "next", "target", "target_set")

    def __init__(
        self,
        target: tuple[str, ...],
        target_set: frozenset[str],
        exits: tuple[str, ...],
        enters: tuple[str, ...],
        accepted: bool,
    ) -> None:
        self.target = target
        self.target_set = target_set
        self.exits = exits
        self.enters = enters
        self.accepted = accepted
        self.next: _Node | None = None
        """The memo node of ``target`` once known (saves hashing it again)."""


class _Node:
    """One active-state list and the resolutions seen from it, per kind of mutation."""

    __slots__ = ("before", "edges")

    def __init__(self, before: tuple[str, ...]) -> None:
        self.before = before
        self.edges: tuple[dict[object, Resolution], ...] = ({}, {}, {}, {})
        """Add, remove, set and auto mutations: called state (or tuple of them) -> resolution."""


class Memo:
    """Remembered resolutions of one resolver, keyed by the active list and the mutation.

    Resolution is a pure function of the schema, the active list (in order), the mutation's kind
    and its called states, so a hit returns exactly what :meth:`Resolver.resolve` would. It is
    bounded (``limit`` resolutions; then it starts over), skips long active lists (``max_active``:
    each entry holds one, and hashing it costs what resolving does) and is never used while
    resolution is logged.
    """

    __slots__ = ("_last", "_node", "_nodes", "_size", "limit", "max_active", "resolver")

    def __init__(self, resolver: Resolver, limit: int = 2048, max_active: int = 64) -> None:
        self.resolver = resolver
        self.limit = limit
        self.max_active = max_active
        self._nodes: dict[tuple[str, ...], _Node] = {}
        self._node: _Node | None = None
        self._last: Resolution | None = None
        self._size = 0

    def resolve(
        self,
        kind: int,
        called: Sequence[str],
        before: tuple[str, ...],
        active: StateSet,
        is_auto: bool,
    ) -> Resolution:
        if len(before) > self.max_active:
            return self.resolver.resolve(kind, called, before, active, is_auto)
        node = self._node
        if node is None or node.before is not before:
            last = self._last
            if last is not None and last.next is not None and last.target is before:
                node = last.next
            else:
                node = self._nodes.get(before)
                if node is None:
                    node = self._nodes[before] = _Node(before)
                if last is not None and last.target is before:
                    last.next = node
            self._node = node
        edges = node.edges[3 if is_auto else kind]
        key: object = called[0] if len(called) == 1 else tuple(called)
        res = edges.get(key)
        if res is None:
            res = self.resolver.resolve(kind, called, before, active, is_auto)
            self._size += 1
            if self._size > self.limit:
                self.clear()
            else:
                edges[key] = res
        self._last = res
        return res

    def clear(self) -> None:
        self._nodes = {}
        self._node = None
        self._last = None
        self._size = 0
