"""The RPC protocol core stays I/O-free: the sessions, the hub, the mirror and what they import
use no event loop, socket or WebSocket library, and no adapter module. Other transports (NATS)
drive the same sessions; only ``_server.py``, ``_client.py``, ``_transport.py`` and
the JS bridge (``asyncmachine._bridge._remote``) touch asyncio and the network."""

from __future__ import annotations

import ast
from pathlib import Path

from asyncmachine import rpc

PACKAGE = Path(rpc.__file__).parent
CORE = {
    "_auth.py",
    "_client_session.py",
    "_errors.py",
    "_hub.py",
    "_idempotency.py",
    "_netmachine.py",
    "_protocol.py",
    "_server_session.py",
    "_states.py",
}
ADAPTERS = {"_client", "_server", "_transport"}
FORBIDDEN = {
    "asyncio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "subprocess",
    "websockets",
    "js",
    "pyodide",
}


def _runtime_imports(path: Path) -> tuple[set[str], set[str]]:
    """Absolute top-level modules and sibling modules imported at import time (``if
    TYPE_CHECKING:`` blocks and imports inside functions excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    absolute: set[str] = set()
    siblings: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                absolute.add(node.module.split(".")[0])
            elif node.level == 1:
                if node.module:
                    siblings.add(node.module)
                else:
                    siblings.update(alias.name for alias in node.names)
    return absolute, siblings


def test_the_core_modules_exist() -> None:
    assert CORE <= {p.name for p in PACKAGE.glob("_*.py")}


def test_the_protocol_core_imports_no_io_and_no_adapter() -> None:
    for name in sorted(CORE):
        absolute, siblings = _runtime_imports(PACKAGE / name)
        assert not absolute & FORBIDDEN, f"{name} imports {absolute & FORBIDDEN}"
        assert not siblings & ADAPTERS, f"{name} imports the adapter {siblings & ADAPTERS}"


def test_the_mirror_does_not_import_the_client() -> None:
    """The old ``_client`` <-> ``_netmachine`` cycle: the mirror talks to a ``Remote``."""
    _, siblings = _runtime_imports(PACKAGE / "_netmachine.py")
    assert "_client" not in siblings and "_client_session" not in siblings
