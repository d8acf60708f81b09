// The timing protocol of bench/harness.py, for JavaScript peers run by Node (`--expose-gc`):
// 1 warm-up rep thrown away, then 5 measured reps, a forced GC before each rep and once more right
// before its first timed region; one JSON line per workload with the same keys as the Python runs.
// Workloads of two systems can run rep by rep in turn (`runInterleaved`), so that a machine that
// gets busier or quieter during the run weighs on both alike; a rep may run elsewhere (a worker
// thread, Python inside Pyodide) and report its timed region (`timer.add`).
import { readFileSync } from "node:fs";

/** A workload ended in a state the spec does not allow: the run is invalid. */
export class ValidationError extends Error {
  name = "ValidationError";
}

/** Throw a ValidationError unless `cond` holds. */
export function check(cond, what) {
  if (!cond) throw new ValidationError(what);
}

/** `/proc/loadavg` (logged between steps), or "" where it does not exist. */
export function loadavg() {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "";
  }
}

function collectGarbage() {
  if (typeof globalThis.gc !== "function") {
    throw new Error("the timing protocol forces a GC before each rep: run node with --expose-gc");
  }
  globalThis.gc();
}

/** Accumulates the wall time of one rep's timed region(s): `timer.start(); ...; timer.stop()`. */
export class Timer {
  ns = 0n;
  #t0 = 0n;
  #collected = false;

  start() {
    if (!this.#collected) {
      collectGarbage();
      this.#collected = true;
    }
    this.#t0 = process.hrtime.bigint();
  }

  stop() {
    this.ns += process.hrtime.bigint() - this.#t0;
  }

  /** Count a timed region measured elsewhere (a rep run by Python inside Pyodide). */
  add(ns) {
    this.ns += BigInt(ns);
  }
}

const round1 = (x) => Math.round(x * 10) / 10;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Run `warmup` + `reps` reps of each spec's `rep(timer)` (awaited), taking turns rep by rep (in
 * the other order every other round), and summarise each spec's measured reps as a result line.
 * A spec: `{system, workload, param, n, unit, rep, extra}`. */
export async function runInterleaved(specs, { reps = 5, warmup = 1 } = {}) {
  const runs = specs.map(() => ({ rates: [], wall: 0, loadavg: loadavg() }));
  for (let i = 0; i < warmup + reps; i++) {
    const order = specs.map((_, k) => k);
    if (i % 2) order.reverse();
    for (const k of order) {
      const { system, workload, param = "", n, rep } = specs[k];
      const wall0 = performance.now();
      collectGarbage();
      const timer = new Timer();
      await rep(timer);
      runs[k].wall += performance.now() - wall0;
      if (timer.ns <= 0n) throw new ValidationError(`${system} ${workload} ${param}: empty timed region`);
      if (i >= warmup) runs[k].rates.push(n / (Number(timer.ns) / 1e9));
    }
  }
  return specs.map((spec, k) => summarise(spec, runs[k]));
}

/** `runInterleaved` of one spec. */
export async function runWorkload(spec, options) {
  return (await runInterleaved([spec], options))[0];
}

/** Run `rep(timer)` after a forced GC with a fresh timer, and return its timed region in ns. */
export function timeRep(rep) {
  collectGarbage();
  const timer = new Timer();
  rep(timer);
  return timer.ns;
}

function summarise({ system, workload, param = "", n, unit, extra = {} }, { rates, wall, loadavg: la }) {
  const med = median(rates);
  const result = {
    system,
    workload,
    param,
    n,
    unit,
    ops_per_sec: rates.map(round1),
    median_ops_per_sec: round1(med),
    min_ops_per_sec: round1(Math.min(...rates)),
    max_ops_per_sec: round1(Math.max(...rates)),
    median_ns_per_op: round1(1e9 / med),
    extra: { ...extra, loadavg_before: la, wall_s: Math.round(wall / 10) / 100 },
  };
  const fmt = (x) => x.toLocaleString("en-US", { maximumFractionDigits: 1 });
  console.error(
    `  ${system.padEnd(20)} ${workload.padEnd(4)} ${(param || "-").padEnd(10)} n=${String(n).padEnd(8)} ` +
      `median ${fmt(result.median_ops_per_sec).padStart(12)} ${unit}/s ` +
      `(${fmt(result.min_ops_per_sec)}..${fmt(result.max_ops_per_sec)})  ${(wall / 1000).toFixed(1)} s, load ${la}`,
  );
  return result;
}
