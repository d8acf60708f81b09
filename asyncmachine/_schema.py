"""States, schemas and the list helpers around them (pure data, no engine)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeAlias

from ._errors import SchemaError

S: TypeAlias = list[str]
"""A list of state names."""

A: TypeAlias = dict[str, Any]
"""Mutation arguments."""

EXCEPTION = "Exception"
"""The built-in error state, present in every machine."""

RELATIONS = ("add", "require", "remove", "after")
_RESERVED = {"Any"}


def _names_tuple(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise SchemaError(f"schema error: {field} must be a list of state names, not a string")
    try:
        items = tuple(value)
    except TypeError:
        raise SchemaError(f"schema error: {field} must be a list of state names") from None
    for item in items:
        if not isinstance(item, str):
            raise SchemaError(f"schema error: {field} has a non-string state name {item!r}")
    return items


@dataclass(frozen=True, slots=True)
class State:
    """One state's properties and relations; relation fields hold state names."""

    auto: bool = False
    multi: bool = False
    require: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lists are accepted for convenience and stored as tuples, so a State stays hashable.
        for name in (*RELATIONS, "tags"):
            object.__setattr__(self, name, _names_tuple(getattr(self, name), name))
        for name in ("auto", "multi"):
            if not isinstance(getattr(self, name), bool):
                raise SchemaError(f"schema error: {name} must be a bool")

    def has_tag(self, tag: str) -> bool:
        """``tag`` is one of the state's tags."""
        return tag in self.tags


Schema: TypeAlias = dict[str, State]
"""A mapping of state names to their definitions."""


def s_add(*lists: Iterable[str]) -> S:
    """Ordered union: every name once, at its first position."""
    return list(dict.fromkeys(name for names in lists for name in names))


def states_diff(a: Iterable[str], b: Iterable[str]) -> S:
    """``a`` minus ``b``, in ``a``'s order."""
    skip = set(b)
    return [s for s in a if s not in skip]


def states_shared(a: Iterable[str], b: Iterable[str]) -> S:
    """States in both, in ``a``'s order."""
    keep = set(b)
    return [s for s in a if s in keep]


def states_equal(a: Iterable[str], b: Iterable[str]) -> bool:
    """The same states, in any order."""
    return set(a) == set(b)


def s_remove(src: Iterable[str], *lists: Iterable[str]) -> S:
    """``src`` without any of the listed states (upstream's ``SRem`` skips its first list)."""
    skip = {s for names in lists for s in names}
    return [s for s in src if s not in skip]


def state_add(src: State, overlay: State) -> State:
    """Union the relations; ``auto``/``multi`` are only ever switched on."""
    return State(
        auto=src.auto or overlay.auto,
        multi=src.multi or overlay.multi,
        **{rel: tuple(s_add(getattr(src, rel), getattr(overlay, rel))) for rel in RELATIONS},
        tags=tuple(s_add(src.tags, overlay.tags)),
    )


def schema_merge(*schemas: Mapping[str, State]) -> Schema:
    """Later schemas override earlier ones per whole state."""
    merged: Schema = {}
    for schema in schemas:
        merged.update(schema)
    return merged


def schema_from_dict(data: Mapping[str, Any]) -> Schema:
    """Build a schema from its JSON form: ``{"Foo": {"auto": true, "require": ["Bar"]}}``."""
    if not isinstance(data, Mapping):
        raise SchemaError("schema error: a schema must be an object of state definitions")
    known = {f.name for f in fields(State)}
    schema: Schema = {}
    for name, spec in data.items():
        if not isinstance(name, str):
            raise SchemaError(f"schema error: state name {name!r} is not a string")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise SchemaError(f"schema error: state {name} must be an object")
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SchemaError(f"schema error: state {name} has unknown fields {', '.join(unknown)}")
        try:
            schema[name] = State(**spec)
        except SchemaError as err:
            raise SchemaError(f"{err} (state {name})") from None
    return schema


def schema_to_dict(schema: Mapping[str, State]) -> dict[str, dict[str, Any]]:
    """The JSON form of a schema; default fields are left out."""
    out: dict[str, dict[str, Any]] = {}
    for name, state in schema.items():
        spec: dict[str, Any] = {}
        if state.auto:
            spec["auto"] = True
        if state.multi:
            spec["multi"] = True
        for rel in (*RELATIONS, "tags"):
            value = getattr(state, rel)
            if value:
                spec[rel] = list(value)
        out[name] = spec
    return out


def check_schema(schema: Mapping[str, Any]) -> None:
    """Reject what cannot be a schema at all (parsing below forgives the rest)."""
    if not isinstance(schema, Mapping):
        raise SchemaError("schema error: a schema must be a mapping of state names to State")
    for name, state in schema.items():
        if not isinstance(name, str) or not name:
            raise SchemaError(f"schema error: invalid state name {name!r}")
        if name in _RESERVED:
            raise SchemaError(f"schema error: {name!r} is reserved for global handlers")
        if not isinstance(state, State):
            kind = type(state).__name__
            raise SchemaError(f"schema error: state {name} must be an am.State, got {kind}")


def parse_schema(schema: Mapping[str, State]) -> tuple[Schema, list[str]]:
    """Sanitise relations and return the parsed schema plus conflict errors
    (docs/semantics.md#schema).

    A relation to a state that is not in the schema raises ``SchemaError`` naming both.
    ``Exception`` is added (Multi) before parsing, unlike upstream, so relations to it always work.
    """
    check_schema(schema)
    full: dict[str, State] = dict(schema)
    if EXCEPTION not in full:
        full[EXCEPTION] = State(multi=True)
    unknown = [
        f"{name}: {rel} target {x} is not a state"
        for name, state in full.items()
        for rel in RELATIONS
        for x in getattr(state, rel)
        if x not in full
    ]
    if unknown:
        raise SchemaError("schema error: " + "; ".join(unknown))
    parsed: Schema = {}
    errors: list[str] = []
    for name, state in full.items():
        remove = [s for s in state.remove if s != name and s not in state.add]
        for x in state.require:
            if x in remove:
                errors.append(f"schema error: require-remove conflict for {name} to {x}")
        parsed[name] = State(
            auto=state.auto,
            multi=state.multi,
            require=tuple(dict.fromkeys(state.require)),
            add=tuple(dict.fromkeys(state.add)),
            remove=tuple(dict.fromkeys(remove)),
            after=tuple(dict.fromkeys(s for s in state.after if s != name)),
            tags=tuple(dict.fromkeys(state.tags)),
        )
    return parsed, errors


def states_by_tag(schema: Mapping[str, State], tag: str) -> S:
    """States tagged ``tag`` or ``tag:<value>``."""
    prefix = tag + ":"
    return [n for n, s in schema.items() if any(t == tag or t.startswith(prefix) for t in s.tags)]


def unique(names: Sequence[str]) -> S:
    return list(dict.fromkeys(names))
