// A worker thread that runs XState reps on request: its own V8 heap, so that Pyodide's, in the
// main thread of the same process, neither slows XState's garbage collection nor the other way.
//
//   message {name, n}  ->  reply {ns} (the rep's timed region) or {error}
import { parentPort } from "node:worker_threads";
import { timeRep } from "./harness.mjs";
import { WORKLOADS } from "./workloads.mjs";

const reps = new Map();

parentPort.on("message", ({ name, n }) => {
  try {
    const key = `${name}/${n}`;
    if (!reps.has(key)) reps.set(key, WORKLOADS[name](n).rep);
    parentPort.postMessage({ ns: timeRep(reps.get(key)) });
  } catch (err) {
    parentPort.postMessage({ error: `${err.name}: ${err.message}` });
  }
});
