"""``tools/check_netlify.py``: what it finds wrong in a resolved Netlify config."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
from support import import_file

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("a build tool: runs on the host", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
check = import_file(ROOT / "tools" / "check_netlify.py", "check_netlify")


def config_for(expected: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A config whose rules give every expected path exactly its headers (one rule per path)."""
    rules = [{"for": path, "values": dict(values)} for path, values in expected.items() if values]
    return {"build": {"publish": str(ROOT / check.PUBLISH)}, "headers": rules}


def test_a_config_that_gives_every_path_its_headers_passes() -> None:
    assert check.problems(config_for(check.EXPECTED)) == []


def test_a_wrong_publish_folder() -> None:
    config = config_for(check.EXPECTED)
    config["build"]["publish"] = str(ROOT / "site")
    assert check.problems(config) == [f"publish is {ROOT / 'site'}, not build/site"]


def test_a_header_two_rules_join() -> None:
    config = config_for(check.EXPECTED)
    config["headers"].append({"for": "/pyodide/*", "values": {"Cache-Control": "no-store"}})
    errors = check.problems(config)
    assert any(e.startswith("/pyodide/pyodide-lock.json: headers") for e in errors)
    assert any("no-cache, no-store" in e for e in errors)


def test_content_encoding_is_never_set() -> None:
    config = config_for(check.EXPECTED)
    config["headers"].append({"for": "/data/*.json", "values": {"content-encoding": "gzip"}})
    assert check.problems(config) == ["/data/*.json: sets content-encoding"]


def test_a_missing_rule() -> None:
    expected = copy.deepcopy(check.EXPECTED)
    del expected["/pyodide/asyncmachine-snapshot.bin.gz"]
    errors = check.problems(config_for(expected))
    assert errors == [
        "/pyodide/asyncmachine-snapshot.bin.gz: headers {}, expected {'Cache-Control': 'no-cache'}"
    ]


@pytest.mark.parametrize(
    ("pattern", "path", "matched"),
    [
        ("/pyodide/*.wasm", "/pyodide/pyodide.asm.wasm", True),
        ("/pyodide/*.wasm", "/pyodide/pyodide.asm.wasm.br", False),
        ("/*.mjs", "/pyodide/pyodide.mjs", True),
        ("/:page/x", "/a/x", True),
        ("/:page/x", "/a/b/x", False),
    ],
)
def test_matches(pattern: str, path: str, matched: bool) -> None:
    assert check.matches(pattern, path) is matched
