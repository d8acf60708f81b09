// asyncmachine for JavaScript: machines run in Pyodide, the page drives them with plain objects.
//
//   import { loadAsyncmachine } from "./asyncmachine.mjs";
//   const am = await loadAsyncmachine({ indexURL: "/pyodide/" });
//   const mach = am.machine({ Ready: { require: ["Start"] }, Start: {} });
//   mach.add1("Start"); await mach.when1("Ready");
//
// Calls cross into Python as JSON text through one Pyodide proxy per machine; Python calls back
// through one JS function per machine. dispose() releases both.

export const Executed = 0;
export const Canceled = 1;

/** An error raised by the Python side: `name` (and `pythonType`) is the Python exception type. */
export class AsyncMachineError extends Error {
  constructor(type, message) {
    super(message);
    this.name = type;
    this.pythonType = type;
  }
}

/** A remote machine could not be reached; `message` (and `reason`) say why: "refused",
 * "not_found", "forbidden_origin", "timeout" or "protocol". */
export class ConnectError extends AsyncMachineError {
  constructor(reason, detail = "") {
    super("ConnectError", reason);
    this.reason = reason;
    this.detail = detail;
  }
}

/** Load Pyodide from `indexURL` (a self-hosted distribution) and the asyncmachine wheel; the wheel
 * downloads while Pyodide boots. `snapshot` (a URL such as "pyodide/asyncmachine-snapshot.bin.gz",
 * made by tools/make_snapshot.mjs) starts Python from a memory snapshot with asyncmachine already
 * imported instead of booting it: seconds faster, for one more download (and a long computation
 * right after may run slower: V8 has not optimized the interpreter yet, see bench/README.md). If
 * the snapshot can't be used, Python boots as usual and a warning says why. */
export async function loadAsyncmachine({ indexURL, pyodide, snapshot } = {}) {
  if (!indexURL && !pyodide) throw new TypeError("loadAsyncmachine needs indexURL or pyodide");
  let py = pyodide;
  if (!py) {
    const page = globalThis.location?.href ?? import.meta.url;
    const base = new URL(indexURL, page);
    const { loadPyodide } = await import(new URL("pyodide.mjs", base).href);
    // Node wants a file path where the browser wants a URL
    const where = base.protocol === "file:" ? decodeURIComponent(base.pathname) : base.href;
    if (snapshot) {
      const restored = await restoreSnapshot(loadPyodide, where, base, new URL(snapshot, page));
      if (restored) return new Asyncmachine(restored);
    }
    py = await loadPyodide({ indexURL: where, packages: ["asyncmachine"] });
    return new Asyncmachine(py);
  }
  if (!installed(py)) {
    await py.loadPackage("asyncmachine", { messageCallback: () => {}, errorCallback: () => {} });
  }
  if (!installed(py)) {
    throw new Error(
      "asyncmachine is not installed in this Pyodide: install its wheel first " +
        "(await pyodide.loadPackage('micropip'); await pyodide.pyimport('micropip').install(wheelUrl))",
    );
  }
  return new Asyncmachine(py);
}

/** Whether Python can import asyncmachine (a page's own Pyodide may have installed the wheel). */
function installed(py) {
  return py.runPython("import importlib.util; importlib.util.find_spec('asyncmachine') is not None");
}

/** Pyodide restored from the snapshot at `url`, or null (with a warning) when it can't be. */
async function restoreSnapshot(loadPyodide, indexURL, base, url) {
  const bytes = readSnapshot(url);
  bytes.catch(() => {}); // loadPyodide awaits it later: no unhandled rejection meanwhile
  try {
    const py = await loadPyodide({ indexURL, _loadSnapshot: bytes });
    await placeWheel(py, base);
    // every page restored from one snapshot would otherwise draw the same random numbers
    py.runPython("import random; random.seed()");
    return py;
  } catch (err) {
    console.warn(`asyncmachine: not starting from the snapshot ${url.href} (${err.message}); booting Python instead`);
    return null;
  }
}

/** Put the lock's asyncmachine wheel where the snapshot's interpreter imported it from: a zip on
 * `sys.path` whose path ends in `/<sha256>/<file name>`. Its modules are in memory already; the
 * ones not imported yet are read from the zip (no unpacking, no Python to run). */
