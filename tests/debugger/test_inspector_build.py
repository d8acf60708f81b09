"""The inspector's built files ship in the package: they must be what the build makes from the
sources and the pinned npm packages (``make inspector`` rebuilds them)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "emscripten", reason="runs node")

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "asyncmachine" / "debugger" / "static"
FILES = ["index.html", "inspector.js", "inspector.css", "graph.js", "graph.css", "favicon.svg"]


def test_committed_inspector_is_what_the_build_makes(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / "esbuild").is_dir():
        pytest.fail("node_modules is missing: run `make node` (npm ci)")
    subprocess.run(["node", "tools/build_inspector.mjs", str(tmp_path)], cwd=ROOT, check=True)
    for name in FILES:
        built = (tmp_path / name).read_bytes()
        assert built == (STATIC / name).read_bytes(), f"{name} is stale: run `make inspector`"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)


def test_the_wheel_ships_the_inspector() -> None:
    wheels = sorted((ROOT / "build" / "wheel").glob("asyncmachine-*.whl"))
    if not wheels:
        pytest.fail("no wheel in build/wheel: run `make site`")
    names = set(zipfile.ZipFile(wheels[-1]).namelist())
    for name in FILES:
        assert f"asyncmachine/debugger/static/{name}" in names
    assert "asyncmachine/debugger/__main__.py" in names
