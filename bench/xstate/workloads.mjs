// W1 and W3 on XState v5, the browser peer: the same work as the Python runs (perf-workloads.md).
//
// XState is single-state per region, so the workloads take the peers' shapes:
//   W1: one region A <-> B, events `go_b` / `go_a` alternated from A; unit = transition;
//       valid when the actor made N transitions (counted by a snapshot observer) and is in A.
//   W3: five parallel regions H0..H4, each {off, on}; `add_Hi` (off -> on) has a guard (= HiEnter),
//       `on`'s entry action (= HiState); `rm_Hi` (on -> off) a guard (= HiExit), `on`'s exit action
//       (= HiEnd); each increments a counter. Cycle i = add_H[i%5], rm_H[i%5]; valid when
//       counter == 4N and every region is off.
// Events are allocated once, outside the timed region, as the Python runs fetch bound methods.
import { readFileSync } from "node:fs";
import { createActor, setup } from "xstate";
import { check } from "./harness.mjs";

export const SYSTEM = "xstate";
export const N_FULL = { W1: 200_000, W3: 40_000 };
export const N_QUICK = { W1: 2_000, W3: 500 };

export const xstateVersion = JSON.parse(
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

/** Each workload by name: its unit and the rep function for N. */
export const WORKLOADS = {
  W1: (n) => ({ unit: "transition", rep: w1(n) }),
  W3: (n) => ({ unit: "cycle", rep: w3(n) }),
};
