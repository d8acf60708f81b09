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

/** Load Pyodide from `indexURL` (a self-hosted distribution) and the asyncmachine wheel. */
export async function loadAsyncmachine({ indexURL, pyodide } = {}) {
  if (!indexURL && !pyodide) throw new TypeError("loadAsyncmachine needs indexURL or pyodide");
  let py = pyodide;
  if (!py) {
    const base = new URL(indexURL, globalThis.location?.href ?? import.meta.url);
    const { loadPyodide } = await import(new URL("pyodide.mjs", base).href);
    // Node wants a file path where the browser wants a URL
    const where = base.protocol === "file:" ? decodeURIComponent(base.pathname) : base.href;
    py = await loadPyodide({ indexURL: where });
  }
  await py.loadPackage("asyncmachine", { messageCallback: () => {}, errorCallback: console.error });
  return new Asyncmachine(py);
}

/** The loaded runtime: a factory of machines. */
export class Asyncmachine {
  constructor(pyodide) {
    this.pyodide = pyodide;
    this._module = pyodide.pyimport("asyncmachine._bridge");
    this.version = pyodide.runPython("import asyncmachine; asyncmachine.__version__");
  }

  /** A machine from a JSON schema: `{Foo: {auto: true, require: ["Bar"]}}`. */
  machine(schema, opts = {}) {
    return new AsyncMachine(this._module, schema, opts);
  }
}

let nextId = 0;

/** A machine with the api.md surface in camelCase. */
export class AsyncMachine {
  constructor(module, schema, { logger, ...opts } = {}) {
    this._waiters = new Map();
    this._subscribers = new Map();
    this._bindings = new Map();
    this._logger = logger;
    const notify = (kind, id, payload) => this._notify(kind, id, payload);
    const pyOpts = { ...opts, log: Boolean(logger) };
    const bridge = module.new_bridge(JSON.stringify(schema), JSON.stringify(pyOpts), notify);
    if (typeof bridge === "string") {
      const { error } = JSON.parse(bridge);
      throw new AsyncMachineError(error.type, error.message);
    }
    this._bridge = bridge;
    this._call = bridge.call;
    this.id = this._invoke("id");
  }

  // ---- mutations: each returns Executed (0), Canceled (1) or a queue tick (>= 2)
  add(states, args) { return this._invoke("add", states, args ?? null); }
  add1(state, args) { return this._invoke("add1", state, args ?? null); }
  remove(states, args) { return this._invoke("remove", states, args ?? null); }
  remove1(state, args) { return this._invoke("remove1", state, args ?? null); }
  set(states, args) { return this._invoke("set", states, args ?? null); }
  toggle(states, args) { return this._invoke("toggle", states, args ?? null); }
  toggle1(state, args) { return this._invoke("toggle1", state, args ?? null); }
  addErr(error, args) { return this._invoke("addErr", String(error?.message ?? error), args ?? null); }
  addErrState(state, error, args) {
    return this._invoke("addErrState", state, String(error?.message ?? error), args ?? null);
  }
  canAdd(states, args) { return this._invoke("canAdd", states, args ?? null); }
  canAdd1(state, args) { return this._invoke("canAdd1", state, args ?? null); }
  canRemove(states, args) { return this._invoke("canRemove", states, args ?? null); }
  canRemove1(state, args) { return this._invoke("canRemove1", state, args ?? null); }

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

  /** JS callbacks the Python side still refers to; 0 once everything was released. */
  resources() { return this._bridge ? this._invoke("resources") : 0; }

  /** Dispose the machine and release every Pyodide proxy it holds. */
  dispose() {
    if (!this._bridge) return;
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

  _wait(method, ...params) {
    const id = `w${++nextId}`;
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
    if (kind === "subscribe") {
      this._subscribers.get(id)?.(data);
      return undefined;
    }
    if (kind === "log") {
      this._logger?.(Number(id), data);
    }
    return undefined;
  }
}
