// Build the inspector page (web/inspector) into the files the Python package ships.
//
//   node tools/build_inspector.mjs [OUT_DIR]     (default: asyncmachine/debugger/static)
//
// esbuild bundles the ES modules with @dagrejs/dagre (both pinned in package-lock.json), so the
// output is the same bytes on every machine; tests/debugger/test_inspector_build.py checks that
// the committed files are what this script makes.
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const src = path.join(root, "web", "inspector");
const out = path.resolve(process.argv[2] ?? path.join(root, "asyncmachine", "debugger", "static"));

const common = {
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome111", "firefox113", "safari16.4"],
  charset: "utf8",
  legalComments: "eof",
  logLevel: "warning",
  absWorkingDir: root,
};

await mkdir(out, { recursive: true });
await build({ ...common, entryPoints: [path.join(src, "src", "main.mjs")], outfile: path.join(out, "inspector.js") });
await build({ ...common, entryPoints: [path.join(src, "src", "graph.mjs")], outfile: path.join(out, "graph.js") });
await build({ ...common, entryPoints: [path.join(src, "inspector.css")], outfile: path.join(out, "inspector.css") });
await build({ ...common, entryPoints: [path.join(src, "graph.css")], outfile: path.join(out, "graph.css") });
for (const name of ["index.html", "favicon.svg"]) await copyFile(path.join(src, name), path.join(out, name));
