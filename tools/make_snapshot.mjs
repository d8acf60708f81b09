// Make a memory snapshot of Pyodide with asyncmachine imported, so pages start Python from it
// instead of booting it (loadAsyncmachine's `snapshot` option).
//
//   node tools/make_snapshot.mjs DIST [MODULE ...]
//
// Boots Pyodide from DIST (a tools/make_dist.py folder), installs DIST's asyncmachine wheel,
// imports the bridge modules, Pyodide's package loader and the given MODULEs, and writes the
// interpreter's memory to DIST/asyncmachine-snapshot.bin.gz (gzip: any static host serves it as
// is; the page inflates it). The file system is not part of a snapshot, so the page still loads the
// wheel: its modules are already imported, only their files get installed. A snapshot only fits the
// exact Pyodide build it was made with; it is restored once here before it is written.
//
// Pyodide's snapshots are experimental (`_makeSnapshot`, `_loadSnapshot`); what they keep:
// - random's state (every restored page would draw the same numbers: the loader reseeds it);
// - str hash randomization (one seed for every page: fine for code running in its own tab).
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { loadPyodide } from "pyodide";

export const SNAPSHOT = "asyncmachine-snapshot.bin.gz";
/** Imported before the snapshot: the bridge, and what loadPackage runs to install a wheel. */
const MODULES = [
  "asyncmachine",
  "asyncmachine._bridge",
  "asyncmachine.rpc._jsbridge",
  "importlib.metadata",
  "pyodide._package_loader",
  "tarfile",
];

async function wheelOf(dist, name) {
  const lock = JSON.parse(await readFile(path.join(dist, "pyodide-lock.json"), "utf8"));
  const entry = lock.packages[name];
  if (!entry) throw new Error(`${dist}/pyodide-lock.json has no package ${name}`);
  const bytes = await readFile(path.join(dist, entry.file_name));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== entry.sha256) throw new Error(`${entry.file_name} does not match the lock's sha256`);
  return bytes;
}

async function snapshot(dist, modules) {
  const py = await loadPyodide({ indexURL: dist, _makeSnapshot: true });
  py.FS.writeFile("/tmp/asyncmachine.whl", await wheelOf(dist, "asyncmachine"));
  const names = py.toPy(modules);
  py.globals.set("modules", names);
  names.destroy();
  py.runPython(`
import gc, importlib, os, sysconfig, zipfile
with zipfile.ZipFile("/tmp/asyncmachine.whl") as wheel:
    wheel.extractall(sysconfig.get_path("purelib"))
os.remove("/tmp/asyncmachine.whl")
for name in modules:
    importlib.import_module(name)
del modules, name, wheel
gc.collect()
`);
  return py.makeMemorySnapshot();
}

/** Restore the snapshot as a page would, and use the machine and the package loader. */
async function check(dist, bytes) {
  const py = await loadPyodide({ indexURL: dist, packages: ["asyncmachine"], _loadSnapshot: bytes });
  const out = py.runPython(`
import random
random.seed()
import asyncmachine as am
import asyncmachine.rpc
m = am.Machine({"A": am.State(), "B": am.State(remove=("A",))})
m.add1("A"); m.add1("B")
m.string()
`);
  if (out !== "(B:1)") throw new Error(`a restored snapshot misbehaves: ${out}`);
}

async function main([dist, ...extra]) {
  if (!dist) throw new Error("usage: make_snapshot.mjs DIST [MODULE ...]");
  dist = path.resolve(dist) + path.sep;
  const bytes = await snapshot(dist, [...MODULES, ...extra]);
  await check(dist, bytes);
  const packed = gzipSync(bytes);
  await writeFile(path.join(dist, SNAPSHOT), packed);
  console.log(
    `${path.join(dist, SNAPSHOT)}: ${bytes.length.toLocaleString("en-US")} B of memory, ` +
      `${packed.length.toLocaleString("en-US")} B gzip`,
  );
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  // a Pyodide error left uncaught makes Node print a line of minified source: keep the message
  console.error(`make_snapshot: ${err.message ?? err}`);
  process.exitCode = 1;
}
