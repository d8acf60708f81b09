// React bindings for asyncmachine.mjs: re-render a component when the states it watches tick.
//
//   import { useMachine } from "./react.mjs";
//   function Upload({ machine }) {
//     const { active } = useMachine(machine, ["Uploading", "Done"]);
//     return active.includes("Done") ? "done" : active.includes("Uploading") ? "uploading" : "idle";
//   }
//
// It imports "react" by its bare name: bundle the page (esbuild, Vite...) or map the name with an
// import map. Other frameworks use `machine.store(states)` directly (subscribe + getSnapshot).
import { useMemo, useSyncExternalStore } from "react";

/** The `{clock, active}` snapshot of `states` (all by default): the component re-renders only
 * when one of their ticks changes, and not for changes to other states. */
export function useMachine(machine, states) {
  const key = states ? states.join("\u0000") : null;
  const store = useMemo(() => machine.store(states), [machine, key]); // key: the states, by value
  return useSyncExternalStore(store.subscribe, store.getSnapshot);
}
