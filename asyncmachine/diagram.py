"""Schema diagrams: a Mermaid flowchart and a plain-text listing of states and their relations.

Both take a schema or a machine. A schema is drawn as the machine would parse it (``Exception``
included, relations to unknown states dropped), with states in sorted order like a new machine; a
machine is drawn in its ``state_names()`` order with each state's tick, active states marked.
Output is deterministic, so diagrams can be committed and diffed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._machine import Machine
from ._schema import RELATIONS, State, parse_schema

__all__ = ["mermaid", "text"]

_ARROWS = {
    "require": "-->",
    "add": "==>",
    "remove": "--x",
    "after": "-.->",
}

_ACTIVE_STYLE = "fill:#d4f7d4,stroke:#2e7d32,stroke-width:2px"
_PLAIN_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = frozenset(
    {"class", "classDef", "click", "default", "direction", "end", "flowchart", "graph"}
    | {"linkStyle", "style", "subgraph"}
)
"""Words a Mermaid flowchart line can't start a node with."""


def mermaid(source: Machine | Mapping[str, State]) -> str:
    """A Mermaid flowchart: one node per state, one edge per relation, labelled with it.

    Arrows: ``-->`` require, ``==>`` add, ``--x`` remove, ``-.->`` after. Node labels carry the
    ``auto``/``multi`` flags and, for a machine, the tick; active states get the ``active`` class.
    """
    schema, names, clock = _view(source)
    ids = _node_ids(names)
    lines = ["flowchart LR"]
    for name in names:
        label = _label(name, schema[name], clock).replace('"', "#quot;")
        lines.append(f'    {ids[name]}["{label}"]')
    for name in names:
        for rel in RELATIONS:
            for target in getattr(schema[name], rel):
                if target in ids:
                    lines.append(f"    {ids[name]} {_ARROWS[rel]}|{rel}| {ids[target]}")
    if clock is not None:
        lines.append(f"    classDef active {_ACTIVE_STYLE}")
        active = [ids[n] for n in names if clock[n] % 2 == 1]
        if active:
            lines.append(f"    class {','.join(active)} active")
    return "\n".join(lines) + "\n"


def text(source: Machine | Mapping[str, State]) -> str:
    """A plain-text listing: each state (``*`` when active), then one indented line per relation."""
    schema, names, clock = _view(source)
    lines: list[str] = []
    for name in names:
        head = _label(name, schema[name], clock)
        if clock is not None:
            head = ("* " if clock[name] % 2 == 1 else "  ") + head
        lines.append(head)
        indent = "    " if clock is not None else "  "
        for rel in RELATIONS:
            targets = getattr(schema[name], rel)
            if targets:
                lines.append(f"{indent}{rel}: {' '.join(targets)}")
    return "\n".join(lines) + "\n"


def _view(
    source: Machine | Mapping[str, State],
) -> tuple[Mapping[str, State], list[str], dict[str, int] | None]:
    """The parsed schema, the state order and, for a machine, its clock."""
    if isinstance(source, Machine):
        if source.is_disposed:
            raise ValueError(f"machine {source.id} is disposed")
        return source.schema, source.state_names(), source.clock()
    schema, _ = parse_schema(source)
    return schema, sorted(schema), None


def _label(name: str, state: State, clock: Mapping[str, int] | None) -> str:
    label = name if clock is None else f"{name}:{clock[name]}"
    flags = [flag for flag in ("auto", "multi") if getattr(state, flag)]
    return f"{label} ({', '.join(flags)})" if flags else label


def _node_ids(names: list[str]) -> dict[str, str]:
    """Each state's Mermaid node id: its name, or ``s<index>`` when Mermaid can't take the name."""
    taken = set(names)
    ids: dict[str, str] = {}
    for i, name in enumerate(names):
        if _PLAIN_ID.fullmatch(name) and name not in _KEYWORDS:
            ids[name] = name
            continue
        node = f"s{i}"
        while node in taken:
            node = "_" + node
        taken.add(node)
        ids[name] = node
    return ids
