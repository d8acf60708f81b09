"""Entry point: ``python -m bench.run [--quick] [--out build/bench/results.jsonl]``.

Runs every system one after another (never two at once: a 2-core box), writes one JSON line per
workload (bench/README.md, "Result format"), then prints a markdown table of median ops/s and the
project's target ratios, each marked PASS/FAIL. A failed validation raises and aborts the run.

The engine and the lean floor (``bench.floor``) run side by side, workload by workload, so their
ratios come from the same minutes of the same process (absolute rates drift with the box's load).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.harness import BenchResult, env_info, loadavg, run_interleaved

SYSTEMS = ("asyncmachine", "floor", "transitions", "python-statemachine")
ORDER = ["W1", "W2", "W3", "W3p", "W4", "W4p", "W5", "W5s", "W5g"]
SHORT = {
    "am": "asyncmachine",
    "floor": "floor",
    "transitions": "transitions",
    "psm": "python-statemachine",
    "statemachine": "python-statemachine",
}

GO_W2_CYCLES_PER_S = 10_069.0
"""asyncmachine-go's W2 rate (the reference run of the workload spec): a constant denominator."""

Key = tuple[str, str, str]
# (label, numerator (system, workload, param), denominator: a result, a constant or None, target,
# what)
TARGETS: list[tuple[str, Key, Key | float | None, float, str]] = [
    (
        "W1 am / lean floor (mutations/s)",
        ("asyncmachine", "W1", ""),
        ("floor", "W1", ""),
        0.8,
        "ratio",
    ),
    (
        "W3 am / lean floor (cycles/s)",
        ("asyncmachine", "W3", ""),
        ("floor", "W3", ""),
        0.9,
        "ratio",
    ),
    (
        "W2 am / asyncmachine-go 10,069 cycles/s",
        ("asyncmachine", "W2", ""),
        GO_W2_CYCLES_PER_S,
        1.5,
        "ratio",
    ),
    (
        "W1 am mutations/s / transitions transitions/s",
        ("asyncmachine", "W1", ""),
        ("transitions", "W1", ""),
        1.0,
        "ratio",
    ),
    (
        "W3 am cycles/s / transitions cycles/s",
        ("asyncmachine", "W3", ""),
        ("transitions", "W3", ""),
        2.0,
        "ratio",
    ),
    (
        "W4 am K=10000 / am K=100",
        ("asyncmachine", "W4", "K=10000"),
        ("asyncmachine", "W4", "K=100"),
        0.8,
        "ratio",
    ),
    ("W5 am resolved waiters/s", ("asyncmachine", "W5", "K=1000"), None, 400_000.0, "rate"),
    (
        "W5s am: last 100 add1 / first 100 (single add O(called + changed))",
        ("asyncmachine", "W5s", "K=1000"),
        None,
        2.0,
        "max:late_early_add1",
    ),
]


def _runner(system: str) -> Callable[[bool], list[BenchResult]]:
    """Import a system's workloads lazily, so one missing peer does not stop the others."""
    if system == "asyncmachine":
        from bench import workloads_am as mod
    elif system == "floor":
        return _floor
    elif system == "transitions":
        from bench import workloads_transitions as mod  # type: ignore[no-redef]
    else:
        from bench import workloads_statemachine as mod  # type: ignore[no-redef]
    return mod.run


def _floor(quick: bool) -> list[BenchResult]:
    from bench import floor, workloads_am

    return [run_interleaved([run])[0] for run in workloads_am.specs(quick, floor, "floor")]


