// Type declarations for asyncmachine.mjs, the JS bridge to asyncmachine running in Pyodide.
// (A .d.mts: TypeScript looks for the types of "./asyncmachine.mjs" there.)

/** Executed (0), Canceled (1) or, for a queued mutation, its queue tick (>= 2). */
export type Result = number;
export declare const Executed: 0;
export declare const Canceled: 1;

/** One state of a schema; relation lists hold state names (of the same schema, or "Exception"). */
export interface StateDef<S extends string = string> {
  auto?: boolean;
  multi?: boolean;
  require?: readonly (S | "Exception")[];
  add?: readonly (S | "Exception")[];
  remove?: readonly (S | "Exception")[];
  after?: readonly (S | "Exception")[];
  tags?: readonly string[];
}

/** A schema: state name -> definition. Write it `as const` (or with `satisfies Schema`) and
 * `am.machine(schema)` types every state name of the machine. */
export type Schema<S extends string = string> = { readonly [K in S]: StateDef<S> };
/** The state names of a machine made from `schema`: its keys, and "Exception" (always a state). */
export type StatesOf<T> = (keyof T & string) | "Exception";
export type Args = Record<string, unknown>;
export type Clock<S extends string = string> = Record<S, number>;

export interface MachineOptions<S extends string = string> {
  /** Machine id; 16 random hex characters by default. */
  id?: string;
  /** 0 (nothing) to 5 (everything); lines go to `logger`. */
  logLevel?: 0 | 1 | 2 | 3 | 4 | 5;
  logger?: (level: number, message: string) => void;
  /** Seconds a handler may run before it counts as failed. */
  handlerTimeout?: number;
  /** The state order for `stateNames()`, `stringAll()` and `time()`: every state of the schema,
   * once. "Exception" is always a state: leave it out and it goes last. */
  states?: readonly S[];
  /** Stream the machine to am-dbg (the inspector): its `ws://HOST:PORT/dbg` URL, or `true` for
   * the default `ws://127.0.0.1:6831/dbg`; `"record"` keeps it in the page for test tools.
   * Transitions never wait for it. */
  debug?: string | boolean;
}

/** What handlers and subscribers receive about a transition; `"remote"` is a change a remote
 * machine's mirror received from its server. */
export interface TransitionInfo<S extends string = string> {
  type: "add" | "remove" | "set" | "remote";
  calledStates: S[];
  targetStates: S[];
  statesBefore: S[];
  added: S[];
  removed: S[];
  isAuto: boolean;
  args: Args;
}

export interface HandlerEvent<S extends string = string> extends TransitionInfo<S> {
  /** The handler's name, e.g. "UploadingEnter". */
  name: string;
  machine: AsyncMachine<S>;
  /** In `FooState`: aborted when Foo deactivates (inside that transition); pass it to fetch(). */
  readonly signal: AbortSignal | undefined;
}

export interface SubscriptionInfo<S extends string = string> extends TransitionInfo<S> {
  activeStates: S[];
  clock: Clock<S>;
}

type Negotiation<S extends string> = `${S}Enter` | `${S}Exit` | `${S}${S}` | "AnyEnter";
type Final<S extends string> = `${S}State` | `${S}End` | "AnyState";

/** Handlers by name. Negotiation handlers (`FooEnter`, `FooExit`, `FooBar`, `AnyEnter`) decide
 * synchronously and cancel by returning `false`: an `async` one makes `bind()` throw a
 * `HandlerError`. Final handlers (`FooState`, `FooEnd`, `AnyState`) may be `async`; a throw or a
 * rejection activates `Exception` (`err().type` is the JS error's `name`). */
export type Handlers<S extends string = string> = {
  [K in Negotiation<S>]?: (e: HandlerEvent<S>) => boolean | void;
} & {
  [K in Final<S>]?: (e: HandlerEvent<S>) => void | Promise<unknown>;
};

/** An error from asyncmachine: `name` (and `pythonType`) is its type, e.g. "StateMissingError",
 * "HandlerError", "BridgeError" (args JSON cannot carry; the message names the key path). */
export declare class AsyncMachineError extends Error {
  /** The Python exception type, e.g. "StateMissingError". */
  pythonType: string;
  constructor(type: string, message: string);
}

/** What a mutation would do, and why (`explainAdd1`); it changes nothing. */
export interface Explanation<S extends string = string> {
  result: Result;
  target: S[];
  added: S[];
  removed: S[];
  canceledBy: string | null;
  rejected: { state: S; reason: string }[];
}

/** `connect()` failed: `message` and `reason` say why. */
export declare class ConnectError extends AsyncMachineError {
  readonly reason: "refused" | "not_found" | "forbidden_origin" | "timeout" | "protocol";
  readonly detail: string;
}

