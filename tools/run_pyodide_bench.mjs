// Run bench.pyodide's measurement inside Pyodide under Node; prints one JSON line of rates.
//
//   node --experimental-wasm-stack-switching tools/run_pyodide_bench.mjs [DIST]
import path from "node:path";
import { loadPyodide } from "pyodide";

const dist = path.resolve(process.argv[2] ?? "build/testdist") + path.sep;
const pyodide = await loadPyodide({ indexURL: dist });
await pyodide.loadPackage(["asyncmachine"], { messageCallback: () => {} });
pyodide.FS.mkdirTree("/project");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(".") }, "/project");
const out = await pyodide.runPythonAsync(`
import json, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "/project")
from bench.pyodide import measure
json.dumps(measure())
`);
console.log(out);
