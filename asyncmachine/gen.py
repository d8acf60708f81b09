"""am-gen: write a typed states-and-schema module from a compact state list or a JSON schema.

Run it as ``am-gen`` or ``python -m asyncmachine.gen``; ``am-gen --help`` documents the syntax.
The generated module passes ``ruff check`` and ``mypy --strict``, so it can be committed as is.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import diagram
from ._errors import AsyncMachineError, SchemaError
from ._schema import (
    EXCEPTION,
    RELATIONS,
    Schema,
    State,
    schema_from_dict,
    schema_merge,
    schema_to_dict,
)
from ._states_base import StatesBase
from .states import BasicSchema, ConnectedSchema, DisposedSchema

__all__ = [
    "MIXINS",
    "GenError",
    "check_schema",
    "main",
    "parse_states",
    "render_module",
    "render_ts_module",
]

MIXINS: Mapping[str, Schema] = {
    "basic": BasicSchema,
    "connected": ConnectedSchema,
    "disposed": DisposedSchema,
}
"""The ``--inherit`` names and the ``asyncmachine.states`` schemas they stand for."""

_FIELDS = ("require", "add", "remove", "after", "tags")
_PROP = re.compile(r"\s*(?:(?P<flag>auto|multi)\b|(?P<field>\w+)\((?P<items>[^()]*)\))\s*")
_WIDTH = 88
"""Generated lines stay within ruff's default line length, so any ruff config accepts them."""
_INDENT = "    "

_HELP = """\
states syntax (--states):
  STATES   = STATE ["," STATE]...
  STATE    = NAME [":" PROP [" " PROP]...]
  PROP     = "auto" | "multi" | REL "(" NAME [" " NAME]... ")" | "tags(" TAG [" " TAG]... ")"
  REL      = "require" | "add" | "remove" | "after"
  Names inside parentheses may also be separated by commas. NAME is a Python identifier; relation
  targets must be states of the list, of an inherited mixin, or Exception. --states can repeat.

json (--json): the format of am.schema_from_dict, in state order:
  {"Selected": {}, "Uploading": {"require": ["Selected"], "remove": ["Done"]}, "Done": {}}

mixins (--inherit): basic, connected, disposed (asyncmachine.states); connected and disposed
  relate to Start, so inherit basic too (or define Start).

examples:
  am-gen --name Upload --states "Selected,Uploading:require(Selected) remove(Done),Done:auto" \\
      --inherit basic,connected -o upload_states.py
  am-gen --name Upload --json upload.json --diagram upload.mmd -o upload_states.py

The module holds <NAME>States (an am.StatesBase subclass) and <NAME>Schema; with --ts, a TypeScript
module for the JS bridge: <NAME>State (the union of state names), <NAME>States and <NAME>Schema
(as const). It is printed unless -o is given; --diagram without FILE prints the Mermaid diagram
instead of the module.
Exit codes: 0 done, 1 a file could not be written, 2 invalid input.
"""


class GenError(AsyncMachineError, ValueError):
    """Invalid input for the generator: bad syntax, names or relation targets."""


def parse_states(spec: str) -> Schema:
    """Parse the compact ``--states`` syntax (see ``am-gen --help``) into a schema."""
    schema: Schema = {}
    for item in _split_top_level(spec):
        name, _, props = item.partition(":")
        name = name.strip()
        _check_name(name)
        if name in schema:
            raise GenError(f"state {name} is listed twice")
        schema[name] = _parse_props(name, props)
    if not schema:
        raise GenError("no states given")
    return schema


def _split_top_level(spec: str) -> list[str]:
    """Split on commas outside parentheses; blank items are skipped."""
    items: list[str] = []
    depth = start = 0
    for i, char in enumerate(spec):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise GenError(f"unbalanced ')' at position {i} of {spec!r}")
        elif char == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    if depth:
        raise GenError(f"unclosed '(' in {spec!r}")
    items.append(spec[start:])
    return [item.strip() for item in items if item.strip()]


