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
  }
  await py.loadPackage("asyncmachine", { messageCallback: () => {}, errorCallback: console.error });
  return new Asyncmachine(py);
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
    this._rpc = null;
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
    this._rpc ??= this.pyodide.pyimport("asyncmachine.rpc._jsbridge");
    const machine = new AsyncMachine({ remote: true });
    const opts = JSON.stringify({ id, token, clientId, tabId: registry.tabId, states, timeout, backoff });
    const pending = this._rpc.connect_bridge(String(url), opts, machine._notifier);
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

/** A machine with the api.md surface in camelCase (local, or remote when made by `connect`). */
export class AsyncMachine {
  constructor({ logger, remote = false, readonly = false } = {}) {
    this._readonly = readonly;
    this._payloadHandlers = new Set();
    this._waiters = new Map();
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
  addErr(error, args) {
    const message = String(error?.message ?? error);
    return this._remote
      ? this._later("addErr", message, args ?? null, error?.name ?? "Error")
      : this._invoke("addErr", message, args ?? null);
  }
  addErrState(state, error, args) {
    const message = String(error?.message ?? error);
    return this._remote
      ? this._later("addErrState", state, message, args ?? null, error?.name ?? "Error")
      : this._invoke("addErrState", state, message, args ?? null);
  }
  // dry runs: remote machines ask the server (its negotiation handlers decide) and return Promises
  canAdd(states, args) { return this._mutate("canAdd", states, args); }
  canAdd1(state, args) { return this._mutate("canAdd1", state, args); }
  canRemove(states, args) { return this._mutate("canRemove", states, args); }
  canRemove1(state, args) { return this._mutate("canRemove1", state, args); }
  /** Remote: what adding the states would do, and why (`{result, target, added, removed,
   * canceledBy, rejected}`); rejects with `RpcError` "unsupported" on a server that cannot. */
  explainAdd(states, args) { return this._mutate("explainAdd", states, args); }
  explainAdd1(state, args) { return this._mutate("explainAdd1", state, args); }

  // ---- reading
  is(states) { return this._invoke("is", states); }
  is1(state) { return this._invoke("is1", state); }
  not(states) { return this._invoke("not", states); }
  not1(state) { return this._invoke("not1", state); }
  any(...lists) { return this._invoke("any", ...lists); }
  any1(...states) { return this._invoke("any1", ...states); }
  has1(state) { return this._invoke("has1", state); }
  tick(state) { return this._invoke("tick", state); }
  clock(states) { return this._invoke("clock", states ?? null); }
  time(states) { return this._invoke("time", states ?? null); }
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

  // ---- waiting: Promises resolved by the mutation that satisfies them, rejected on dispose()
  when(states) { return this._wait("when", states); }
  when1(state) { return this._wait("when1", state); }
  whenNot(states) { return this._wait("whenNot", states); }
  whenNot1(state) { return this._wait("whenNot1", state); }
  whenTicks(state, n) { return this._wait("whenTicks", state, n); }
  whenTime(states, times) { return this._wait("whenTime", states, times); }
  whenTime1(state, tick) { return this._wait("whenTime1", state, tick); }
  whenArgs(state, args) { return this._wait("whenArgs", state, args); }
  whenErr() { return this._wait("whenErr"); }
  whenQueue(tick) { return this._wait("whenQueue", tick); }

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

  /** Bind handlers named like `FooEnter`, `FooState`, `FooExit`, `FooEnd`, `FooBar`, `AnyEnter`.
   * Negotiation handlers cancel by returning `false`. Returns the function that unbinds them. */
  bind(handlers) {
    const names = [];
    for (let obj = handlers; obj && obj !== Object.prototype; obj = Object.getPrototypeOf(obj)) {
      for (const name of Object.getOwnPropertyNames(obj)) {
        if (name !== "constructor" && typeof handlers[name] === "function" && !names.includes(name)) {
          names.push(name);
        }
      }
    }
    const id = `b${++nextId}`;
    this._bindings.set(id, handlers);
    try {
      this._invoke("bind", id, names);
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
  }

  // ---- internals
  _invoke(method, ...params) {
    if (!this._bridge) throw new AsyncMachineError("DisposedError", `machine ${this.id} is disposed`);
    const out = JSON.parse(this._call(method, JSON.stringify(params)));
    if (out.error) throw new AsyncMachineError(out.error.type, out.error.message);
    return out.ok;
  }

  _mutate(method, states, args) {
    return this._remote
      ? this._later(method, states, args ?? null)
      : this._invoke(method, states, args ?? null);
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

  _wait(method, ...params) {
    return this._later(method, ...params);
  }

  _notify(kind, id, payload) {
    const data = JSON.parse(payload);
    if (kind === "handler") {
      const handlers = this._bindings.get(id);
      return handlers?.[data.name]?.call(handlers, { ...data, machine: this });
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
