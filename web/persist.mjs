// Keep a machine's clock in localStorage across page loads.
//
//   import { persist } from "./persist.mjs";
//   const stop = persist(machine, "upload");   // restores a saved clock, then saves every change
//
// A snapshot saved by a machine of another schema is refused with a SchemaError (and left where
// it is): a new release of the page with new states starts from a fresh clock instead of a wrong
// one. The clock is restored as it was, without running handlers (like Python's import_data).

/** Restore `machine` from `storage[key]` (when there is a snapshot there) and save its clock there
 * after every transition; returns the function that stops saving. */
export function persist(machine, key, { storage = globalThis.localStorage } = {}) {
  if (!storage) throw new TypeError("persist needs a Storage (localStorage or sessionStorage)");
  const saved = storage.getItem(key);
  if (saved !== null) {
    let data;
    try {
      data = JSON.parse(saved);
    } catch (err) {
      throw new SyntaxError(`${key}: the saved snapshot is not JSON (${err.message})`);
    }
    machine.importData(data);
  }
  const save = () => storage.setItem(key, JSON.stringify(machine.export()));
  save();
  return machine.subscribe(save);
}
