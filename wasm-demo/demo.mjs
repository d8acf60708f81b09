// The upload demo page: one machine ("upload"), either in this page (local mode, Pyodide) or on the
// demo server (remote mode, shared by every tab). The page only renders the machine and sends it
// the user's clicks; buttons are enabled by canAdd1, re-evaluated after every change.

import { loadAsyncmachine, Executed, registry } from "./asyncmachine.mjs";
import { SchemaGraph } from "./inspector/graph.js";
import { SAMPLES, Uploader, formatSize } from "./uploader.mjs";

// Python starts first (from a memory snapshot, see tools/make_snapshot.mjs): the rest of the page
// is quick next to it. index.html preloads the files it needs.
const loadingPython = loadAsyncmachine({
  indexURL: "pyodide/",
  snapshot: "pyodide/asyncmachine-snapshot.bin.gz",
});

const MACHINE_ID = "upload";
const LOG_LINES = 300;
const CONNECT_TIMEOUT = 5;
/** Log lines worth showing: transitions, auto states, cancels by a handler, errors, messages. */
const SHOWN = /^\[(state|auto_|cancel|error|exter)\] /;
/** The connection's states, most telling first. */
const CONNECTION_STATES = ["Ready", "Connecting", "Disconnected", "Connected", "Start"];

const $ = (selector) => document.querySelector(selector);
const body = document.body;
const logList = $("#log");
const connection = $("#connection");
const notice = $("#offline-notice");

const schemaText = await (await fetch("upload-schema.json")).text();
const schema = JSON.parse(schemaText);
const stateNames = [...Object.keys(schema), "Exception"];
/** The demo server's am-dbg, if it runs one (`make demo`): both modes stream to it. */
const inspector = await fetch("demo-server.json", { cache: "no-store" })
  .then((res) => res.json())
  .then((found) => found.dbg ?? null)
  .catch(() => null);

let session = null; // the running mode
let starting = 0; // bumped by each start(): a slower, older start gives up
let renderQueued = false;
let chosen = SAMPLES[0]; // the file "Use this file" selects

// ---- the two modes: the same surface over a local or a remote machine

/** The machine runs in this page; the upload is simulated by JS timers (uploader.mjs). */
class LocalSession {
  constructor(am, changed, log) {
    this.checking = false; // canAdd1 runs negotiation handlers: keep those dry runs out of the log
    this.machine = am.machine(schema, {
      id: MACHINE_ID,
      logLevel: 3,
      logger: (_level, message) => this.checking || log(message),
      // streamed to the demo server's am-dbg; without one, recorded here for "Inspect"
      debug: inspector ? dbgStream(inspector) : "record",
    });
    this.uploader = new Uploader(changed, log);
    this.disposers = [this.machine.bind(this.uploader), this.machine.subscribe(changed)];
    for (const state of ["Online", "Offline"]) {
      const follow = () => this.machine.add1(state);
      window.addEventListener(state.toLowerCase(), follow);
      this.disposers.push(() => window.removeEventListener(state.toLowerCase(), follow));
    }
    this.machine.add1(navigator.onLine ? "Online" : "Offline");
  }

  get usable() {
    return true;
  }

  status() {
    return this.uploader.status();
  }

  canAdd(state, args) {
    this.checking = true;
    try {
      return this.machine.canAdd1(state, args) === Executed;
    } finally {
      this.checking = false;
    }
  }

  describe() {
    return { state: "Local", text: "Local: the machine runs in this page (Pyodide)" };
  }

  dispose() {
    this.uploader.stop();
    for (const dispose of this.disposers) dispose();
    this.machine.dispose();
  }
}

