"""The package's shape: no import cycles (type-only imports included), one error base, a facade of
bounded size, and public classes that say they live in ``asyncmachine``."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import asyncmachine as am

PACKAGE = Path(am.__file__).parent


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """Every package module ``name`` imports, anywhere in the file: at the top, in functions
    (lazy imports) and under ``if TYPE_CHECKING:`` (a type-only import is still a dependency)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level == 0:
                base = node.module or ""
            elif node.module:
                base = f"{base}.{node.module}"
            for alias in node.names:  # `from . import _aio` names a module
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    """Collaborators reach down, never back up (the facade ``_machine`` is above them)."""
    assert len(GRAPH) > 30
    assert "asyncmachine._clock" in GRAPH["asyncmachine._engine"]
    assert find_cycle(GRAPH) is None


def test_the_core_sits_below_the_facade() -> None:
    """Nothing the engine is made of imports the machine."""
    core = ["_clock", "_queue", "_engine", "_dispatch", "_observer", "_resolver", "_transition"]
    for name in core:
        deps = GRAPH[f"asyncmachine.{name}"]
        assert "asyncmachine._machine" not in deps, name


def test_machine_is_a_facade() -> None:
    """The facade stays readable in one sitting."""
    lines = (PACKAGE / "_machine.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 700, lines


def all_classes() -> list[type]:
    out: list[type] = []
    for info in pkgutil.walk_packages(am.__path__, "asyncmachine."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional dependency (telemetry exporters, Pyodide-only code)
            continue
        own = {info.name, "asyncmachine"}
        out += [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ in own]
    return out


def test_every_error_derives_from_the_base() -> None:
    errors = {c for c in all_classes() if issubclass(c, Exception) and not issubclass(c, Warning)}
    assert am.SchemaError in errors
    for cls in errors:
        assert issubclass(cls, am.AsyncMachineError), cls


def test_error_base_has_no_dependencies() -> None:
    """``_errors`` imports nothing of the package, so any module can raise its errors."""
    assert GRAPH["asyncmachine._errors"] == set()


@pytest.mark.parametrize("name", am.__all__)
def test_public_classes_live_in_asyncmachine(name: str) -> None:
    obj = getattr(am, name)
    if isinstance(obj, type):
        assert obj.__module__ == "asyncmachine"
        assert getattr(am, obj.__qualname__) is obj


ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"semantics\.md#([a-z0-9-]+)((?:(?:, | and )#[a-z0-9-]+)*)")


def slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def test_semantics_citations_resolve() -> None:
    """Every semantics.md anchor cited by the code, tests, benchmarks or docs is a section."""
    semantics = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    anchors = {slug(m) for m in re.findall(r"^## (.+)$", semantics, flags=re.MULTILINE)}
    assert {"relations", "negotiation", "explanations", "export-and-import"} <= anchors
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*")]
    files += [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    cited: dict[str, str] = {}
    for path in files:
        if path.suffix not in {".py", ".md"}:
            continue
        for m in CITATION.finditer(path.read_text(encoding="utf-8")):
            for anchor in [m.group(1), *re.findall(r"#([a-z0-9-]+)", m.group(2))]:
                cited.setdefault(anchor, path.name)
    for anchor in re.findall(r"\]\(#([a-z0-9-]+)\)", semantics):  # the document's own links
        cited.setdefault(anchor, "semantics.md")
    assert len(cited) > 15
    missing = {a: f for a, f in cited.items() if a not in anchors}
    assert not missing, missing
