// W1 and W3 on XState v5, the browser peer: the same work as the Python runs, on Node's V8.
//
//   node --expose-gc bench/xstate/run.mjs [--quick] [--only W1,W3] [--n W1=200000,W3=40000]
//
// Prints one JSON line per workload on stdout (progress on stderr). XState is single-state per
// region, so the workloads take the peers' shapes of perf-workloads.md:
//   W1: one region A <-> B, events `go_b` / `go_a` alternated from A; unit = transition;
//       valid when the actor made N transitions (counted by a snapshot observer) and is in A.
//   W3: five parallel regions H0..H4, each {off, on}; `add_Hi` (off -> on) has a guard (= HiEnter),
//       `on`'s entry action (= HiState); `rm_Hi` (on -> off) a guard (= HiExit), `on`'s exit action
//       (= HiEnd); each increments a counter. Cycle i = add_H[i%5], rm_H[i%5]; valid when
//       counter == 4N and every region is off.
// Events are allocated once, outside the timed region, as the Python runs fetch bound methods.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createActor, setup } from "xstate";
import { check, runWorkload } from "./harness.mjs";

const SYSTEM = "xstate";
export const N_FULL = { W1: 200_000, W3: 40_000 };
export const N_QUICK = { W1: 2_000, W3: 500 };

const xstateVersion = JSON.parse(
  readFileSync(new URL(import.meta.resolve("xstate/package.json")), "utf8"),
).version;

const w1Machine = setup({}).createMachine({
  id: "w1",
  initial: "A",
  states: {
    A: { on: { go_b: { target: "B" } } },
    B: { on: { go_a: { target: "A" } } },
  },
});

/** W1 "toggle": N transitions A -> B -> A ... */
export function w1(n) {
  if (n % 2) throw new RangeError("W1 N must be even");
  const goB = { type: "go_b" };
  const goA = { type: "go_a" };
  return (timer) => {
    const actor = createActor(w1Machine);
    let transitions = 0;
    let last = "A";
    actor.subscribe((snapshot) => {
      if (snapshot.value !== last) {
        last = snapshot.value;
        transitions++;
      }
    });
    actor.start();
    timer.start();
    for (let i = 0; i < n / 2; i++) {
      actor.send(goB);
      actor.send(goA);
    }
    timer.stop();
    const value = actor.getSnapshot().value;
    actor.stop();
    check(transitions === n, `W1: ${transitions} transitions, expected ${n}`);
    check(value === "A", `W1: ends in ${value}, expected A`);
  };
}

/** The W3 machine: five parallel regions whose guards and actions count on `counter.n`. */
function w3Machine(counter) {
  const regions = {};
  for (let i = 0; i < 5; i++) {
    regions[`H${i}`] = {
      initial: "off",
      states: {
        off: { on: { [`add_H${i}`]: { target: "on", guard: "canEnter" } } },
        on: {
          entry: "state",
          exit: "end",
          on: { [`rm_H${i}`]: { target: "off", guard: "canExit" } },
        },
      },
    };
  }
  return setup({
    guards: {
      canEnter: () => {
        counter.n++;
        return true;
      },
      canExit: () => {
        counter.n++;
        return true;
      },
    },
    actions: {
      state: () => {
        counter.n++;
      },
      end: () => {
        counter.n++;
      },
    },
  }).createMachine({ id: "w3", type: "parallel", states: regions });
}

/** W3 "handlers": a cycle is add_Hi + rm_Hi, 2 guards and 2 actions. */
export function w3(n) {
  const adds = [0, 1, 2, 3, 4].map((i) => ({ type: `add_H${i}` }));
  const removes = [0, 1, 2, 3, 4].map((i) => ({ type: `rm_H${i}` }));
  return (timer) => {
    const counter = { n: 0 };
    const actor = createActor(w3Machine(counter)).start();
    timer.start();
    for (let i = 0; i < n; i++) {
      actor.send(adds[i % 5]);
      actor.send(removes[i % 5]);
    }
    timer.stop();
    const value = actor.getSnapshot().value;
    actor.stop();
    check(counter.n === 4 * n, `W3: counter ${counter.n}, expected ${4 * n}`);
    check(
      Object.values(value).every((v) => v === "off"),
      `W3: ends in ${JSON.stringify(value)}, expected every region off`,
    );
  };
}

const WORKLOADS = {
  W1: (n) => ({ unit: "transition", rep: w1(n) }),
  W3: (n) => ({ unit: "cycle", rep: w3(n) }),
};

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

function main(argv) {
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
    const result = runWorkload({ system: SYSTEM, workload: name, n: sizes[name], unit, rep, extra });
    console.log(JSON.stringify(result));
  }
}

try {
  main(process.argv.slice(2));
} catch (err) {
  console.error(`bench/xstate: ${err.name}: ${err.message}`);
  process.exitCode = 1;
}