async function placeWheel(py, base) {
  const { file_name: name, sha256 } = py.lockfile.packages.asyncmachine;
  const where = py.runPython(
    `import sys; next((p for p in sys.path if p.endswith(${JSON.stringify(`/${sha256}/${name}`)})), None)`,
  );
  if (!where) throw new Error(`it was not made from ${name} with the lock's sha256`);
  const digest = sha256.match(/../g).map((byte) => String.fromCharCode(parseInt(byte, 16)));
  const wheel = await readBytes(new URL(name, base), { integrity: `sha256-${btoa(digest.join(""))}` });
  py.FS.mkdirTree(where.slice(0, where.lastIndexOf("/")));
  py.FS.writeFile(where, wheel);
}

/** The snapshot's bytes. A `.gz` file is inflated here, so any static host can serve it as it is
 * (unless the host already did, announcing `Content-Encoding`). */
function readSnapshot(url) {
  return readBytes(url, { inflate: url.pathname.endsWith(".gz") });
}

/** The bytes at `url` (http(s) or, in Node, file), checked against `integrity` when fetched,
 * gunzipped by `inflate` unless the server said it had encoded them itself. */
async function readBytes(url, { integrity, inflate = false } = {}) {
  let body;
  if (url.protocol === "file:") {
    const { readFile } = await import("node:fs/promises");
    body = new Blob([await readFile(url)]).stream();
  } else {
    const response = await fetch(url, { integrity });
    if (!response.ok) throw new Error(`${url.href}: ${response.status} ${response.statusText}`);
    body = response.body;
    inflate &&= !response.headers.has("Content-Encoding");
  }
  if (inflate) body = body.pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(body).arrayBuffer());
}

/** The loaded runtime: a factory of machines. */
export class Asyncmachine {
  constructor(pyodide) {
    this.pyodide = pyodide;
    this._module = pyodide.pyimport("asyncmachine._bridge");
    this.version = pyodide.runPython("import asyncmachine; asyncmachine.__version__");
    // for test tools (asyncmachine.testing): what the recorded machines did, as JSON lines
    registry.recording = (greeting = false) => this._module.recording_lines(Boolean(greeting));
    // ... and all of it as a session file's lines (what the am-dbg inspector opens)
    registry.session = () => this._module.session_lines();
  }

  /** A local machine from a JSON schema: `{Foo: {auto: true, require: ["Bar"]}}`. */
  machine(schema, { logger, ...opts } = {}) {
    const machine = new AsyncMachine({ logger });
    // streamed to am-dbg: the tab id groups this page's machines in the inspector
    if (opts.debug) opts.tabId = registry.tabId;
    const pyOpts = JSON.stringify({ ...opts, log: Boolean(logger) });
    machine._attach(this._module.new_bridge(JSON.stringify(schema), pyOpts, machine._notifier));
    if (registry.recordAll) machine._invoke("record", registry.tabId);
    return machine;
  }

  /** A machine hosted by a Python server (`asyncmachine.rpc.Server`), mirrored in this page
   * (only `states`, when given). It has the same methods; mutations and dry runs (`canAdd1`...)
   * return Promises of the server's answer, and `connection` is the connection's own machine
   * (`Ready`, `Disconnected`, ...). Rejects with a `ConnectError` whose message is the reason. */
  async connect(url, { id, token, clientId, states, timeout, backoff } = {}) {
    const machine = new AsyncMachine({ remote: true });
    const opts = JSON.stringify({ id, token, clientId, tabId: registry.tabId, states, timeout, backoff });
    const pending = this._module.connect_bridge(String(url), opts, machine._notifier);
    let bridge;
    try {
      bridge = await pending;
    } finally {
      pending.destroy();
    }
    machine._attach(bridge);
    const connection = new AsyncMachine({ readonly: true });
    connection._attach(bridge.connection(connection._notifier));
    machine.connection = connection;
    return machine;
  }
}

let nextId = 0;

/** Every live machine of the page by id, for tools and end-to-end tests
 * (`asyncmachine.testing.playwright` reads it). */
