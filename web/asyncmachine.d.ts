// Type declarations for asyncmachine.mjs, the JS bridge to asyncmachine running in Pyodide.

/** Executed (0), Canceled (1) or, for a queued mutation, its queue tick (>= 2). */
export type Result = number;
export declare const Executed: 0;
export declare const Canceled: 1;

/** One state of a schema; relation lists hold state names. */
export interface StateDef {
  auto?: boolean;
  multi?: boolean;
  require?: string[];
  add?: string[];
  remove?: string[];
  after?: string[];
  tags?: string[];
}

export type Schema = Record<string, StateDef>;
export type Args = Record<string, unknown>;
export type Clock = Record<string, number>;

export interface MachineOptions {
  /** Machine id; 16 random hex characters by default. */
  id?: string;
  /** 0 (nothing) to 5 (everything); lines go to `logger`. */
  logLevel?: 0 | 1 | 2 | 3 | 4 | 5;
  logger?: (level: number, message: string) => void;
  /** Seconds a handler may run before it counts as failed. */
  handlerTimeout?: number;
  /** The state order for `stateNames()`, `stringAll()` and `time()`. */
  states?: string[];
  /** Stream the machine to am-dbg (the inspector): its `ws://HOST:PORT/dbg` URL, or `true` for
   * the default `ws://127.0.0.1:6831/dbg`; `"record"` keeps it in the page for test tools.
   * Transitions never wait for it. */
  debug?: string | boolean;
}

/** What handlers and subscribers receive about a transition. */
export interface TransitionInfo {
  type: "add" | "remove" | "set";
  calledStates: string[];
  targetStates: string[];
  statesBefore: string[];
  added: string[];
  removed: string[];
  isAuto: boolean;
  args: Args;
}

export interface HandlerEvent extends TransitionInfo {
  /** The handler's name, e.g. "UploadingEnter". */
  name: string;
  machine: AsyncMachine;
}

export interface SubscriptionInfo extends TransitionInfo {
  activeStates: string[];
  clock: Clock;
}

/** Handlers by name: `FooEnter`/`FooExit`/`FooBar`/`AnyEnter` may return false to cancel;
 * `FooState`/`FooEnd`/`AnyState` run after the change. */
export type Handlers = Record<string, (e: HandlerEvent) => boolean | void>;

export declare class AsyncMachineError extends Error {
  /** The Python exception type, e.g. "StateMissingError". */
  pythonType: string;
  constructor(type: string, message: string);
}

/** What a mutation would do, and why (`explainAdd1`). */
export interface Explanation {
  result: Result;
  target: string[];
  added: string[];
  removed: string[];
  canceledBy: string | null;
  rejected: { state: string; reason: string }[];
}

/** `connect()` failed: `message` and `reason` say why. */
export declare class ConnectError extends AsyncMachineError {
  readonly reason: "refused" | "not_found" | "forbidden_origin" | "timeout" | "protocol";
  readonly detail: string;
}

export interface ConnectOptions {
  /** The id of the machine on the server. */
  id: string;
  token?: string;
  clientId?: string;
  /** Mirror only these states (the server may allow fewer). */
  states?: string[];
  /** Seconds for connecting and for each request (10). */
  timeout?: number;
  /** Seconds before the first reconnect, doubling (0.5). */
  backoff?: number;
}

export declare class AsyncMachine {
  readonly id: string;
  readonly isDisposed: boolean;

  // remote machines return Promise<Result>; `await` reads the same for both
  add(states: string[], args?: Args): Result | Promise<Result>;
  add1(state: string, args?: Args): Result | Promise<Result>;
  remove(states: string[], args?: Args): Result | Promise<Result>;
  remove1(state: string, args?: Args): Result | Promise<Result>;
  set(states: string[], args?: Args): Result | Promise<Result>;
  toggle(states: string[], args?: Args): Result | Promise<Result>;
  toggle1(state: string, args?: Args): Result | Promise<Result>;
  // remote machines return Promises: the server answers (its negotiation handlers decide)
  addErr(error: unknown, args?: Args): Result | Promise<Result>;
  addErrState(state: string, error: unknown, args?: Args): Result | Promise<Result>;
  canAdd(states: string[], args?: Args): Result | Promise<Result>;
  canAdd1(state: string, args?: Args): Result | Promise<Result>;
  canRemove(states: string[], args?: Args): Result | Promise<Result>;
  canRemove1(state: string, args?: Args): Result | Promise<Result>;
  /** Remote: what adding `states` would do, and why. */
  explainAdd(states: string[], args?: Args): Promise<Explanation>;
  explainAdd1(state: string, args?: Args): Promise<Explanation>;