export interface ConnectOptions<S extends string = string> {
  /** The id of the machine on the server. */
  id: string;
  token?: string;
  clientId?: string;
  /** Mirror only these states (the server may allow fewer). */
  states?: readonly S[];
  /** Seconds for connecting and for each request (10). */
  timeout?: number;
  /** Seconds before the first reconnect, doubling (0.5). */
  backoff?: number;
}

/** The options every `when*` takes last. The Promise rejects with a `DOMException` named
 * "TimeoutError" after `timeout` ms, or "AbortError" when `signal` aborts; either way the
 * Python-side waiter is released. */
export interface WaitOptions {
  timeout?: number;
  signal?: AbortSignal;
}

/** A machine's clock made plain data by `export()` (with its schema's hash). */
export interface MachineSnapshot {
  id: string;
  state_names: string[];
  time: number[];
  queue_tick: number;
  machine_tick: number;
  schema_hash: string;
}

/** `m.store(states)`: what `useSyncExternalStore` (and Svelte, Vue...) need. */
export interface MachineStore<S extends string = string> {
  subscribe(listener: () => void): () => void;
  /** The same object until a watched state's tick changes. */
  getSnapshot(): StoreSnapshot<S>;
}

export interface StoreSnapshot<S extends string = string> {
  readonly clock: Readonly<Clock<S>>;
  /** The watched states that are active. */
  readonly active: readonly S[];
}

/** A machine; `S` is the union of its state names (inferred by `am.machine(schema)` from a
 * `const` schema, or written by `am-gen --ts`). */
export declare class AsyncMachine<S extends string = string> {
  readonly id: string;
  readonly isDisposed: boolean;

  // remote machines return Promise<Result>; `await` reads the same for both
  add(states: readonly S[], args?: Args): Result | Promise<Result>;
  add1(state: S, args?: Args): Result | Promise<Result>;
  remove(states: readonly S[], args?: Args): Result | Promise<Result>;
  remove1(state: S, args?: Args): Result | Promise<Result>;
  set(states: readonly S[], args?: Args): Result | Promise<Result>;
  toggle(states: readonly S[], args?: Args): Result | Promise<Result>;
  toggle1(state: S, args?: Args): Result | Promise<Result>;
  /** Activate Exception with `error` (its `name` becomes `err().type`). */
  addErr(error: unknown, args?: Args): Result | Promise<Result>;
  addErrState(state: S, error: unknown, args?: Args): Result | Promise<Result>;
  // remote machines return Promises: the server answers (its negotiation handlers decide)
  canAdd(states: readonly S[], args?: Args): Result | Promise<Result>;
  canAdd1(state: S, args?: Args): Result | Promise<Result>;
  canRemove(states: readonly S[], args?: Args): Result | Promise<Result>;
  canRemove1(state: S, args?: Args): Result | Promise<Result>;
  /** What adding `states` would do, and why; remote machines return a Promise. */
  explainAdd(states: readonly S[], args?: Args): Explanation<S> | Promise<Explanation<S>>;
  explainAdd1(state: S, args?: Args): Explanation<S> | Promise<Explanation<S>>;

  is(states: readonly S[]): boolean;
  is1(state: S): boolean;
  not(states: readonly S[]): boolean;
  not1(state: S): boolean;
  any(...lists: (readonly S[])[]): boolean;
  any1(...states: S[]): boolean;
  /** Whether the machine has states of these names (any strings). */
  has(states: readonly string[]): boolean;
  has1(state: string): boolean;
  /** The first active state, scanning the groups in order; "" if none. */
  switch(...groups: (readonly S[])[]): S | "";
  /** Positions in `stateNames()`; -1 for a name the machine lacks. */
  index(states: readonly string[]): number[];
  index1(state: string): number;
  tick(state: S): number;
  clock(states?: readonly S[]): Clock<S>;
  time(states?: readonly S[]): number[];
  /** The ticks of `states` (all by default) equal `time`; `wasTime`: are at least `time`. */
  isTime(time: readonly number[], states?: readonly S[]): boolean;
  wasTime(time: readonly number[], states?: readonly S[]): boolean;
  /** The ticks of the states in `clock` equal it; `wasClock`: are at least it. */
  isClock(clock: Partial<Clock<S>>): boolean;
  wasClock(clock: Partial<Clock<S>>): boolean;
  activeStates(states?: readonly S[]): S[];
  stateNames(): S[];
  string(): string;
  stringAll(): string;
  inspect(states?: readonly S[]): string;
  queueTick(): number;
  isErr(): boolean;
  /** The last error added: its type (a JS error's own `name`, e.g. "TypeError") and message. */
  err(): { type: string; message: string } | null;
  log(message: string): void;

