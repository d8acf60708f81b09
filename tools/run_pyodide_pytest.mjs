// Run the project's pytest suite inside Pyodide under Node, exiting with pytest's own code.
//
//   node --experimental-wasm-stack-switching tools/run_pyodide_pytest.mjs DIST PROJECT [pytest args...]
//
// DIST is a distribution folder made by tools/make_dist.py with asyncmachine and the pytest wheels.
// The project folder is mounted read-write at /project (NODEFS) so pytest sees the real config and
// tests; asyncmachine itself is imported from the installed wheel, i.e. what ships.
import path from "node:path";
import { loadPyodide } from "pyodide";
import { WebSocket } from "ws";

// Node 20 has no global WebSocket; the Pyodide RPC client needs one
globalThis.WebSocket ??= WebSocket;
// AM_TEST_* variables reach the tests (e.g. the URL of a server started by a CPython test)
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("AM_TEST_")));

const [dist, project, ...pytestArgs] = process.argv.slice(2);
if (!dist || !project) {
  console.error("usage: run_pyodide_pytest.mjs DIST PROJECT [pytest args...]");
  process.exit(2);
}

const started = performance.now();
let rc = 3;
try {
  const pyodide = await loadPyodide({ indexURL: path.resolve(dist) + path.sep, env });
  const loaded = performance.now();
  await pyodide.loadPackage(["asyncmachine", "pytest", "pytest-asyncio", "hypothesis"], {
    messageCallback: () => {},
  });
  const installed = performance.now();
  pyodide.FS.mkdirTree("/project");
  pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(project) }, "/project");
  pyodide.globals.set("pytest_args", pyodide.toPy(pytestArgs));
  rc = await pyodide.runPythonAsync(`
import os, sys
sys.dont_write_bytecode = True
os.chdir("/project")
sys.path = [p for p in sys.path if p not in ("", "/project")]
import asyncmachine
print(f"[pyodide-runner] asyncmachine from {asyncmachine.__file__}")
import pytest
int(pytest.main(["-p", "no:cacheprovider", *pytest_args]))
`);
  const done = performance.now();
  console.log(
    `[pyodide-runner] loadPyodide ${Math.round(loaded - started)} ms, ` +
      `loadPackage ${Math.round(installed - loaded)} ms, pytest ${Math.round(done - installed)} ms, rc=${rc}`,
  );
} catch (err) {
  console.error(`[pyodide-runner] ${String(err?.message ?? err).slice(0, 4000)}`);
}
process.exit(rc);
