// Run bench.pyodide's measurement inside Pyodide under Node; prints one JSON result line per
// workload (progress goes to stderr).
//
//   node tools/run_pyodide_bench.mjs [DIST] [--quick] [--only=W1|W3]
//
// DIST (default build/site/pyodide) is a distribution folder made by tools/make_dist.py. Python
// boots: an interpreter restored from the memory snapshot ran these loops 2.5-3x slower (V8 had
// not optimized it yet, see bench/README.md). The project folder is mounted at /project for the
// `bench` package; asyncmachine itself is imported from the installed wheel, i.e. what ships.
import path from "node:path";
import { loadPyodide } from "pyodide";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",") ?? ["W1", "W3"];
const dist = path.resolve(args.find((a) => !a.startsWith("--")) ?? "build/site/pyodide") + path.sep;

for (const name of only) {
  if (!["W1", "W3"].includes(name)) {
    console.error(`run_pyodide_bench: unknown workload "${name}" (W1, W3)`);
    process.exit(2);
  }
}

try {
  const pyodide = await loadPyodide({ indexURL: dist, packages: ["asyncmachine"] });
  pyodide.FS.mkdirTree("/project");
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(".") }, "/project");
  pyodide.setStderr({ batched: (line) => console.error(line) });
  const out = pyodide.runPython(`
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, "/project")
from bench.pyodide import PYODIDE, measure
"\\n".join(r.to_json() for r in measure(${quick ? "True" : "False"}, PYODIDE, ${JSON.stringify(only)}))
`);
  console.log(out);
} catch (err) {
  // a Pyodide error left uncaught makes Node print a line of minified source: keep the message
  console.error(`run_pyodide_bench: ${err.message ?? err}`);
  process.exitCode = 1;
}
