// Type declarations for persist.mjs.
import type { AsyncMachine } from "./asyncmachine.mjs";

/** Restore `machine` from `storage[key]` (a snapshot of another schema throws a `SchemaError` and
 * stays stored) and save its clock there after every transition; returns the stopper. */
export declare function persist(
  machine: AsyncMachine<string>,
  key: string,
  opts?: { storage?: Storage },
): () => void;