/** The machine runs on the demo server; every tab mirrors it and sees the same clock. */
class RemoteSession {
  /** Connect to the demo server, or throw an Error saying why there is none. */
  static async open(am, changed, log) {
    const found = await (await fetch("demo-server.json", { cache: "no-store" })).json();
    if (!found.rpc) throw new Error("This copy of the page is static hosting: there is no demo server behind it.");
    const url = new URL(found.rpc, location.href);
    if (url.protocol.startsWith("http")) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    let machine;
    try {
      machine = await am.connect(url.href, { id: MACHINE_ID, timeout: CONNECT_TIMEOUT });
    } catch (err) {
      const why = err.name === "ConnectError" ? ` (${err.message})` : "";
      throw new Error(`The demo server at ${url.href} can't be reached${why}.`);
    }
    return new RemoteSession(machine, changed, log);
  }

  constructor(machine, changed, log) {
    this.machine = machine;
    this.changed = changed;
    this.current = { file: null, sent: 0 }; // the server sends it when this tab subscribes
    this.allowed = new Map(); // state -> the server's last canAdd1 answer
    this.asking = 0;
    this.disposers = [
      machine.subscribe(() => this.refresh()),
      machine.connection.subscribe(() => this.refresh()),
      machine.onPayload((name, data) => {
        if (name === "log") log(data);
        if (name === "upload") {
          this.current = data;
          changed();
        }
      }),
    ];
    this.refresh();
  }

  get usable() {
    return this.machine.connection.is1("Ready");
  }

  status() {
    return this.current;
  }

  /** Ask the server which buttons could add their state now: its negotiation handlers decide,
   * without changing anything. Answers to an older question are dropped. */
  async refresh() {
    const asked = ++this.asking;
    this.changed();
    if (!this.usable) return;
    const states = [...document.querySelectorAll("button[data-state]")].map((b) => b.dataset.state);
    let answers;
    try {
      answers = await Promise.all(states.map((state) => this.machine.canAdd1(state, argsFor(state))));
    } catch {
      return; // disconnected meanwhile: the next change asks again
    }
    if (asked !== this.asking) return;
    this.allowed = new Map(states.map((state, i) => [state, answers[i] === Executed]));
    this.changed();
  }

  canAdd(state) {
    return this.allowed.get(state) ?? false;
  }

  describe() {
    const conn = this.machine.connection;
    const state = CONNECTION_STATES.find((name) => conn.is1(name)) ?? "Disconnected";
    const text = {
      Ready: "Remote: connected, shared with every tab on this server",
      Connecting: "Remote: connecting…",
      Disconnected: "Remote: disconnected, retrying…",
    }[state];
    return { state, text: `${text ?? `Remote: ${state}`} (${state})` };
  }

  dispose() {
    for (const dispose of this.disposers) dispose();
    this.machine.dispose();
  }
}

/** The args a button's state is added with. */
function argsFor(state) {
  return state === "Selected" ? { file: chosen } : undefined;
}

// ---- rendering

const chips = new Map();
for (const name of stateNames) {
  const spec = schema[name] ?? { multi: true };
  const chip = document.createElement("li");
  chip.className = "chip";
  chip.dataset.chip = name;
  chip.dataset.tick = "0";
  const flags = ["auto", "multi"].filter((flag) => spec[flag]);
  chip.innerHTML = `<span class="name"></span> <span class="tick" title="tick"></span>
    <span class="visually-hidden"></span>`;
  chip.querySelector(".name").textContent = name;
  if (flags.length) chip.querySelector(".name").insertAdjacentHTML("afterend", ` <span class="flags">${flags.join(" ")}</span>`);
  $("#chips").append(chip);
  chips.set(name, chip);
}

const samples = $("#samples");
for (const [i, sample] of SAMPLES.entries()) {
  const label = document.createElement("label");
  label.className = "sample";
  label.innerHTML = `<input type="radio" name="sample" value="${i}"${i ? "" : " checked"}>
    <span><strong></strong> <span class="muted"></span></span>`;
  label.querySelector("strong").textContent = sample.name;
  label.querySelector(".muted").textContent = `${formatSize(sample.size)} · ${sample.note}`;
  samples.append(label);
}

function changed() {
  if (renderQueued) return;
  renderQueued = true;
  // after the mutation that caused it: canAdd1 inside a transition would only be queued
  queueMicrotask(() => {
    renderQueued = false;
    render();
  });
}

