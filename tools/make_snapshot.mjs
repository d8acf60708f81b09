// Make a memory snapshot of Pyodide with asyncmachine imported, so pages start Python from it
// instead of booting it (loadAsyncmachine's `snapshot` option).
//
//   node tools/make_snapshot.mjs DIST [MODULE ...]
//
// Boots Pyodide from DIST (a tools/make_dist.py folder), puts DIST's asyncmachine wheel on
// sys.path as a zip at /lib/wheels/<sha256>/<file name>, imports the bridge modules and the given
// MODULEs from it, and writes the interpreter's memory to DIST/asyncmachine-snapshot.bin.gz (gzip:
// any static host serves it as it is; the page inflates it). The file system is not part of a
// snapshot: a page restoring it writes the same wheel at the same path (loadAsyncmachine checks
// the lock's sha256 against that path), and modules not imported yet come from there. A snapshot
// only fits the Pyodide build that made it; it is restored once here, by the page's own loader,
// before this tool succeeds.
//
// Pyodide's snapshots are experimental (`_makeSnapshot`, `_loadSnapshot`); what they keep:
// - random's state (every restored page would draw the same numbers: the loader reseeds it);
// - str hash randomization (one seed for every page: fine for code running in its own tab).
// They cannot hold JS objects made by `packages` or `loadPackage`: hence the zip.
import { createHash } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { loadPyodide } from "pyodide";
import { loadAsyncmachine } from "../web/asyncmachine.mjs";

export const SNAPSHOT = "asyncmachine-snapshot.bin.gz";
/** Imported before the snapshot: what loadAsyncmachine's bridge and remote machines use. */
const MODULES = ["asyncmachine", "asyncmachine._bridge", "asyncmachine._bridge._remote"];

async function wheelOf(dist, name) {
  const lock = JSON.parse(await readFile(path.join(dist, "pyodide-lock.json"), "utf8"));
  const entry = lock.packages[name];
  if (!entry) throw new Error(`${dist}pyodide-lock.json has no package ${name}`);
  const bytes = await readFile(path.join(dist, entry.file_name));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  if (sha256 !== entry.sha256) throw new Error(`${entry.file_name} does not match the lock's sha256`);
  return { bytes, where: `/lib/wheels/${sha256}/${entry.file_name}` };
}

async function snapshot(dist, modules) {
  const py = await loadPyodide({ indexURL: dist, _makeSnapshot: true });
  const wheel = await wheelOf(dist, "asyncmachine");
  py.FS.mkdirTree(path.posix.dirname(wheel.where));
  py.FS.writeFile(wheel.where, wheel.bytes);
  py.runPython(`
import gc, importlib, sys
sys.path.insert(0, ${JSON.stringify(wheel.where)})
for name in ${JSON.stringify(modules)}:
    importlib.import_module(name)
del name
gc.collect()
`);
  return py.makeMemorySnapshot();
}

/** Restore the snapshot as a page does, and use a machine and a module not imported before. */
async function check(dist, file) {
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(" "));
  let am;
  try {
    am = await loadAsyncmachine({ indexURL: pathToFileURL(dist).href, snapshot: pathToFileURL(file).href });
  } finally {
    console.warn = warn;
  }
  if (warnings.length) throw new Error(`the page's loader would not use it: ${warnings.join("; ")}`);
  const out = am.pyodide.runPython(`
import asyncmachine as am, asyncmachine.pipes
m = am.Machine({"A": am.State(), "B": am.State(remove=("A",))})
m.add1("A"); m.add1("B")
m.string()
`);
  if (out !== "(B:1)") throw new Error(`a restored snapshot misbehaves: ${out}`);
}

async function main([dist, ...extra]) {
  if (!dist) throw new Error("usage: make_snapshot.mjs DIST [MODULE ...]");
  dist = path.resolve(dist) + path.sep;
  const file = path.join(dist, SNAPSHOT);
  const bytes = await snapshot(dist, [...MODULES, ...extra]);
  const packed = gzipSync(bytes);
  await writeFile(file, packed);
  try {
    await check(dist, file);
  } catch (err) {
    await rm(file);
    throw err;
  }
  console.log(
    `${file}: ${bytes.length.toLocaleString("en-US")} B of memory, ` +
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