export const registry = (globalThis.__asyncmachine__ ??= { machines: new Map() });
/** Record every local machine of the page, from now on (test tools read `registry.recording()`). */
registry.record ??= () => {
  registry.recordAll = true;
  for (const m of registry.machines.values()) if (!m._remote && !m._readonly && m._bridge) m._invoke("record", registry.tabId);
};
/** One random id per page, for tools that group machines by tab (am-dbg). */
registry.tabId ??= Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

/** A machine with the Python API in camelCase (local, or remote when made by `connect`). Its
 * methods are those of the bridge's method table (asyncmachine/_bridge/_methods.py; a test keeps
 * this class, the .d.mts and the table in step) plus the page-only ones: bind, subscribe, store,
 * stateSignal, onPayload, dispose. */
export class AsyncMachine {
  constructor({ logger, remote = false, readonly = false } = {}) {
    this._readonly = readonly;
    this._payloadHandlers = new Set();
    this._waiters = new Map();
    this._signals = new Map();
    this._subscribers = new Map();
    this._bindings = new Map();
    this._logger = logger;
    this._remote = remote;
    this._bridge = this._call = null;
    this._notifier = (kind, id, payload) => this._notify(kind, id, payload);
    this.connection = null;
  }

  _attach(bridge) {
    if (typeof bridge === "string") {
      const { error } = JSON.parse(bridge);
      if (error.type === "ConnectError") throw new ConnectError(error.message, error.detail);
      throw new AsyncMachineError(error.type, error.message);
    }
    this._bridge = bridge;
    this._call = bridge.call;
    this.id = this._invoke("id");
    if (!this._readonly) registry.machines.set(this.id, this);
  }

  /** True for a machine mirrored from a server. */
  get isRemote() { return this._remote; }

  // ---- mutations: each returns Executed (0), Canceled (1) or a queue tick (>= 2)
  // (remote machines return Promises of the same numbers: `await` works for both)
  add(states, args) { return this._mutate("add", states, args); }
  add1(state, args) { return this._mutate("add1", state, args); }
  remove(states, args) { return this._mutate("remove", states, args); }
  remove1(state, args) { return this._mutate("remove1", state, args); }
  set(states, args) { return this._mutate("set", states, args); }
  toggle(states, args) { return this._mutate("toggle", states, args); }
  toggle1(state, args) { return this._mutate("toggle1", state, args); }
  /** Remote only: fetch a full snapshot from the server. */
  sync() { return this._later("sync"); }
  /** Activate `Exception` with `error`: `err().type` is its JS `name` ("TypeError"). */
  addErr(error, args) { return this._mutate("addErr", [errorName(error), errorMessage(error)], args); }
  addErrState(state, error, args) {
    return this._mutate("addErrState", [state, errorName(error), errorMessage(error)], args);
  }
  // dry runs: remote machines ask the server (its negotiation handlers decide) and return Promises
  canAdd(states, args) { return this._mutate("canAdd", states, args); }
  canAdd1(state, args) { return this._mutate("canAdd1", state, args); }
  canRemove(states, args) { return this._mutate("canRemove", states, args); }
  canRemove1(state, args) { return this._mutate("canRemove1", state, args); }
  /** What adding the states would do, and why (`{result, target, added, removed, canceledBy,
   * rejected}`); nothing changes. Remote: a Promise (RpcError "unsupported" on an old server). */
  explainAdd(states, args) { return this._mutate("explainAdd", states, args); }
  explainAdd1(state, args) { return this._mutate("explainAdd1", state, args); }