  when(states: readonly S[], opts?: WaitOptions): Promise<void>;
  when1(state: S, opts?: WaitOptions): Promise<void>;
  whenNot(states: readonly S[], opts?: WaitOptions): Promise<void>;
  whenNot1(state: S, opts?: WaitOptions): Promise<void>;
  whenTicks(state: S, n: number, opts?: WaitOptions): Promise<void>;
  /** The next activation of `state` (the current one does not count). */
  whenNextActive(state: S, opts?: WaitOptions): Promise<void>;
  whenTime(states: readonly S[], times: readonly number[], opts?: WaitOptions): Promise<void>;
  whenTime1(state: S, tick: number, opts?: WaitOptions): Promise<void>;
  whenArgs(state: S, args: Args, opts?: WaitOptions): Promise<void>;
  whenErr(opts?: WaitOptions): Promise<void>;
  whenQueue(tick: number, opts?: WaitOptions): Promise<void>;

  /** Local machines: the clock as JSON data, for `importData` and `persist`. */
  export(): MachineSnapshot;
  /** Local machines: restore an `export()`; one of another schema throws a `SchemaError`. */
  importData(data: MachineSnapshot, opts?: { checkId?: boolean }): void;
  /** Local machines: aborted when `state` deactivates (already aborted if it is inactive). */
  stateSignal(state: S): AbortSignal;
  /** A store of `states` (all by default) for UI frameworks. */
  store(states?: readonly S[]): MachineStore<S>;

  /** True for a machine mirrored from a server (`Asyncmachine.connect`). */
  readonly isRemote: boolean;
  /** Remote only: the connection's own machine (Connecting, Connected, Ready, Disconnected...). */
  readonly connection: AsyncMachine | null;
  /** Remote only: fetch a full snapshot now. */
  sync(): Promise<void>;
  /** Remote only: payloads pushed by the server. */
  onPayload(fn: (name: string, data: unknown) => void): () => void;

  subscribe(fn: (info: SubscriptionInfo<S>) => void): () => void;
  bind(handlers: Handlers<S> | object): () => void;
  resources(): number;
  dispose(): void;
}

export declare class Asyncmachine {
  readonly pyodide: unknown;
  readonly version: string;
  /** A local machine; a `const` schema types its state names. */
  machine<const T extends Schema<keyof T & string>>(
    schema: T,
    opts?: MachineOptions<StatesOf<T>>,
  ): AsyncMachine<StatesOf<T>>;
  /** A machine hosted by an `asyncmachine.rpc.Server`; mutations return Promises. Name its
   * states with the type parameter: `am.connect<"Idle" | "Busy">(url, {id})`. */
  connect<S extends string = string>(url: string, opts: ConnectOptions<S>): Promise<AsyncMachine<S>>;
}

/** Throws a `BridgeError` naming the key path of the first value JSON cannot carry exactly. */
export declare function checkJson<T>(value: T, path?: string): T;

/** Live machines of the page by id (also at `globalThis.__asyncmachine__`). */
export declare const registry: { machines: Map<string, AsyncMachine> };

export declare function loadAsyncmachine(options: {
  /** Where a Pyodide distribution (with the asyncmachine wheel in its lock) is served. */
  indexURL?: string;
  /** A Pyodide the page already runs, with the asyncmachine wheel installed
   * (`await micropip.install(wheelUrl)`). */
  pyodide?: unknown;
  /** A memory snapshot made by tools/make_snapshot.mjs (`.gz` is inflated): Python starts from it
   * instead of booting; if it can't be used, Python boots as usual (with a console warning). */
  snapshot?: string;
}): Promise<Asyncmachine>;

// ---- worker pools (asyncmachine.node)

export interface RequestWorkerOptions<S extends string = string> {
  /** The pool's kind: the supervisor's machine is `ns-<kind>`. */
  kind: string;
  /** Credentials for the supervisor's `authenticate` hook. */
  token?: string;
  /** Used for both connections (the worker admits only this client id); one per page by default. */
  clientId?: string;
  /** Milliseconds to get a worker (10000); also bounds each connection and request. */
  timeout?: number;
  /** Mirror only these states of the worker. */
  states?: readonly S[];
}

/** A worker lent by a supervisor. Drive it by adding `WorkRequested` with the job in the args;
 * results arrive as payloads: `lease.worker.onPayload((name, data) => ...)`. */
export declare class WorkerLease<S extends string = string> {
  /** The worker's machine (remote: mutations return Promises). */
  readonly worker: AsyncMachine<S>;
  /** The supervisor's machine (`PoolReady`, `WorkersAvailable`...). */
  readonly supervisor: AsyncMachine;
  readonly workerId: string;
  /** Give the worker back to the pool (its token is revoked) and close both connections. */
  release(): Promise<void>;
}

/** Ask the supervisor at `url` (an `asyncmachine.node.Supervisor`) for a worker and connect to
 * it. Rejects with a `ConnectError` when a connection fails, and with a `DOMException` named
 * `TimeoutError` when no worker is free within `timeout`. */
export declare function requestWorker<S extends string = string>(
  am: Asyncmachine,
  url: string,
  opts: RequestWorkerOptions<S>,
): Promise<WorkerLease<S>>;
