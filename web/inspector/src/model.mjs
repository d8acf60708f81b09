// The inspector's data: machines with their timelines, built from am-dbg's JSON lines.
//
// Every line is one message (docs/debugger.md). A machine's timeline holds its entries in order:
// transitions, gaps (transitions the stream dropped), schema changes and its disposal. Clocks are
// not stored per entry: a transition carries only the ticks it changed, and the full clock after
// any entry is rebuilt from a keyframe (one every KEYFRAME entries) plus the entries after it.

export const KEYFRAME = 256;

/** One machine as the inspector knows it. */
export class Machine {
  constructor(schema) {
    this.id = schema.id;
    this.entries = [];
    this.keyframes = [];
    this.proc = null;
    this.connected = false;
    this.disposed = false;
    this.evicted = 0;
    this.dropped = 0;
    this.errors = 0;
    this.setSchema(schema);
    this.base = { ...schema.clock };
    this.clock = { ...schema.clock };
    /** Schema versions: the entry index from which each applies. */
    this.schemas = [{ from: 0, names: this.names, states: this.states }];
  }

  setSchema(msg) {
    this.parent = msg.parent ?? null;
    this.tags = msg.tags ?? [];
    this.names = msg.names;
    this.states = msg.states;
    this.index = new Map(msg.names.map((name, i) => [name, i]));
  }

  get label() {
    return this.id;
  }

  /** Add one entry (a tx, dropped, schema or dispose message) to the end of the timeline. */
  push(msg) {
    const i = this.entries.length;
    if (i % KEYFRAME === 0) this.keyframes.push({ ...this.clock });
    msg.i = i;
    msg.mach = this;
    if (msg.kind === "tx") {
      Object.assign(this.clock, msg.ticks);
      if (msg.error || msg.called.includes("Exception")) this.errors++;
    } else if (msg.kind === "dropped") {
      Object.assign(this.clock, msg.clock);
      this.dropped += msg.count;
    } else if (msg.kind === "schema") {
      Object.assign(this.clock, msg.clock);
      const changed = msg.names.join(" ") !== this.names.join(" ");
      this.setSchema(msg);
      if (changed) this.schemas.push({ from: i, names: this.names, states: this.states });
      msg.changed = changed;
    } else if (msg.kind === "dispose") {
      this.disposed = true;
    }
    this.entries.push(msg);
    return msg;
  }

  /** The full clock after entry `i` (-1: before the first entry). */
  clockAt(i) {
    if (i < 0) return { ...this.base };
    if (i >= this.entries.length - 1) return { ...this.clock };
    const k = Math.floor(i / KEYFRAME);
    const clock = { ...this.keyframes[k] };
    for (let j = k * KEYFRAME; j <= i; j++) applyEntry(clock, this.entries[j]);
    return clock;
  }

  /** The schema version in effect at entry `i`. */
  schemaAt(i) {
    let version = this.schemas[0];
    for (const s of this.schemas) if (s.from <= i) version = s;
    return version;
  }

  /** Drop the oldest entries beyond `max` (in steps of a tenth, so this stays rare). */
  trim(max) {
    if (this.entries.length <= max + Math.ceil(max / 10)) return 0;
    const cut = this.entries.length - max;
    this.base = this.clockAt(cut - 1);
    const rest = this.entries.slice(cut);
    this.entries = [];
    this.keyframes = [];
    const now = this.clock;
    this.clock = { ...this.base };
    this.schemas = [{ from: 0, names: this.schemaAt(cut).names, states: this.schemaAt(cut).states }];
    for (const msg of rest) this.push(msg);
    this.clock = now;
    this.evicted += cut;
    return cut;
  }
}

function applyEntry(clock, msg) {
  if (msg.kind === "tx") Object.assign(clock, msg.ticks);
  else if (msg.kind === "dropped" || msg.kind === "schema") Object.assign(clock, msg.clock);
}

/** Every machine, and the links between transitions (which one caused which). */
export class Session {
  constructor() {
    this.machines = new Map();
    /** tx id -> the transition entry; built on the first lookup, then kept up to date */
    this.txs = null;
    /** tx id -> entries it caused (their `source.tx`) */
    this.effects = new Map();
    /** transitions with a source, in arrival order (the sequence view's material) */
    this.linked = [];
    this.server = null;
    this.max = 100000;
    this.errors = [];
    this.version = 0;
  }

