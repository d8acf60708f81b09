// Type declarations for react.mjs.
import type { AsyncMachine, StoreSnapshot } from "./asyncmachine.mjs";

/** The `{clock, active}` snapshot of `states` (all by default); the component re-renders only
 * when one of their ticks changes. */
export declare function useMachine<S extends string>(
  machine: AsyncMachine<S>,
  states?: readonly S[],
): StoreSnapshot<S>;