function render() {
  const machine = session?.machine;
  const clock = machine && !machine.isDisposed ? machine.clock() : null;
  showGraph(clock);
  for (const [name, chip] of chips) {
    const tick = clock?.[name] ?? 0;
    const active = tick % 2 === 1;
    chip.dataset.tick = String(tick);
    chip.classList.toggle("active", active);
    chip.querySelector(".tick").textContent = clock ? String(tick) : "–";
    chip.querySelector(".visually-hidden").textContent = active ? "(active)" : "(inactive)";
  }
  const is = (state) => Boolean(clock && clock[state] % 2 === 1);
  const usable = Boolean(clock && session.usable);
  for (const button of document.querySelectorAll("button[data-state]")) {
    const state = button.dataset.state;
    button.disabled = !usable || is(state) || !session.canAdd(state, argsFor(state));
  }
  for (const button of document.querySelectorAll("button[data-remove]")) {
    button.disabled = !usable || !is(button.dataset.remove);
  }
  const { file, sent } = session?.status() ?? { file: null, sent: 0 };
  showChooser(is("Selecting"));
  $("#upload-button").textContent = is("ErrUpload")
    ? "Retry"
    : is("Done")
      ? "Upload again"
      : sent > 0
        ? "Resume"
        : "Upload";
  $("#file-name").textContent = file ? file.name : "No file selected";
  $("#file-size").textContent = file ? formatSize(file.size) : "";
  $("#file-status").textContent = describeUpload(is, file);
  const progress = $("#progress");
  progress.max = file?.size || 1;
  progress.value = file ? sent : 0;
  const percent = file?.size ? Math.floor((100 * sent) / file.size) : 0;
  $("#progress-text").textContent = file ? `${formatSize(sent)} of ${formatSize(file.size)} (${percent}%)` : "";
  $("#upload").setAttribute("aria-busy", String(is("Busy")));
  const { state, text } = session?.describe() ?? { state: "Unavailable", text: "No machine" };
  connection.dataset.state = state;
  connection.textContent = text;
}

/** Open or close the file chooser, taking the keyboard focus along when this tab opened it. */
function showChooser(open) {
  const chooser = $("#chooser");
  if (chooser.hidden === !open) return;
  const opener = $('button[data-state="Selecting"]');
  const focused = document.activeElement;
  chooser.hidden = !open;
  if (open && focused === opener) (samples.querySelector("input:checked") ?? samples.querySelector("input")).focus();
  if (!open && (chooser.contains(focused) || focused === document.body)) opener.focus();
}

function describeUpload(is, file) {
  if (is("Selecting")) return "Choosing a file";
  if (!file) return "Choose a file to upload";
  if (is("ErrUpload")) return "Upload failed: retry to resume";
  if (is("Uploading")) return "Uploading…";
  if (is("Done")) return "Uploaded";
  if (is("Paused")) return "Paused";
  if (is("Offline")) return "Offline: waiting for the network";
  return "Ready to upload";
}

function log(message) {
  const line = String(message).split("\n")[0].replace(/^\[[^\]]*\] (?=\[)/, ""); // drop the machine id
  if (!SHOWN.test(line)) return;
  const last = logList.lastElementChild;
  const follow = logList.scrollTop + logList.clientHeight >= logList.scrollHeight - 4;
  if (last?.dataset.line === line) {
    // repeats (progress chunks) count up instead of flooding the log
    last.dataset.count = String(Number(last.dataset.count) + 1);
    last.querySelector(".count").textContent = ` ×${last.dataset.count}`;
  } else {
    const item = document.createElement("li");
    item.dataset.line = line;
    item.dataset.count = "1";
    item.className = `log-${line.slice(1, line.indexOf("]")).replace("_", "")}`;
    item.append(line, Object.assign(document.createElement("span"), { className: "count" }));
    logList.append(item);
    while (logList.childElementCount > LOG_LINES) logList.firstElementChild.remove();
  }
  if (follow) logList.scrollTop = logList.scrollHeight;
}

