// W1 and W3 inside Pyodide and on XState, rep by rep in turn, in one Node process (one V8; XState
// in a worker thread, a heap of its own); prints one JSON result line per system and workload
// (progress goes to stderr).
//
//   node --expose-gc tools/run_pyodide_bench.mjs [DIST] [--quick] [--only=W1|W3]
//
// DIST (default build/site/pyodide) is a distribution folder made by tools/make_dist.py. Python
// boots: an interpreter restored from the memory snapshot ran these loops 2.5-3x slower (V8 had
// not optimized it yet, see bench/README.md). The project folder is mounted at /project for the
// `bench` package; asyncmachine itself is imported from the installed wheel, i.e. what ships.
// Python times its own reps (bench.pyodide.one_rep), with the Python runs' protocol.
import path from "node:path";
import { Worker } from "node:worker_threads";
import { loadPyodide } from "pyodide";
import { runInterleaved } from "../bench/xstate/harness.mjs";
import { N_FULL, N_QUICK, SYSTEM as XSTATE, WORKLOADS, xstateVersion } from "../bench/xstate/workloads.mjs";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",") ?? ["W1", "W3"];
const dist = path.resolve(args.find((a) => !a.startsWith("--")) ?? "build/site/pyodide") + path.sep;

for (const name of only) {
  if (!(name in WORKLOADS)) {
    console.error(`run_pyodide_bench: unknown workload "${name}" (W1, W3)`);
    process.exit(2);
  }
}

/** XState's reps, run by bench/xstate/worker.mjs. */
class XStateWorker {
  #worker = new Worker(new URL("../bench/xstate/worker.mjs", import.meta.url));
  #pending = null;

  constructor() {
    this.#worker.on("message", ({ ns, error }) => {
      const { resolve, reject } = this.#pending;
      this.#pending = null;
      if (error) reject(new Error(error));
      else resolve(ns);
    });
    this.#worker.on("error", (err) => this.#pending?.reject(err));
  }

  /** The timed region of one rep of workload `name`, in ns. */
  rep(name, n) {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#worker.postMessage({ name, n });
    });
  }

  stop() {
    return this.#worker.terminate();
  }
}

const xstate = new XStateWorker();
try {
  const pyodide = await loadPyodide({ indexURL: dist, packages: ["asyncmachine"] });
  pyodide.FS.mkdirTree("/project");
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(".") }, "/project");
  pyodide.setStderr({ batched: (line) => console.error(line) });
  const bench = pyodide.runPython(`
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "/project")
import bench.pyodide
bench.pyodide
`);
  const engine = { node: process.version, v8: process.versions.v8, quick };
  const [python, platform] = pyodide.runPython("import sys; [sys.version.split()[0], sys.platform]").toJs();
  const sizes = quick ? N_QUICK : N_FULL;
  for (const name of only) {
    const n = sizes[name];
    const pyRep = bench.one_rep(name, n);
    const results = await runInterleaved([
      {
        system: bench.PYODIDE,
        workload: name,
        n,
        unit: bench.UNITS.get(name),
        rep: (timer) => timer.add(pyRep()),
        extra: { ...engine, python, platform },
      },
      {
        system: XSTATE,
        workload: name,
        n,
        unit: WORKLOADS[name](n).unit,
        rep: async (timer) => timer.add(await xstate.rep(name, n)),
        extra: { ...engine, xstate: xstateVersion },
      },
    ]);
    pyRep.destroy();
    for (const result of results) console.log(JSON.stringify(result));
  }
  bench.destroy();
} catch (err) {
  // a Pyodide error left uncaught makes Node print a line of minified source: keep the message
  console.error(`run_pyodide_bench: ${err.message ?? err}`);
  process.exitCode = 1;
} finally {
  await xstate.stop();
}
