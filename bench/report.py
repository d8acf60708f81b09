"""Where a benchmark's results go: JSON lines, the same table as markdown beside them, stdout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_report(out: Path, rows: Sequence[dict[str, Any]], table: str) -> None:
    """``rows`` as JSON lines in ``out``, ``table`` in ``out`` with ``.md`` and on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