  /** Apply one message; returns the machine it touched (or null). */
  apply(msg) {
    this.version++;
    switch (msg.kind) {
      case "server":
        this.server = msg;
        this.max = msg.max ?? this.max;
        return null;
      case "session":
        this.max = msg.max ?? this.max;
        return null;
      case "hello":
        return null;
      case "cleared":
        for (const id of msg.ids) this.machines.delete(id);
        this.txs = null;
        this.linked = this.linked.filter((tx) => this.machines.get(tx.id) === tx.mach);
        return null;
      case "status":
        return this.status(msg);
      case "schema": {
        const known = this.machines.get(msg.id);
        if (!known) {
          const mach = new Machine(msg);
          this.machines.set(msg.id, mach);
          return mach;
        }
        known.push(msg);
        return known;
      }
      case "tx":
      case "dropped":
      case "dispose": {
        const mach = this.machines.get(msg.id);
        if (!mach) {
          this.errors.push(`${msg.kind} for unknown machine ${msg.id}`);
          return null;
        }
        mach.push(msg);
        if (msg.kind === "tx") this.link(msg);
        return mach;
      }
      default:
        this.errors.push(`unknown message kind ${msg.kind}`);
        return null;
    }
  }

  status(msg) {
    const mach = this.machines.get(msg.id);
    if (!mach) return null;
    mach.connected = Boolean(msg.connected);
    mach.disposed = Boolean(msg.disposed);
    if (msg.proc) mach.proc = msg.proc;
    if (msg.evicted != null) mach.evicted = Math.max(mach.evicted, msg.evicted);
    return mach;
  }

  link(tx) {
    this.txs?.set(tx.tx, tx);
    const src = tx.source;
    if (!src) return;
    this.linked.push(tx);
    if (src.tx) {
      let list = this.effects.get(src.tx);
      if (!list) this.effects.set(src.tx, (list = []));
      list.push(tx);
    }
  }

  /** The transition that caused `tx`, if it was streamed. */
  cause(tx) {
    return tx.source?.tx ? this.byId(tx.source.tx) : null;
  }

  /** A transition entry by its id (any machine). */
  byId(id) {
    if (!this.txs) {
      this.txs = new Map();
      for (const mach of this.machines.values()) for (const e of mach.entries) if (e.kind === "tx") this.txs.set(e.tx, e);
    }
    return this.txs.get(id) ?? null;
  }

  /** Transitions `tx` caused (in this machine or others). */
  effectsOf(tx) {
    return this.effects.get(tx.tx) ?? [];
  }

  /** Keep at most `max` entries per machine. */
  trim() {
    for (const mach of this.machines.values()) {
      const before = mach.entries.slice(0, mach.entries.length - this.max);
      if (mach.trim(this.max)) {
        for (const e of before) if (e.kind === "tx") this.txs?.delete(e.tx);
        const gone = new Set(before);
        this.linked = this.linked.filter((tx) => !gone.has(tx));
      }
    }
  }

  /** Machines as a forest: processes (or tabs) at the top, then machines by parent. */
  tree() {
    const groups = new Map();
    for (const mach of this.machines.values()) {
      const key = procKey(mach.proc);
      if (!groups.has(key)) groups.set(key, { key, proc: mach.proc, machines: [] });
      groups.get(key).machines.push(mach);
    }
    const out = [];
    for (const group of groups.values()) {
      const ids = new Set(group.machines.map((m) => m.id));
      const children = new Map();
      const roots = [];
      for (const mach of group.machines) {
        if (mach.parent && ids.has(mach.parent)) {
          if (!children.has(mach.parent)) children.set(mach.parent, []);
          children.get(mach.parent).push(mach);
        } else roots.push(mach);
      }
      const walk = (mach, depth, rows) => {
        rows.push({ mach, depth });
        for (const child of children.get(mach.id) ?? []) walk(child, depth + 1, rows);
        return rows;
      };
      const rows = [];
      for (const root of roots) walk(root, 0, rows);
      out.push({ ...group, rows });
    }
    return out;
  }