// ---- the schema graph and the inspector

const graph = new SchemaGraph($("#schema"));
graph.setSchema(stateNames, { ...schema, Exception: { multi: true } }, "upload");
let shown = { clock: {}, added: new Set(), removed: new Set() };

/** The graph at `clock`, outlining the last change (kept until the next one). */
function showGraph(clock) {
  const now = clock ?? {};
  const added = new Set();
  const removed = new Set();
  for (const [name, tick] of Object.entries(now)) {
    const was = shown.clock[name];
    if (was === undefined || was === tick) continue;
    (tick % 2 ? added : removed).add(name);
  }
  if (added.size || removed.size) shown = { clock: now, added, removed };
  shown.clock = now;
  graph.update({ clock: now, added: shown.added, removed: shown.removed });
}

function dbgStream(url) {
  const ws = new URL("dbg", url);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";
  return ws.href;
}

$("#inspect").addEventListener("click", (event) => {
  if (inspector) {
    event.currentTarget.href = `${inspector}?machine=${MACHINE_ID}`;
    return;
  }
  // no am-dbg: the static inspector opens what this page recorded, as a file
  const lines = registry.session?.() ?? "";
  const file = URL.createObjectURL(new Blob([lines], { type: "application/jsonl" }));
  event.currentTarget.href = `inspector/?machine=${MACHINE_ID}&file=${encodeURIComponent(file)}`;
});

// ---- modes

async function start(mode) {
  const attempt = ++starting;
  body.dataset.ready = "false";
  body.dataset.mode = mode;
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.checked = radio.value === mode;
  session?.dispose();
  session = null;
  notice.hidden = true;
  logList.replaceChildren();
  connection.dataset.state = mode === "remote" ? "Connecting" : "Local";
  connection.textContent = mode === "remote" ? "Remote: connecting… (Connecting)" : "Local: starting…";
  render();
  let next = null;
  try {
    next = mode === "remote" ? await RemoteSession.open(am, changed, log) : new LocalSession(am, changed, log);
  } catch (err) {
    if (attempt !== starting) return;
    $("#offline-reason").textContent = err.message;
    notice.hidden = false;
    connection.dataset.state = "Unavailable";
    connection.textContent = "Remote: unavailable";
  }
  if (attempt !== starting) {
    next?.dispose();
    return;
  }
  session = next;
  if (session) render();
  body.dataset.ready = "true";
  performance.mark("interactive"); // bench/coldstart.py reads the first one
}

function switchTo(mode) {
  const url = new URL(location.href);
  url.searchParams.set("mode", mode);
  history.replaceState(null, "", url);
  start(mode);
}

for (const radio of document.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => radio.checked && switchTo(radio.value));
}
$("#use-local").addEventListener("click", () => switchTo("local"));
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-state], button[data-remove]");
  if (!button || !session) return;
  const { state, remove } = button.dataset;
  try {
    // remote mutations return Promises; the server's log says why one was canceled
    await (remove ? session.machine.remove1(remove) : session.machine.add1(state, argsFor(state)));
  } catch (err) {
    log(`[error] ${err.message}`);
  }
});
samples.addEventListener("change", (event) => {
  chosen = SAMPLES[Number(event.target.value)];
  $("#own-file").value = "";
  session?.refresh?.(); // a remote answer depends on the file
  changed();
});
$("#own-file").addEventListener("change", (event) => {
  const picked = event.target.files[0];
  if (!picked) return;
  chosen = { name: picked.name, size: picked.size };
  for (const radio of samples.querySelectorAll("input")) radio.checked = false;
  session?.refresh?.();
  changed();
});

connection.textContent = "Loading Python (Pyodide)…";
const am = await loadingPython;
$("#modes").disabled = false;
const requested = new URLSearchParams(location.search).get("mode");
start(requested === "remote" ? "remote" : "local");
