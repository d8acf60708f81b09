"""Check netlify.toml offline, as Netlify's own loader reads it (``npx netlify-config --offline``).

Fails on a config error or header syntax errors (Netlify only warns about those and drops the
header), on a wrong publish folder, when the headers a path would get differ from what the demo
needs, and on a rule that sets ``Content-Encoding`` (a rule cannot depend on what a client
accepts). Netlify applies every rule that matches a path and joins a header set by two of them into
one comma-separated value, so each path's headers are computed from all matching rules.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISH = "build/site"
JS = "text/javascript; charset=utf-8"
RUNTIME = "public, max-age=604800"

# the headers each kind of file must get, and no others
EXPECTED: dict[str, dict[str, str]] = {
    "/index.html": {},
    "/demo.mjs": {"Content-Type": JS},
    "/asyncmachine.mjs": {"Content-Type": JS},
    "/upload-schema.json": {},
    "/pyodide/pyodide.asm.wasm": {"Content-Type": "application/wasm", "Cache-Control": RUNTIME},
    "/pyodide/pyodide.asm.mjs": {"Content-Type": JS, "Cache-Control": RUNTIME},
    "/pyodide/pyodide.mjs": {"Content-Type": JS, "Cache-Control": RUNTIME},
    "/pyodide/pyodide.js": {"Cache-Control": RUNTIME},
    "/pyodide/python_stdlib.zip": {"Cache-Control": RUNTIME},
    "/pyodide/asyncmachine-0.1.0-py3-none-any.whl": {"Cache-Control": "no-cache"},
    "/pyodide/pyodide-lock.json": {"Cache-Control": "no-cache"},
    "/pyodide/asyncmachine-snapshot.bin.gz": {"Cache-Control": "no-cache"},
    # precompressed siblings: served (by their own name only) with Netlify's defaults
    "/pyodide/pyodide.asm.wasm.br": {},
    "/demo.mjs.gz": {},
}
NEVER = ("Content-Encoding",)
"""Headers no rule may set: Netlify would send them to every client, whatever it accepts."""


def netlify_config() -> dict[str, object]:
    """The resolved config, as Netlify's build would see it."""
    proc = subprocess.run(
        ["npx", "--no-install", "netlify-config", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or "syntax error" in proc.stderr.lower():
        sys.exit(f"netlify-config failed:\n{proc.stderr}")
    config: dict[str, object] = json.loads(proc.stdout)["config"]
    return config


def matches(pattern: str, path: str) -> bool:
    """Netlify's path patterns: ``*`` matches anything (slashes too), ``:name`` one segment."""
    regex = "".join(
        ".*" if part == "*" else "[^/]+" if part.startswith(":") else re.escape(part)
        for part in re.split(r"(\*|:[A-Za-z_]\w*)", pattern)
    )
    return re.fullmatch(regex, path) is not None


def headers_for(rules: list[dict[str, object]], path: str) -> dict[str, str]:
    """What Netlify sends for ``path``: every matching rule's values, repeated names joined."""
    out: dict[str, str] = {}
    for rule in rules:
        if matches(str(rule["for"]), path):
            values = rule["values"]
            assert isinstance(values, dict)
            for name, value in values.items():
                out[name] = f"{out[name]}, {value}" if name in out else str(value)
    return out


def problems(config: dict[str, object]) -> list[str]:
    """Everything wrong with a resolved config, as lines for the user."""
    build = config["build"]
    assert isinstance(build, dict)
    errors = []
    if Path(str(build["publish"])).resolve() != (ROOT / PUBLISH).resolve():
        errors.append(f"publish is {build['publish']}, not {PUBLISH}")
    rules = config.get("headers") or []
    assert isinstance(rules, list)
    for path, expected in EXPECTED.items():
        got = headers_for(rules, path)
        if got != expected:
            errors.append(f"{path}: headers {got}, expected {expected}")
    for rule in rules:
        values = rule["values"]
        assert isinstance(values, dict)
        errors += [f"{rule['for']}: sets {name}" for name in values if name.title() in NEVER]
    return errors


def main() -> int:
    errors = problems(netlify_config())
    if errors:
        print("netlify.toml:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    print(f"netlify.toml: ok (publish {PUBLISH}, headers of {len(EXPECTED)} paths)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