  // ---- reading
  is(states) { return this._invoke("is", states); }
  is1(state) { return this._invoke("is1", state); }
  not(states) { return this._invoke("not", states); }
  not1(state) { return this._invoke("not1", state); }
  any(...lists) { return this._invoke("any", ...lists); }
  any1(...states) { return this._invoke("any1", ...states); }
  has(states) { return this._invoke("has", states); }
  has1(state) { return this._invoke("has1", state); }
  /** The first active state, scanning the groups in order; "" if none. */
  switch(...groups) { return this._invoke("switch", ...groups); }
  index(states) { return this._invoke("index", states); }
  index1(state) { return this._invoke("index1", state); }
  tick(state) { return this._invoke("tick", state); }
  clock(states) { return this._invoke("clock", states ?? null); }
  time(states) { return this._invoke("time", states ?? null); }
  isTime(time, states) { return this._invoke("isTime", time, states ?? null); }
  wasTime(time, states) { return this._invoke("wasTime", time, states ?? null); }
  isClock(clock) { return this._invoke("isClock", clock); }
  wasClock(clock) { return this._invoke("wasClock", clock); }
  activeStates(states) { return this._invoke("activeStates", states ?? null); }
  stateNames() { return this._invoke("stateNames"); }
  string() { return this._invoke("string"); }
  stringAll() { return this._invoke("stringAll"); }
  inspect(states) { return this._invoke("inspect", states ?? null); }
  queueTick() { return this._invoke("queueTick"); }
  isErr() { return this._invoke("isErr"); }
  err() { return this._invoke("err"); }
  log(message) { return this._invoke("log", String(message)); }
  get isDisposed() { return this._bridge === null; }