def _side_by_side(quick: bool) -> Iterator[BenchResult]:
    """The engine and the floor on each workload, alternating rep by rep (floor first)."""
    from bench import floor, workloads_am

    twins = {(r.workload, r.param): r for r in workloads_am.specs(quick, floor, "floor")}
    for run in workloads_am.specs(quick):
        twin = twins.get((run.workload, run.param))
        yield from run_interleaved([twin, run] if twin is not None else [run])


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: median ops/s (min..max, N) per workload and system, then the target ratios."""
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    keys: list[tuple[str, str]] = []
    units: dict[tuple[str, str], str] = {}
    for r in rows:
        key = (r["workload"], r["param"])
        if key not in keys:
            keys.append(key)
        units.setdefault(key, r["unit"])
    keys.sort(
        key=lambda k: (
            ORDER.index(k[0]) if k[0] in ORDER else len(ORDER),
            k[0],
            int(k[1][2:]) if k[1].startswith("K=") else 0,
        )
    )
    by = {(r["system"], r["workload"], r["param"]): r for r in rows}
    out = [
        "| workload | param | unit | " + " | ".join(systems) + " |",
        "|---|---|---|" + "---|" * len(systems),
    ]
    notes: list[str] = []
    for key in keys:
        cells = []
        for s in systems:
            row = by.get((s, *key))
            if row is None:
                cells.append("-")
            elif row.get("skipped"):
                notes.append(f"{s} {key[0]} {key[1]}: {row['skipped']}")
                cells.append(f"skipped [{len(notes)}]")
            else:
                cells.append(
                    f"**{_fmt(row['median_ops_per_sec'])}** "
                    f"({_fmt(row['min_ops_per_sec'])}..{_fmt(row['max_ops_per_sec'])}, "
                    f"N={row['n']:,})"
                )
        out.append(
            f"| {key[0]} | {key[1] or '-'} | {units.get(key, '')}/s | " + " | ".join(cells) + " |"
        )
    if notes:
        out += ["", "Skipped:"] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    out += ["", "| target | value | goal | verdict |", "|---|---|---|---|"]
    for label, num, den, goal, kind in TARGETS:
        a = by.get(num)
        b = by.get(den) if isinstance(den, tuple) else None
        missing = isinstance(den, tuple) and (b is None or b.get("skipped"))
        if a is None or a.get("skipped") or missing:
            op = "<=" if kind.startswith("max:") else ">="
            out.append(f"| {label} | n/a | {op} {goal:g} | n/a |")
            continue
        if kind.startswith("max:"):  # a per-rep extra, where lower is better
            value = float(a["extra"][kind[4:]])
            verdict = "PASS" if value <= goal else "FAIL"
            out.append(f"| {label} | {value:.2f} | <= {goal:g} | {verdict} |")
            continue
        value = float(a["median_ops_per_sec"])
        if b is not None:
            value /= b["median_ops_per_sec"]
        elif isinstance(den, float):
            value /= den
        shown = f"{value:.2f}" if kind == "ratio" else _fmt(value)
        verdict = "PASS" if value >= goal else "FAIL"
        out.append(f"| {label} | {shown} | >= {goal:,g} | {verdict} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected systems, write JSON lines to ``--out`` and print the table."""
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny N: a smoke run of a few seconds")
    ap.add_argument("--out", default="build/bench/results.jsonl", help="JSON lines output file")
    ap.add_argument(
        "--only",
        action="append",
        choices=sorted(SHORT),
        help="run only this system (repeatable): am, floor, transitions, psm",
    )
    ap.add_argument(
        "--table",
        metavar="JSONL",
        help="only render the table of an existing results file, run nothing",
    )
    args = ap.parse_args(argv)

    if args.table:
        lines = Path(args.table).read_text().splitlines()
        print(render_table([json.loads(line) for line in lines if line]))
        return 0

    chosen = [s for s in SYSTEMS if not args.only or s in {SHORT[o] for o in args.only}]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    env = env_info()
    print(
        f"bench: {'quick' if args.quick else 'full'} run, {env}, load {loadavg()}", file=sys.stderr
    )
    paired = "asyncmachine" in chosen and "floor" in chosen
    with out.open("w") as f:
        for system in chosen:
            if paired and system == "floor":
                continue
            print(f"== {system}  (load {loadavg()})", file=sys.stderr, flush=True)
            results = _side_by_side(args.quick) if paired and system == "asyncmachine" else None
            for res in results or _runner(system)(args.quick):
                res.extra.setdefault("quick", args.quick)
                res.extra.update({k: v for k, v in env.items() if k not in res.extra})
                line = res.to_json()
                f.write(line + "\n")
                f.flush()
                rows.append(json.loads(line))
    print(f"== done  (load {loadavg()}); results in {out}", file=sys.stderr)
    table = render_table(rows)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
