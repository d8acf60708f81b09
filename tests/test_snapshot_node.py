"""``loadAsyncmachine({snapshot})`` under Node: a snapshot is only used with the wheel it was made
from (the site's lock says which), else Python boots."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.platform == "emscripten":  # pragma: no cover - only inside Pyodide
    pytest.skip("drives Node from CPython", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "build" / "site" / "pyodide"
SNAPSHOT = "asyncmachine-snapshot.bin.gz"
LOAD = """
import { pathToFileURL } from "node:url";
import { loadAsyncmachine } from %s;
const [dist, snapshot] = process.argv.slice(2).map((p) => pathToFileURL(p).href);
const warnings = [];
console.warn = (...args) => warnings.push(args.join(" "));
const am = await loadAsyncmachine({ indexURL: dist + "/", snapshot });
const restored = am.pyodide.runPython("import sys; 'asyncmachine.diagram' in sys.modules");
const machine = am.machine({ A: {} });
machine.add1("A");
console.log(JSON.stringify({ warnings, restored, state: machine.string() }));
"""


def load(tmp_path: Path, dist: Path) -> dict[str, object]:
    script = tmp_path / "load.mjs"
    script.write_text(LOAD % json.dumps((ROOT / "web" / "asyncmachine.mjs").as_uri()))
    proc = subprocess.run(
        ["node", str(script), str(dist), str(dist / SNAPSHOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return out


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    if shutil.which("node") is None or not (DIST / SNAPSHOT).is_file():
        pytest.fail("node and build/site are needed: run `make site`")
    copy = tmp_path / "pyodide"
    shutil.copytree(DIST, copy, ignore=shutil.ignore_patterns("*.br", "*.whl.gz"))
    return copy


def test_the_snapshot_starts_python(tmp_path: Path, dist: Path) -> None:
    assert load(tmp_path, dist) == {"warnings": [], "restored": True, "state": "(A:1)"}


def test_a_snapshot_of_another_wheel_is_not_used(tmp_path: Path, dist: Path) -> None:
    # rebuild the wheel (one more file) and re-lock it, as `make_dist.py` would, but keep the
    # older snapshot: its modules and its zip offsets belong to the other wheel
    lock = json.loads((dist / "pyodide-lock.json").read_text())
    entry = lock["packages"]["asyncmachine"]
    wheel = dist / entry["file_name"]
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("asyncmachine/rebuilt.txt", "a newer build")
    entry["sha256"] = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (dist / "pyodide-lock.json").write_text(json.dumps(lock))

    out = load(tmp_path, dist)
    assert out["restored"] is False and out["state"] == "(A:1)"
    warnings = out["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert "not starting from the snapshot" in warnings[0] and "lock's sha256" in warnings[0]
