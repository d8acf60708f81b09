"""The core stays I/O-free: only the asyncio adapter imports asyncio, and nothing imports a network
or thread module, so the same engine runs unchanged inside Pyodide."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncmachine as am

PACKAGE = Path(am.__file__).parent
CORE = sorted(p for p in PACKAGE.glob("_*.py") if p.name not in {"__init__.py", "_aio.py"})
FORBIDDEN = {"asyncio", "threading", "socket", "select", "selectors", "subprocess", "time.sleep"}


def _runtime_imports(path: Path) -> set[str]:
    """Top-level imports that run at import time (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                found.update(alias.name.split(".")[0] for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                found.add(sub.module.split(".")[0])
    return found


def test_core_modules_exist() -> None:
    names = {p.name for p in CORE}
    assert {"_machine.py", "_resolver.py", "_subscriptions.py", "_waiter.py", "_ctx.py"} <= names


def test_core_imports_no_event_loop_threads_or_network() -> None:
    for path in CORE:
        bad = _runtime_imports(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {bad}"


def test_no_blocking_sleep_or_run_until_complete_in_package() -> None:
    for path in PACKAGE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for needle in ("time.sleep(", "run_until_complete(", "asyncio.run(", "Thread("):
            assert needle not in text, f"{path.name} uses {needle}"


def test_machine_works_without_an_event_loop() -> None:
    """Mutations, waiters and contexts need no loop until something is awaited."""
    mach = am.Machine({"A": am.State(), "B": am.State(require=("A",))})
    ctx = am.Ctx()
    waiter = mach.when(["A", "B"], ctx)
    assert mach.add(["A", "B"]) == am.Executed
    assert waiter.done() and not waiter.cancelled()
    other = mach.when_not1("A", ctx)
    ctx.cancel()
    assert other.cancelled()