def _parse_props(name: str, props: str) -> State:
    flags: set[str] = set()
    fields: dict[str, tuple[str, ...]] = {}
    pos = 0
    while pos < len(props):
        match = _PROP.match(props, pos)
        if match is None or match.end() == pos:
            raise GenError(f"state {name}: cannot parse {props[pos:].strip()!r}")
        pos = match.end()
        if match["flag"]:
            flags.add(match["flag"])
            continue
        field = match["field"]
        if field not in _FIELDS:
            raise GenError(f"state {name}: unknown property {field!r} (use {', '.join(_FIELDS)})")
        if field in fields:
            raise GenError(f"state {name}: {field} is given twice")
        fields[field] = tuple(x for x in re.split(r"[\s,]+", match["items"]) if x)
    return State(
        auto="auto" in flags,
        multi="multi" in flags,
        require=fields.get("require", ()),
        add=fields.get("add", ()),
        remove=fields.get("remove", ()),
        after=fields.get("after", ()),
        tags=fields.get("tags", ()),
    )


def _check_name(name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise GenError(f"state name {name!r} is not a Python identifier")
    if name.startswith("_") or name == "Any" or (hasattr(StatesBase, name) and name != EXCEPTION):
        raise GenError(f"state name {name!r} is reserved")


def check_schema(schema: Mapping[str, State], inherit: Sequence[str] = ()) -> Schema:
    """Validate ``schema`` with the ``inherit``-ed mixins; return the merged schema.

    Every state must have an identifier name and every relation must point to a known state:
    where the engine silently drops a typo, the generator refuses it.
    """
    for mixin in inherit:
        if mixin not in MIXINS:
            raise GenError(f"unknown mixin {mixin!r} (use {', '.join(MIXINS)})")
    for name in schema:
        _check_name(name)
    merged = schema_merge(*(MIXINS[m] for m in inherit), schema)
    known = {EXCEPTION, *merged}
    for name, state in merged.items():
        for rel in RELATIONS:
            for target in getattr(state, rel):
                if target in known:
                    continue
                msg = f"state {name}: {rel} target {target} is not a state"
                if name not in schema:
                    msg += f" (a mixin needs it: inherit the mixin defining {target}, or define it)"
                raise GenError(msg)
    return merged


def render_module(name: str, schema: Mapping[str, State], inherit: Sequence[str] = ()) -> str:
    """The source of a module defining ``<name>States`` and ``<name>Schema``.

    Raises ``GenError`` for what ``check_schema`` refuses.
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise GenError(f"--name {name!r} is not a Python identifier")
    check_schema(schema, inherit)
    mixins = [m.capitalize() for m in dict.fromkeys(inherit)]
    cls = f"{name}States"
    lines = [f'"""States and schema of {name}, generated by am-gen."""', ""]
    lines.append("import asyncmachine as am")
    if mixins:
        imports = sorted(f"{m}{kind}" for m in mixins for kind in ("Schema", "States"))
        line = f"from asyncmachine.states import {', '.join(imports)}"
        if len(line) <= _WIDTH:
            lines.append(line)
        else:
            lines += [
                "from asyncmachine.states import (",
                *(f"{_INDENT}{i}," for i in imports),
                ")",
            ]
    bases = ", ".join(f"{m}States" for m in mixins) or "am.StatesBase"
    lines += ["", "", f"class {cls}({bases}):", f'{_INDENT}"""The states of {name}."""', ""]
    lines += [f"{_INDENT}{state}: str" for state in schema]
    lines += ["", ""]
    if mixins:
        lines.append(f"{name}Schema: am.Schema = am.schema_merge(")
        lines += [f"{_INDENT}{m}Schema," for m in mixins]
        lines.append(_INDENT + "{")
        for state, spec in schema.items():
            lines += _state_entry(_INDENT * 2, cls, state, spec)
        lines += [_INDENT + "},", ")"]
    else:
        lines.append(f"{name}Schema: am.Schema = {{")
        for state, spec in schema.items():
            lines += _state_entry(_INDENT, cls, state, spec)
        lines.append("}")
    return "\n".join(lines) + "\n"


def render_ts_module(name: str, schema: Mapping[str, State], inherit: Sequence[str] = ()) -> str:
    """The source of a TypeScript module for the JS bridge: ``<name>State`` (the union of the
    state names, ``Exception`` included), ``<name>States`` (the names as constants) and
    ``<name>Schema`` (the schema, mixins merged, ``as const`` so ``am.machine()`` infers it).

    Raises ``GenError`` for what ``check_schema`` refuses.
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise GenError(f"--name {name!r} is not an identifier")
    merged = check_schema(schema, inherit)
    dumped = schema_to_dict(merged)
    names = [*merged, *([] if EXCEPTION in merged else [EXCEPTION])]
    lines = [
        f"// States and schema of {name}, generated by am-gen --ts.",
        "// am.machine(" + name + "Schema) makes an AsyncMachine<" + name + "State>.",
        "",
        f"export type {name}State =",
        *(f"  | {json.dumps(state)}" for state in names[:-1]),
        f"  | {json.dumps(names[-1])};",
        "",
        f"export const {name}States = {{",
        *(f"  {state}: {json.dumps(state)}," for state in names),
        "} as const;",
        "",
        f"export const {name}Schema = {{",
    ]
    for state in merged:
        fields = dumped[state]
        body = ", ".join(f"{key}: {json.dumps(value)}" for key, value in fields.items())
        lines.append(f"  {state}: {{ {body} }}," if body else f"  {state}: {{}},")
    lines.append("} as const;")
    return "\n".join(lines) + "\n"


def _state_entry(indent: str, cls: str, name: str, state: State) -> list[str]:
    """``Cls.Name: am.State(...),`` on one line when it fits, else one argument a line."""
    flags = [f"{flag}=True" for flag in ("auto", "multi") if getattr(state, flag)]
    lists = {
        field: [_str(v) if field == "tags" else f"{cls}.{v}" for v in getattr(state, field)]
        for field in _FIELDS
        if getattr(state, field)
    }
    head = f"{indent}{cls}.{name}: am.State("
    flat = ", ".join([*flags, *(f"{field}={_tuple(items)}" for field, items in lists.items())])
    if len(f"{head}{flat}),") <= _WIDTH:
        return [f"{head}{flat}),"]
    inner = indent + _INDENT
    lines = [head, *(f"{inner}{flag}," for flag in flags)]
    for field, items in lists.items():
        line = f"{inner}{field}={_tuple(items)},"
        # a 1-tuple split at 88 columns is joined again by ruff format at 100: only split past 100
        if len(line) <= (100 if len(items) == 1 else _WIDTH):
            lines.append(line)
        else:
            lines += [f"{inner}{field}=(", *(f"{inner}{_INDENT}{i}," for i in items), f"{inner}),"]
    return [*lines, f"{indent}),"]


def _str(text: str) -> str:
    """A string literal quoted the way ruff format quotes it (double, unless that escapes)."""
    literal = repr(text)
    if literal[0] == "'" and '"' not in text:
        literal = f'"{literal[1:-1]}"'
    return literal


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="am-gen",
        description="Generate a typed states-and-schema module for asyncmachine.",
        epilog=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", required=True, help="machine name: <NAME>States, <NAME>Schema")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--states", action="append", metavar="SPEC", help="states and relations")
    source.add_argument("--json", type=Path, metavar="FILE", help="a JSON schema file")
    parser.add_argument("--inherit", default="", metavar="MIXINS", help="e.g. basic,connected")
    parser.add_argument(
        "--ts",
        action="store_true",
        help="write a TypeScript module for the JS bridge (web/asyncmachine.mjs) instead",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the module here")
    parser.add_argument(
        "--diagram", nargs="?", const="-", metavar="FILE", help="write a Mermaid diagram"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``am-gen`` command; returns the exit code."""
    parser = _parser()
    try:
        opts = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    try:
        schema = _load_schema(opts.states, opts.json)
        inherit = [m.strip() for m in opts.inherit.split(",") if m.strip()]
        merged = check_schema(schema, inherit)
        render = render_ts_module if opts.ts else render_module
        code = render(opts.name, schema, inherit)
    except (GenError, SchemaError) as err:
        print(f"am-gen: error: {err}", file=sys.stderr)
        return 2
    mermaid = diagram.mermaid(merged) if opts.diagram else ""
    try:
        if opts.output is not None:
            opts.output.write_text(code, encoding="utf-8")
        if opts.diagram not in (None, "-"):
            Path(opts.diagram).write_text(mermaid, encoding="utf-8")
    except OSError as err:
        print(f"am-gen: error: {err}", file=sys.stderr)
        return 1
    if opts.diagram == "-":
        sys.stdout.write(mermaid)
    elif opts.output is None:
        sys.stdout.write(code)
    return 0


def _load_schema(specs: list[str] | None, json_path: Path | None) -> Schema:
    if json_path is None:
        schema: Schema = {}
        for spec in specs or ():
            for name, state in parse_states(spec).items():
                if name in schema:
                    raise GenError(f"state {name} is listed twice")
                schema[name] = state
        return schema
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise GenError(f"cannot read {json_path}: {err}") from None
    schema = schema_from_dict(data)
    if not schema:
        raise GenError(f"{json_path} has no states")
    return schema


if __name__ == "__main__":
    sys.exit(main())