  /** Everything as JSON lines (a session file). */
  *lines() {
    yield JSON.stringify({ kind: "session", v: 1, max: this.max });
    for (const mach of this.machines.values()) {
      const first = mach.schemas[0];
      yield JSON.stringify({
        kind: "schema",
        id: mach.id,
        parent: mach.parent,
        tags: mach.tags,
        names: first.names,
        states: first.states,
        clock: mach.base,
      });
      for (const e of mach.entries) yield JSON.stringify(e, skipRefs);
      yield JSON.stringify({
        kind: "status",
        id: mach.id,
        connected: false,
        disposed: mach.disposed,
        evicted: mach.evicted,
        ...(mach.proc ? { proc: mach.proc } : {}),
      });
    }
  }
}

function skipRefs(key, value) {
  return key === "mach" || key === "i" || key === "changed" ? undefined : value;
}

export function procKey(proc) {
  if (!proc) return "unknown";
  if (proc.tab) return `tab:${proc.tab}`;
  return `proc:${proc.host ?? ""}:${proc.pid ?? ""}:${proc.id ?? ""}`;
}

export function procLabel(proc) {
  if (!proc) return "Imported";
  if (proc.runtime === "pyodide") return proc.tab ? `Browser tab ${proc.tab.slice(0, 6)}` : "Pyodide";
  const name = proc.argv0 ? `${proc.argv0} ` : "";
  return `${name}pid ${proc.pid}${proc.host ? ` · ${proc.host}` : ""}`;
}

/** Active states of a clock (odd ticks), in schema order. */
export function activeIn(names, clock) {
  return names.filter((n) => (clock[n] ?? 0) % 2 === 1);
}

/** `+A -B` for a transition entry: what it changed, from its ticks and the clock before. */
export function changes(mach, entry) {
  if (entry.kind !== "tx") return { added: [], removed: [] };
  const before = mach.clockAt(entry.i - 1);
  const added = [];
  const removed = [];
  for (const [name, tick] of Object.entries(entry.ticks)) {
    const was = before[name] ?? 0;
    if (tick === was) continue;
    if (tick % 2 === 1) added.push(name);
    else if (was % 2 === 1) removed.push(name);
  }
  return { added, removed };
}

/** A short label for a transition: `+A +B`, `-C`, `=A B`. */
export function mutationLabel(entry) {
  const sign = { add: "+", remove: "-", set: "=" }[entry.type] ?? "";
  return entry.called.map((s) => sign + s).join(" ");
}

/** Which entries of `mach` pass the filters; an Int32Array of entry indexes. */
export function filterEntries(mach, { auto = true, canceled = true, empty = true, state = "", text = "" }) {
  const entries = mach.entries;
  const out = new Int32Array(entries.length);
  const needle = text.trim().toLowerCase();
  let n = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.kind === "tx") {
      if (!auto && e.auto) continue;
      if (!canceled && !e.accepted) continue;
      if (!empty && e.accepted && Object.keys(e.ticks).length === 0) continue;
      if (state && !e.called.includes(state) && !(state in e.ticks)) continue;
      if (needle && !matches(e, needle)) continue;
    } else if (state || needle) continue;
    out[n++] = i;
  }
  return out.subarray(0, n);
}

function matches(e, needle) {
  if (e.tx.startsWith(needle)) return true;
  for (const s of e.called) if (s.toLowerCase().includes(needle)) return true;
  for (const s of Object.keys(e.ticks)) if (s.toLowerCase().includes(needle)) return true;
  if (e.canceled_by?.toLowerCase().includes(needle)) return true;
  for (const step of e.steps ?? []) if (step.name?.toLowerCase().includes(needle)) return true;
  for (const [, line] of e.log ?? []) if (line.toLowerCase().includes(needle)) return true;
  for (const [k, v] of Object.entries(e.args ?? {})) {
    if (k.toLowerCase().includes(needle) || v.toLowerCase().includes(needle)) return true;
  }
  return Boolean(e.error && `${e.error.type} ${e.error.message}`.toLowerCase().includes(needle));
}