  is(states: string[]): boolean;
  is1(state: string): boolean;
  not(states: string[]): boolean;
  not1(state: string): boolean;
  any(...lists: string[][]): boolean;
  any1(...states: string[]): boolean;
  has1(state: string): boolean;
  tick(state: string): number;
  clock(states?: string[]): Clock;
  time(states?: string[]): number[];
  activeStates(states?: string[]): string[];
  stateNames(): string[];
  string(): string;
  stringAll(): string;
  inspect(states?: string[]): string;
  queueTick(): number;
  isErr(): boolean;
  err(): { type: string; message: string } | null;
  log(message: string): void;

  when(states: string[]): Promise<void>;
  when1(state: string): Promise<void>;
  whenNot(states: string[]): Promise<void>;
  whenNot1(state: string): Promise<void>;
  whenTicks(state: string, n: number): Promise<void>;
  whenTime(states: string[], times: number[]): Promise<void>;
  whenTime1(state: string, tick: number): Promise<void>;
  whenArgs(state: string, args: Args): Promise<void>;
  whenErr(): Promise<void>;
  whenQueue(tick: number): Promise<void>;

  /** True for a machine mirrored from a server (`Asyncmachine.connect`). */
  readonly isRemote: boolean;
  /** Remote only: the connection's own machine (Connecting, Connected, Ready, Disconnected...). */
  readonly connection: AsyncMachine | null;
  /** Remote only: fetch a full snapshot now. */
  sync(): Promise<void>;
  /** Remote only: payloads pushed by the server. */
  onPayload(fn: (name: string, data: unknown) => void): () => void;

  subscribe(fn: (info: SubscriptionInfo) => void): () => void;
  bind(handlers: Handlers | object): () => void;
  resources(): number;
  dispose(): void;
}

export declare class Asyncmachine {
  readonly pyodide: unknown;
  readonly version: string;
  machine(schema: Schema, opts?: MachineOptions): AsyncMachine;
  /** A machine hosted by an `asyncmachine.rpc.Server`; mutations return Promises. */
  connect(url: string, opts: ConnectOptions): Promise<AsyncMachine>;
}

/** Live machines of the page by id (also at `globalThis.__asyncmachine__`). */
export declare const registry: { machines: Map<string, AsyncMachine> };

export declare function loadAsyncmachine(options: {
  indexURL?: string;
  pyodide?: unknown;
  /** A memory snapshot made by tools/make_snapshot.mjs (`.gz` is inflated): Python starts from it
   * instead of booting; if it can't be used, Python boots as usual (with a console warning). */
  snapshot?: string;
}): Promise<Asyncmachine>;

// ---- worker pools (asyncmachine.node)

export interface RequestWorkerOptions {
  /** The pool's kind: the supervisor's machine is `ns-<kind>`. */
  kind: string;
  /** Credentials for the supervisor's `authenticate` hook. */
  token?: string;
  /** Used for both connections (the worker admits only this client id); one per page by default. */
  clientId?: string;
  /** Milliseconds to get a worker (10000); also bounds each connection and request. */
  timeout?: number;
  /** Mirror only these states of the worker. */
  states?: string[];
}

/** A worker lent by a supervisor. Drive it by adding `WorkRequested` with the job in the args;
 * results arrive as payloads: `lease.worker.onPayload((name, data) => ...)`. */
export declare class WorkerLease {
  /** The worker's machine (remote: mutations return Promises). */
  readonly worker: AsyncMachine;
  /** The supervisor's machine (`PoolReady`, `WorkersAvailable`...). */
  readonly supervisor: AsyncMachine;
  readonly workerId: string;
  /** Give the worker back to the pool (its token is revoked) and close both connections. */
  release(): Promise<void>;
}

/** Ask the supervisor at `url` (an `asyncmachine.node.Supervisor`) for a worker and connect to
 * it. Rejects with a `ConnectError` when a connection fails, and with a `DOMException` named
 * `TimeoutError` when no worker is free within `timeout`. */
export declare function requestWorker(
  am: Asyncmachine,
  url: string,
  opts: RequestWorkerOptions,
): Promise<WorkerLease>;
