"""Build a self-hosted Pyodide distribution folder with our wheels and a correct lock file.

    python tools/make_dist.py node_modules/pyodide build/site/pyodide WHEEL [WHEEL ...]

Copies the Pyodide runtime from the npm package, adds the given pure-Python wheels and writes a
``pyodide-lock.json`` that lists exactly what is shipped: sha256 recomputed, dependencies read from
each wheel's METADATA with markers evaluated for Pyodide (emscripten, the runtime's Python), import
names from the wheel's files. ``loadPackage`` and ``micropip.install`` then work offline with the
integrity check on. Upstream's build tools need the network, so this stays a small local script.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

RUNTIME_FILES = (
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "pyodide.js",
    "pyodide.mjs",
    "python_stdlib.zip",
    "package.json",
)


def marker_env(python: str) -> dict[str, str]:
    """The PEP 508 environment of Pyodide's runtime."""
    major_minor = ".".join(python.split(".")[:2])
    return {
        "implementation_name": "cpython",
        "implementation_version": python,
        "os_name": "posix",
        "platform_machine": "wasm32",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Emscripten",
        "platform_version": "",
        "python_full_version": python,
        "python_version": major_minor,
        "sys_platform": "emscripten",
        "extra": "",
    }


def read_wheel(path: Path, env: dict[str, str]) -> dict[str, object]:
    """The lock entry of one wheel."""
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(meta_name).decode("utf-8"))
        top_level = next((n for n in names if n.endswith(".dist-info/top_level.txt")), None)
        if top_level is not None:
            imports = [line.strip() for line in zf.read(top_level).decode().splitlines()]
        else:
            imports = sorted(
                {
                    n.split("/")[0].removesuffix(".py")
                    for n in names
                    if not n.split("/")[0].endswith((".dist-info", ".data"))
                    and ((n.endswith("/__init__.py") and n.count("/") == 1) or "/" not in n)
                    and n.endswith(".py")
                }
            )
    depends = []
    for spec in meta.get_all("Requires-Dist") or []:
        req = Requirement(spec)
        if req.marker is None or Marker(str(req.marker)).evaluate(env):
            depends.append(canonicalize_name(req.name))
    return {
        "name": canonicalize_name(meta["Name"]),
        "version": meta["Version"],
        "file_name": path.name,
        "install_dir": "site",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "package_type": "package",
        "imports": [i for i in imports if i],
        "depends": sorted(set(depends)),
        "unvendored_tests": False,
        "tool": {},
    }


def build(pyodide_dir: Path, out: Path, wheels: list[Path]) -> dict[str, object]:
    upstream = json.loads((pyodide_dir / "pyodide-lock.json").read_text())
    env = marker_env(upstream["info"]["python"])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in RUNTIME_FILES:
        shutil.copy2(pyodide_dir / name, out / name)
    packages: dict[str, dict[str, object]] = {}
    for wheel in wheels:
        entry = read_wheel(wheel, env)
        packages[str(entry["name"])] = entry
        shutil.copy2(wheel, out / wheel.name)
    missing = {
        f"{name} needs {dep}"
        for name, entry in packages.items()
        for dep in entry["depends"]  # type: ignore[attr-defined]
        if dep not in packages
    }
    if missing:
        raise SystemExit("make_dist: missing dependencies: " + "; ".join(sorted(missing)))
    lock = {"info": upstream["info"], "packages": dict(sorted(packages.items()))}
    (out / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")
    return lock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "pyodide_dir", type=Path, help="the npm package folder (node_modules/pyodide)"
    )
    parser.add_argument("out", type=Path, help="the distribution folder to (re)create")
    parser.add_argument("wheels", type=Path, nargs="+", help="pure-Python wheels to ship")
    args = parser.parse_args(argv)
    lock = build(args.pyodide_dir, args.out, args.wheels)
    names = ", ".join(f"{p['name']}=={p['version']}" for p in lock["packages"].values())  # type: ignore[attr-defined]
    print(f"{args.out}: {len(lock['packages'])} packages in lock: {names}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