  // ---- waiting: Promises resolved by the mutation that satisfies them, rejected on dispose(),
  // and with `{timeout (ms), signal}` rejected by a DOMException "TimeoutError" / "AbortError"
  when(states, opts) { return this._wait(opts, "when", states); }
  when1(state, opts) { return this._wait(opts, "when1", state); }
  whenNot(states, opts) { return this._wait(opts, "whenNot", states); }
  whenNot1(state, opts) { return this._wait(opts, "whenNot1", state); }
  whenTicks(state, n, opts) { return this._wait(opts, "whenTicks", state, n); }
  whenNextActive(state, opts) { return this._wait(opts, "whenNextActive", state); }
  whenTime(states, times, opts) { return this._wait(opts, "whenTime", states, times); }
  whenTime1(state, tick, opts) { return this._wait(opts, "whenTime1", state, tick); }
  whenArgs(state, args, opts) {
    try {
      return this._wait(opts, "whenArgs", state, checkJson(args, "args"));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  whenErr(opts) { return this._wait(opts, "whenErr"); }
  whenQueue(tick, opts) { return this._wait(opts, "whenQueue", tick); }

  // ---- snapshots (local machines)
  /** The clock as plain JSON data, with the hash of the schema (for `importData`, `persist`). */
  export() { return this._invoke("export"); }
  /** Restore an `export()`; one of another schema throws a `SchemaError` and changes nothing. */
  importData(data, { checkId = false } = {}) { return this._invoke("importData", data, checkId); }

  /** An AbortSignal aborted when `state` deactivates, inside the transition that deactivates it
   * (already aborted if `state` is inactive). Pass it to fetch() to drop stale requests. */
  stateSignal(state, tick = null) {
    const controller = new AbortController();
    const id = `g${++nextId}`;
    this._signals.set(id, { controller, state });
    let live = false;
    try {
      live = this._invoke("stateSignal", state, tick, id);
    } finally {
      if (!live) this._abortSignal(id);
    }
    return controller.signal;
  }

  /** Call `fn(info)` after every accepted transition; returns the function that unsubscribes. */
  subscribe(fn) {
    if (typeof fn !== "function") throw new TypeError("subscribe expects a function");
    const id = `s${++nextId}`;
    this._subscribers.set(id, fn);
    this._invoke("subscribe", id);
    return () => {
      if (this._subscribers.delete(id) && this._bridge) this._invoke("unsubscribe", id);
    };
  }

  /** A store for UI frameworks (`useSyncExternalStore` in React, Svelte's and Vue's stores):
   * `getSnapshot()` returns the same frozen `{clock, active}` of `states` (all by default) until
   * one of their ticks changes; `subscribe(listener)` calls `listener()` after such a change. */
  store(states) {
    const machine = this;
    const watched = states ? [...states] : null;
    let snapshot = null;
    let unsubscribe = null;
    const listeners = new Set();
    const take = (clock, active) => {
      const picked = watched ? Object.fromEntries(watched.map((s) => [s, clock[s]])) : clock;
      const names = Object.keys(picked);
      if (snapshot && names.every((s) => snapshot.clock[s] === picked[s])) return false;
      const on = active.filter((s) => s in picked);
      snapshot = Object.freeze({ clock: Object.freeze(picked), active: Object.freeze(on) });
      return true;
    };
    const unknown = (watched ?? []).filter((s) => !this.has1(s));
    if (unknown.length) throw new AsyncMachineError("StateMissingError", `unknown states: ${unknown.join(" ")}`);
    take(this.clock(watched), this.activeStates(watched));
    return {
      subscribe(listener) {
        listeners.add(listener);
        unsubscribe ??= machine.subscribe((info) => {
          if (take(info.clock, info.activeStates)) for (const fn of [...listeners]) fn();
        });
        return () => {
          listeners.delete(listener);
          if (!listeners.size && unsubscribe) {
            unsubscribe();
            unsubscribe = null;
          }
        };
      },
      getSnapshot() {
        if (!unsubscribe && !machine.isDisposed) take(machine.clock(watched), machine.activeStates(watched));
        return snapshot;
      },
    };
  }

  /** Bind handlers named like `FooEnter`, `FooState`, `FooExit`, `FooEnd`, `FooBar`, `AnyEnter`.
   * Negotiation handlers (`*Enter`, `*Exit`, `FooBar`, `AnyEnter`) decide synchronously: they
   * cancel by returning `false`, and an `async` one is refused with a `HandlerError`. Final
   * handlers (`*State`, `*End`, `AnyState`) may be `async`; a throw or a rejection activates
   * `Exception`. `e.signal` (in `FooState`) aborts when Foo deactivates. Returns the unbinder. */
  bind(handlers) {
    const names = [];
    for (let obj = handlers; obj && obj !== Object.prototype; obj = Object.getPrototypeOf(obj)) {
      for (const name of Object.getOwnPropertyNames(obj)) {
        if (name !== "constructor" && typeof handlers[name] === "function" && !names.includes(name)) {
          names.push(name);
        }
      }
    }
    const asyncNames = names.filter((name) => ASYNC_FUNCTIONS.has(handlers[name].constructor?.name));
    const id = `b${++nextId}`;
    this._bindings.set(id, handlers);
    try {
      this._invoke("bind", id, names, asyncNames);
    } catch (err) {
      this._bindings.delete(id);
      throw err;
    }
    return () => {
      if (this._bindings.delete(id) && this._bridge) this._invoke("unbind", id);
    };
  }

  /** Remote only: call `fn(name, data)` for each payload the server sends; returns the remover. */
  onPayload(fn) {
    this._payloadHandlers.add(fn);
    return () => this._payloadHandlers.delete(fn);
  }

  /** JS callbacks the Python side still refers to; 0 once everything was released. */
  resources() { return this._bridge ? this._invoke("resources") : 0; }

  /** Dispose the machine and release every Pyodide proxy it holds. */
  dispose() {
    if (!this._bridge) return;
    this.connection?.dispose();
    if (registry.machines.get(this.id) === this) registry.machines.delete(this.id);
    this._payloadHandlers.clear();
    this._invoke("dispose");
    this._call.destroy();
    this._bridge.destroy();
    this._bridge = this._call = null;
    this._subscribers.clear();
    this._bindings.clear();
    for (const id of [...this._signals.keys()]) this._abortSignal(id);
  }

  // ---- internals
  _invoke(method, ...params) {
    if (!this._bridge) throw new AsyncMachineError("DisposedError", `machine ${this.id} is disposed`);
    const out = JSON.parse(this._call(method, JSON.stringify(params)));
    if (out.error) throw new AsyncMachineError(out.error.type, out.error.message);
    return out.ok;
  }

  /** `first` is a state, a list of states, or (addErr*) the list of leading params. */
  _mutate(method, first, args) {
    const params = method.startsWith("addErr") ? first : [first];
    if (!this._remote) return this._invoke(method, ...params, sendable(args));
    try {
      return this._later(method, ...params, sendable(args));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  _later(method, ...params) {
    const id = `r${++nextId}`;
    return new Promise((resolve, reject) => {
      this._waiters.set(id, { resolve, reject });
      try {
        this._invoke(method, ...params, id);
      } catch (err) {
        this._waiters.delete(id);
        reject(err);
      }
    });
  }

  _wait(opts, method, ...params) {
    const { timeout, signal } = checkWaitOptions(opts);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const id = `r${++nextId}`;
    return new Promise((resolve, reject) => {
      let timer = null;
      const onAbort = () => giveUp(abortReason(signal));
      const settle = (fn) => (value) => {
        if (timer !== null) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        fn(value);
      };
      const giveUp = (reason) => {
        if (!this._waiters.delete(id)) return;
        if (this._bridge) this._invoke("cancelWait", id); // releases the Python-side waiter
        settle(reject)(reason);
      };
      this._waiters.set(id, { resolve: settle(resolve), reject: settle(reject) });
      try {
        this._invoke(method, ...params, id);
      } catch (err) {
        this._waiters.delete(id);
        reject(err);
        return;
      }
      if (!this._waiters.has(id)) return; // already resolved
      if (timeout !== undefined) {
        timer = setTimeout(() => giveUp(new DOMException(`${method} timed out after ${timeout} ms`, "TimeoutError")), timeout);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  _abortSignal(id) {
    const entry = this._signals.get(id);
    if (!entry) return;
    this._signals.delete(id);
    entry.controller.abort(new DOMException(`${entry.state} is no longer active`, "AbortError"));
  }

  _runHandler(handlers, data) {
    const machine = this;
    let signal = null;
    const event = {
      ...data,
      machine,
      /** Aborted when the state of this `FooState` handler deactivates. */
      get signal() {
        if (!data.signal) return undefined;
        signal ??= machine.stateSignal(data.signal.state, data.signal.tick);
        return signal;
      },
    };
    let out;
    try {
      out = handlers[data.name].call(handlers, event);
    } catch (err) {
      return errorEnvelope(err);
    }
    if (typeof out?.then === "function") {
      return Promise.resolve(out).then(() => null, errorEnvelope);
    }
    return typeof out === "boolean" ? out : undefined;
  }

  _notify(kind, id, payload) {
    const data = JSON.parse(payload);
    if (kind === "handler") {
      const handlers = this._bindings.get(id);
      return handlers?.[data.name] ? this._runHandler(handlers, data) : undefined;
    }
    if (kind === "signal") {
      this._abortSignal(id);
      return undefined;
    }
    if (kind === "waiter") {
      const waiter = this._waiters.get(id);
      this._waiters.delete(id);
      if (data.cancelled) waiter?.reject(new AsyncMachineError("CancelledError", "waiter cancelled"));
      else waiter?.resolve();
      return undefined;
    }
    if (kind === "result") {
      const waiter = this._waiters.get(id);
      this._waiters.delete(id);
      if (data.error) waiter?.reject(new AsyncMachineError(data.error.type, data.error.message));
      else waiter?.resolve(data.ok);
      return undefined;
    }
    if (kind === "subscribe") {
      this._subscribers.get(id)?.(data);
      return undefined;
    }
    if (kind === "payload") {
      for (const fn of this._payloadHandlers) fn(id, data);
      return undefined;
    }
    if (kind === "log") {
      this._logger?.(Number(id), data);
    }
    return undefined;
  }
}

const ASYNC_FUNCTIONS = new Set(["AsyncFunction", "AsyncGeneratorFunction"]);

function errorName(error) {
  return typeof error?.name === "string" && error.name ? error.name : "Error";
}

function errorMessage(error) {
  return String(error?.message ?? error);
}

/** A thrown or rejected value as the Python side reads it: its JS name and message. */
function errorEnvelope(error) {
  return JSON.stringify({ error: { type: errorName(error), message: errorMessage(error) } });
}

function abortReason(signal) {
  const reason = signal.reason;
  return reason instanceof DOMException && reason.name === "AbortError"
    ? reason
    : new DOMException(reason === undefined ? "aborted" : errorMessage(reason), "AbortError");
}

/** Mutation args as sent: `null` for none, else checked by `checkJson`. */
function sendable(args) {
  return args === undefined || args === null ? null : checkJson(args, "args");
}

function checkWaitOptions(opts) {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object") throw new TypeError("when* options must be {timeout?, signal?}");
  const { timeout, signal } = opts;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout >= 0)) {
    throw new TypeError(`timeout must be a number of milliseconds >= 0, not ${String(timeout)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError("signal must be an AbortSignal");
  return { timeout, signal };
}

/** `value` if JSON carries it exactly (plain objects, arrays, strings, finite numbers, booleans,
 * null); otherwise a `BridgeError` naming the key path of the first value it would lose. */
export function checkJson(value, path = "args") {
  const seen = new Set();
  const walk = (v, at) => {
    const fail = (what, hint = "") => {
      throw new AsyncMachineError("BridgeError", `${at}: ${what} cannot cross to Python as JSON${hint}`);
    };
    if (v === null || typeof v === "string" || typeof v === "boolean") return;
    if (typeof v === "number") return Number.isFinite(v) || fail(`the number ${v}`);
    if (v === undefined) return fail("undefined", " (leave the key out, or use null)");
    if (typeof v === "bigint") return fail("a BigInt", " (send it as a string)");
    if (typeof v === "function") return fail("a function");
    if (typeof v === "symbol") return fail("a symbol");
    if (seen.has(v)) return fail("a cycle");
    if (v instanceof Date) return fail("a Date", " (send date.toISOString())");
    if (v instanceof Map) return fail("a Map", " (send Object.fromEntries(map))");
    if (v instanceof Set) return fail("a Set", " (send [...set])");
    const proto = Object.getPrototypeOf(v);
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) {
      return fail(`a ${v.constructor?.name ?? "class instance"}`, " (send a plain object)");
    }
    seen.add(v);
    if (Array.isArray(v)) v.forEach((item, i) => walk(item, `${at}[${i}]`));
    else for (const [key, item] of Object.entries(v)) walk(item, /^[A-Za-z_$][\w$]*$/.test(key) ? `${at}.${key}` : `${at}[${JSON.stringify(key)}]`);
    seen.delete(v);
  };
  if (path === "args" && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw new AsyncMachineError("BridgeError", "args must be an object");
  }
  walk(value, path);
  return value;
}

// ---- worker pools (asyncmachine.node): ask a supervisor for a worker, then drive it directly

/** A worker lent by a supervisor: `worker` is its machine (mutations go to the worker process),
 * `supervisor` the supervisor's. `release()` gives it back to the pool. */
export class WorkerLease {
  constructor(supervisor, worker, workerId) {
    this.supervisor = supervisor;
    this.worker = worker;
    this.workerId = workerId;
  }

  /** Give the worker back (its token is revoked) and close both connections. */
  async release() {
    if (this.worker.isDisposed) return;
    this.worker.dispose(); // the worker goes back to the pool as soon as it sees this
    try {
      await this.supervisor.add1("WorkerReleased", { worker_id: this.workerId });
    } catch {
      // the supervisor took the worker back when the connection closed
    }
    this.supervisor.dispose();
  }
}

/** Ask the supervisor of `kind` at `url` for a worker: connects to the supervisor (`am.connect`),
 * adds `WorkerRequested`, waits for the `WorkerAssigned` payload meant for this request, then
 * connects to the worker with its one-time token. Rejects with a `DOMException` named
 * `TimeoutError` when no worker comes within `timeout` ms (10000). */
export async function requestWorker(am, url, { kind, token, clientId, timeout = 10000, states } = {}) {
  if (!kind) throw new TypeError("requestWorker needs {kind}");
  clientId ??= `page-${registry.tabId}-${++nextId}`;
  const seconds = timeout / 1000;
  const supervisor = await am.connect(url, { id: `ns-${kind}`, token, clientId, timeout: seconds });
  const req = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
  let stop = () => {};
  try {
    const assigned = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new DOMException(`no worker within ${timeout} ms`, "TimeoutError")), timeout);
      const off = supervisor.onPayload((name, data) => {
        if (name === "WorkerAssigned" && data?.req === req) resolve(data);
      });
      stop = () => { clearTimeout(timer); off(); };
    });
    await supervisor.add1("WorkerRequested", { req });
    const { url: workerUrl, machine_id: workerId, token: workerToken } = await assigned;
    const worker = await am.connect(workerUrl, { id: workerId, token: workerToken, clientId, states, timeout: seconds });
    return new WorkerLease(supervisor, worker, workerId);
  } catch (err) {
    supervisor.dispose();
    throw err;
  } finally {
    stop();
  }
}
