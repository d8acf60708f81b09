// W1 and W3 on XState v5 alone (bench/xstate/workloads.mjs), on Node's V8.
//
//   node --expose-gc bench/xstate/run.mjs [--quick] [--only W1,W3] [--n W1=200000,W3=40000]
//
// Prints one JSON line per workload on stdout (progress on stderr). `python -m bench.pyodide` runs
// the same workloads rep by rep in turn with Pyodide's (tools/run_pyodide_bench.mjs, XState in
// bench/xstate/worker.mjs).
import { parseArgs } from "node:util";
import { runWorkload } from "./harness.mjs";
import { N_FULL, N_QUICK, SYSTEM, WORKLOADS, xstateVersion } from "./workloads.mjs";

/** Parse `W1=200000,W3=40000` into {W1: 200000, W3: 40000}. */
function parseSizes(text) {
  const sizes = {};
  for (const part of text.split(",")) {
    const [name, value] = part.split("=");
    const n = Number(value);
    if (!(name in WORKLOADS) || !Number.isSafeInteger(n) || n <= 0) {
      throw new RangeError(`--n: "${part}" is not WORKLOAD=positive integer (workloads: W1, W3)`);
    }
    sizes[name] = n;
  }
  return sizes;
}

async function main(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string", default: Object.keys(WORKLOADS).join(",") },
      n: { type: "string" },
    },
  });
  const only = values.only.split(",");
  for (const name of only) {
    if (!(name in WORKLOADS)) throw new RangeError(`--only: unknown workload "${name}" (W1, W3)`);
  }
  const sizes = { ...(values.quick ? N_QUICK : N_FULL), ...(values.n ? parseSizes(values.n) : {}) };
  const extra = { node: process.version, v8: process.versions.v8, xstate: xstateVersion, quick: values.quick };
  for (const name of only) {
    const { unit, rep } = WORKLOADS[name](sizes[name]);
    const result = await runWorkload({ system: SYSTEM, workload: name, n: sizes[name], unit, rep, extra });
    console.log(JSON.stringify(result));
  }
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  console.error(`bench/xstate: ${err.name}: ${err.message}`);
  process.exitCode = 1;
}
