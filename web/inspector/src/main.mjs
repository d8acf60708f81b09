// The inspector page: machines on the left, the selected machine's states, timeline and schema
// graph in the middle, the selected transition on the right. Served by am-dbg (live, over
// `./ui`), or as a static page that opens session files (`?file=URL`, Open, or drag and drop).

import { renderDetail } from "./detail.mjs";
import { $, count, h, shortId } from "./dom.mjs";
import { SchemaGraph } from "./graph.mjs";
import { activeIn, changes, filterEntries, procLabel, Session } from "./model.mjs";
import { renderSequence } from "./sequence.mjs";
import { LiveFeed, feedUrl, fileText, gzipLines, parseLines, servedByAmDbg } from "./sources.mjs";
import { Timeline } from "./timeline.mjs";

const body = document.body;
const ui = {
  session: new Session(),
  source: "none", // "live" | "file" | "none"
  sourceName: "",
  feed: null,
  machId: null,
  /** A machine asked for with `?machine=ID`, selected as soon as it appears. */
  wanted: "",
  filters: { auto: true, canceled: true, empty: true, state: "", text: "" },
  view: new Int32Array(0),
  viewKey: "",
  viewLen: 0,
  selected: -1,
  follow: true,
  tab: "detail",
  synced: false,
  dirty: true,
  loadedAt: 0,
};

const timeline = new Timeline($("#timeline"), { onSelect: (i) => select(i) });
const graph = new SchemaGraph($("#graph"), { onSelect: (state) => toggleStateFilter(state) });

// ---- data in

function ingest(text, render = true) {
  const session = ui.session;
  const msgs = parseLines(text, session.errors);
  for (const msg of msgs) session.apply(msg);
  if (msgs.length) session.trim();
  ui.dirty = true;
  if (render) schedule();
}

function reset() {
  ui.session = new Session();
  ui.view = new Int32Array(0);
  ui.viewKey = "";
  ui.synced = false;
  ui.dirty = true;
}

function startLive(url) {
  ui.feed?.close();
  ui.source = "live";
  ui.sourceName = new URL(url).host;
  ui.feed = new LiveFeed(url, {
    onReset: reset,
    onLines: (text, synced) => {
      // while the session so far arrives, nothing is drawn; then once, and live after that
      ingest(text, ui.synced || synced);
      if (!ui.synced && !synced) renderLoading();
      if (synced) {
        ui.synced = true;
        markReady();
      }
    },
    onState: (state) => {
      ui.conn = state;
      renderConn();
    },
  });
  ui.feed.open();
}

async function openFile(blob, name) {
  try {
    const text = await fileText(blob);
    const before = ui.session;
    ui.feed?.close();
    ui.feed = null;
    reset();
    ingest(text);
    if (!ui.session.machines.size) {
      ui.session = before;
      throw new Error(`${name}: no machines in it`);
    }
    for (const m of ui.session.machines.values()) m.connected = false; // a recording
    ui.source = "file";
    ui.sourceName = name;
    ui.conn = "file";
    ui.synced = true;
    ui.machId = null;
    showBanner(ui.session.errors.length ? `${name}: ${ui.session.errors.length} lines could not be read (${ui.session.errors[0]})` : "");
    renderConn();
    markReady();
  } catch (err) {
    showBanner(`Could not open ${name}: ${err.message}`);
  }
}

function markReady() {
  if (body.dataset.state !== "ready") {
    ui.loadedAt = performance.now();
    schedule(() => {
      body.dataset.state = "ready";
      window.__inspectorReadyMs = performance.now();
    });
  }
}

// ---- selection and stepping

function mach() {
  return ui.machId ? ui.session.machines.get(ui.machId) ?? null : null;
}

function select(i, { follow = false } = {}) {
  ui.selected = i;
  ui.follow = follow;
  schedule();
  const pos = positionOf(i);
  if (pos >= 0) timeline.reveal(pos);
}

function selectMachine(id) {
  if (ui.machId === id) return;
  ui.machId = id;
  ui.selected = -1;
  ui.follow = true;
  ui.viewKey = "";
  schedule();
}

/** Jump to a transition of any machine (a link to a cause or an effect). */
function go(tx) {
  selectMachine(tx.mach.id);
  refreshView();
  if (positionOf(tx.i) < 0) {
    // filtered out: show everything again rather than jump to nowhere
    Object.assign(ui.filters, { auto: true, canceled: true, empty: true, state: "", text: "" });
    syncFilterInputs();
    ui.viewKey = "";
    refreshView();
  }
  ui.follow = false;
  ui.selected = tx.i;
  timeline.set(ui.session, mach(), ui.view, tx.i);
  timeline.reveal(positionOf(tx.i));
  if (matchMedia("(max-width: 760px)").matches) setView("detail");
  schedule();
}

function positionOf(i) {
  const view = ui.view;
  let lo = 0;
  let hi = view.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (view[mid] === i) return mid;
    if (view[mid] < i) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

function step(delta) {
  const n = ui.view.length;
  if (!n) return;
  let pos = positionOf(currentIndex());
  if (pos < 0) pos = delta > 0 ? -1 : n;
  select(ui.view[Math.max(0, Math.min(n - 1, pos + delta))]);
}

function jump(end) {
  const n = ui.view.length;
  if (!n) return;
  if (end) {
    ui.follow = ui.source === "live";
    select(ui.view[n - 1], { follow: ui.follow });
    timeline.reveal(n - 1, true);
  } else select(ui.view[0]);
}

function currentIndex() {
  return ui.follow ? ui.view[ui.view.length - 1] ?? -1 : ui.selected;
}

function toggleStateFilter(state) {
  ui.filters.state = ui.filters.state === state ? "" : state;
  $("#f-state").value = ui.filters.state;
  ui.viewKey = "";
  schedule();
}

// ---- rendering (coalesced to one pass per frame)

let frame = 0;
const afterRender = [];

function schedule(fn) {
  if (fn) afterRender.push(fn);
  if (!frame) frame = requestAnimationFrame(render);
}

function refreshView() {
  const m = mach();
  if (!m) {
    ui.view = new Int32Array(0);
    return;
  }
  const key = `${m.id}|${JSON.stringify(ui.filters)}|${m.evicted}`;
  if (key !== ui.viewKey || m.entries.length < ui.viewLen) {
    ui.view = filterEntries(m, ui.filters);
  } else if (m.entries.length > ui.viewLen) {
    // only appended entries: filter the new ones
    const more = filterEntries({ entries: m.entries.slice(ui.viewLen) }, ui.filters);
    const view = new Int32Array(ui.view.length + more.length);
    view.set(ui.view);
    for (let k = 0; k < more.length; k++) view[ui.view.length + k] = more[k] + ui.viewLen;
    ui.view = view;
  }
  ui.viewKey = key;
  ui.viewLen = m.entries.length;
}

function render() {
  frame = 0;
  const session = ui.session;
  if (ui.wanted && session.machines.has(ui.wanted)) {
    ui.machId = ui.wanted;
    ui.wanted = "";
  }
  if (!ui.machId || !session.machines.has(ui.machId)) ui.machId = pickMachine(session);
  refreshView();
  const m = mach();
  body.classList.toggle("no-machines", !session.machines.size);
  renderTree(session);
  renderConn();
  if (!m) {
    renderEmpty();
  } else {
    const i = currentIndex();
    const entry = i >= 0 ? m.entries[i] : null;
    renderHead(m);
    const clock = m.clockAt(i);
    const schema = m.schemaAt(Math.max(i, 0));
    renderChips(m, schema.names, clock, entry);
    renderStateFilter(schema.names);
    timeline.stick = ui.follow;
    timeline.set(session, m, ui.view, i);
    $("#tl-count").textContent = ui.view.length === m.entries.length ? count(m.entries.length) : `${count(ui.view.length)} of ${count(m.entries.length)}`;
    graph.setSchema(schema.names, schema.states, m.id);
    const ch = entry ? changes(m, entry) : { added: [], removed: [] };
    graph.update({
      clock,
      added: new Set(ch.added),
      removed: new Set(ch.removed),
      called: new Set(entry?.kind === "tx" ? entry.called : []),
      selected: ui.filters.state,
    });
    renderStepper(i);
    if (ui.tab === "detail") $("#detail").replaceChildren(renderDetail(session, m, entry, go));
    else $("#sequence").replaceChildren(renderSequence(session, entry, go, $("#sequence").clientWidth || 360));
  }
  if (m && ui.follow) timeline.reveal(ui.view.length - 1, true);
  const newest = m?.entries[m.entries.length - 1];
  if (newest && newest !== ui.shown) {
    // when the newest transition first reached the screen (bench/dbg.py: live latency)
    ui.shown = newest;
    ui.shownAt = Date.now();
  }
  ui.dirty = false;
  for (const fn of afterRender.splice(0)) fn();
}

function pickMachine(session) {
  let best = null;
  for (const m of session.machines.values()) {
    if (!best || (m.connected && !best.connected) || (m.connected === best.connected && m.entries.length > best.entries.length)) best = m;
  }
  return best?.id ?? null;
}

let loadingShown = 0;
function renderLoading() {
  const now = performance.now();
  if (now - loadingShown < 200) return;
  loadingShown = now;
  let n = 0;
  for (const m of ui.session.machines.values()) n += m.entries.length;
  $("#conn").textContent = `Loading ${count(n)} transitions…`;
}

function renderConn() {
  const conn = $("#conn");
  const state = ui.conn ?? "none";
  conn.dataset.state = state;
  conn.textContent = {
    live: `Live · ${ui.sourceName}`,
    connecting: `Connecting to ${ui.sourceName}…`,
    offline: `am-dbg unreachable · retrying`,
    file: ui.sourceName,
    none: "No session",
  }[state];
  $("#clear").hidden = ui.source !== "live";
  $("#export").disabled = !ui.session.machines.size;
}

let treeKey = "";
function renderTree(session) {
  const groups = session.tree();
  const key = JSON.stringify([ui.machId, groups.map((g) => [g.key, g.rows.map((r) => [r.mach.id, r.mach.connected, r.mach.disposed, r.mach.entries.length, r.mach.errors])])]);
  if (key === treeKey) return;
  treeKey = key;
  $("#machine-count").textContent = session.machines.size ? count(session.machines.size) : "";
  const tree = $("#tree");
  tree.replaceChildren(
    ...groups.map((g) =>
      h(
        "div.group",
        { role: "group" },
        h("h3.group-title", { title: g.proc ? JSON.stringify(g.proc) : "from a file" }, procIcon(g.proc), procLabel(g.proc)),
        g.rows.map(({ mach: m, depth }) =>
          h(
            "button.mach",
            {
              type: "button",
              role: "treeitem",
              "aria-selected": String(m.id === ui.machId),
              "aria-level": String(depth + 1),
              style: `--depth:${depth}`,
              dataset: { id: m.id, status: m.disposed ? "disposed" : m.connected ? "connected" : "disconnected" },
              title: `${m.id}: ${m.disposed ? "disposed" : m.connected ? "connected" : "disconnected"}`,
              onclick: () => {
                selectMachine(m.id);
                if (matchMedia("(max-width: 760px)").matches) setView("timeline");
              },
            },
            h("span.dot", { "aria-hidden": "true" }),
            h("span.name", {}, m.id),
            m.errors ? h("span.errs", { title: `${m.errors} errors` }, count(m.errors)) : null,
            h("span.n", {}, count(m.entries.length)),
          ),
        ),
      ),
    ),
  );
}

function procIcon(proc) {
  return h("span.proc-kind", {}, !proc ? "file" : proc.runtime === "pyodide" ? "tab" : "py");
}

function renderHead(m) {
  const parts = [h("h2.mach-id", {}, m.id)];
  const status = m.disposed ? "disposed" : m.connected ? "connected" : "disconnected";
  parts.push(h(`span.status.${status}`, {}, status));
  const facts = [];
  if (m.parent) facts.push(h("span", {}, "child of ", h("button.plain", { type: "button", onclick: () => ui.session.machines.has(m.parent) && selectMachine(m.parent) }, m.parent)));
  if (m.tags.length) facts.push(h("span", {}, m.tags.map((t) => h("span.tag", {}, t))));
  facts.push(h("span", {}, `${count(m.names.length)} states`));
  if (m.dropped) facts.push(h("span.warn", { title: "the stream dropped these: am-dbg was unreachable or too slow" }, `${count(m.dropped)} dropped`));
  if (m.evicted) facts.push(h("span.muted", { title: "older transitions beyond the memory cap" }, `${count(m.evicted)} older not kept`));
  $("#mach-head").replaceChildren(h("div.mach-title", {}, ...parts), h("div.mach-facts", {}, ...facts));
}

function renderChips(m, names, clock, entry) {
  const ch = entry?.kind === "tx" ? changes(m, entry) : { added: [], removed: [] };
  const added = new Set(ch.added);
  const removed = new Set(ch.removed);
  const chips = $("#chips");
  const key = names.join(" ");
  if (chips.dataset.key !== key) {
    chips.dataset.key = key;
    chips.replaceChildren(
      ...names.map((name) =>
        h("button.chip", { type: "button", role: "listitem", dataset: { state: name }, onclick: () => toggleStateFilter(name) }, h("span.nm", {}, name), h("span.tk", {}, "0")),
      ),
    );
  }
  for (const chip of chips.children) {
    const name = chip.dataset.state;
    const tick = clock[name] ?? 0;
    const active = tick % 2 === 1;
    chip.classList.toggle("active", active);
    chip.classList.toggle("added", added.has(name));
    chip.classList.toggle("removed", removed.has(name));
    chip.classList.toggle("filtering", ui.filters.state === name);
    chip.lastChild.textContent = String(tick);
    chip.title = `${name}: tick ${tick}, ${active ? "active" : "inactive"} (click: filter the timeline)`;
    chip.setAttribute("aria-label", `${name} ${active ? "active" : "inactive"}, tick ${tick}`);
  }
}

let stateOptionsKey = "";
function renderStateFilter(names) {
  const key = names.join(" ");
  if (key === stateOptionsKey) return;
  stateOptionsKey = key;
  const select = $("#f-state");
  select.replaceChildren(h("option", { value: "" }, "any state"), ...names.map((n) => h("option", { value: n }, n)));
  select.value = ui.filters.state;
}

function renderStepper(i) {
  const n = ui.view.length;
  const pos = positionOf(i);
  const scrub = $("#scrub");
  scrub.max = String(Math.max(0, n - 1));
  scrub.value = String(Math.max(0, pos));
  scrub.disabled = n < 2;
  $("#position").textContent = n ? `${count(pos + 1)} / ${count(n)}` : "–";
  $("#prev").disabled = pos <= 0;
  $("#first").disabled = pos <= 0;
  $("#next").disabled = pos < 0 || pos >= n - 1;
  $("#last").disabled = pos >= n - 1 && ui.follow;
  const follow = $("#follow");
  follow.hidden = ui.source !== "live";
  follow.setAttribute("aria-pressed", String(ui.follow));
}

function renderEmpty() {
  $("#mach-head").replaceChildren();
  $("#chips").replaceChildren();
  $("#chips").dataset.key = "";
  $("#tl-count").textContent = "";
  timeline.set(ui.session, { id: "", entries: [] }, new Int32Array(0), -1);
  const tpl = $("#empty-tpl").content.cloneNode(true);
  const addr = ui.source === "live" ? ui.sourceName : "127.0.0.1:6831";
  for (const span of tpl.querySelectorAll("[data-addr]")) span.textContent = addr;
  $("#detail").replaceChildren(tpl);
  renderStepper(-1);
}

function showBanner(text) {
  const banner = $("#banner");
  banner.hidden = !text;
  banner.replaceChildren(text ? h("span", {}, text) : "", text ? h("button.plain", { type: "button", onclick: () => showBanner("") }, "Dismiss") : "");
}

function syncFilterInputs() {
  $("#f-auto").checked = ui.filters.auto;
  $("#f-canceled").checked = ui.filters.canceled;
  $("#f-empty").checked = ui.filters.empty;
  $("#f-state").value = ui.filters.state;
  $("#search").value = ui.filters.text;
}

function setView(view) {
  body.dataset.view = view;
  for (const b of document.querySelectorAll(".mobile-nav button")) b.setAttribute("aria-current", String(b.dataset.view === view));
  schedule();
}

function toggleGraph() {
  const big = !body.classList.contains("graph-max");
  body.classList.toggle("graph-max", big);
  $("#graph-max").setAttribute("aria-pressed", String(big));
}

function setTab(tab) {
  ui.tab = tab;
  $("#tab-detail").setAttribute("aria-selected", String(tab === "detail"));
  $("#tab-sequence").setAttribute("aria-selected", String(tab === "sequence"));
  $("#detail").hidden = tab !== "detail";
  $("#sequence").hidden = tab !== "sequence";
  schedule();
}

// ---- theme: system, light, dark

const THEMES = ["system", "light", "dark"];
function applyTheme(theme) {
  if (theme === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("#theme").title = `Theme: ${theme === "system" ? "follow the system" : theme} (click to change)`;
  try {
    localStorage.setItem("am-dbg-theme", theme);
  } catch {
    // storage off: the choice lasts for this page only
  }
}

// ---- events

function wire() {
  $("#open").addEventListener("click", () => $("#file").click());
  $("#file").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    if (file) openFile(file, file.name);
    e.target.value = "";
  });
  $("#export").addEventListener("click", async () => {
    const live = ui.source === "live" && ui.feed?.synced;
    const blob = live ? await (await fetch(new URL("export.jsonl.gz", ui.feed.httpUrl()))).blob() : await gzipLines(ui.session.lines());
    const a = h("a", { href: URL.createObjectURL(blob), download: `am-dbg-${new Date().toISOString().slice(0, 19).replaceAll(":", "")}.jsonl.gz` });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  $("#clear").addEventListener("click", () => ui.feed?.send({ kind: "clear" }));
  $("#theme").addEventListener("click", () => {
    const now = document.documentElement.dataset.theme ?? "system";
    applyTheme(THEMES[(THEMES.indexOf(now) + 1) % THEMES.length]);
  });
  for (const [id, key] of [["#f-auto", "auto"], ["#f-canceled", "canceled"], ["#f-empty", "empty"]]) {
    $(id).addEventListener("change", (e) => {
      ui.filters[key] = e.target.checked;
      schedule();
    });
  }
  $("#f-state").addEventListener("change", (e) => {
    ui.filters.state = e.target.value;
    schedule();
  });
  let typing = 0;
  $("#search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      ui.filters.text = e.target.value;
      schedule();
    }, 120);
  });
  $("#first").addEventListener("click", () => jump(false));
  $("#last").addEventListener("click", () => jump(true));
  $("#prev").addEventListener("click", () => step(-1));
  $("#next").addEventListener("click", () => step(1));
  $("#scrub").addEventListener("input", (e) => {
    const i = ui.view[Number(e.target.value)];
    if (i != null) select(i);
  });
  $("#follow").addEventListener("click", () => {
    ui.follow = !ui.follow;
    if (ui.follow) jump(true);
    schedule();
  });
  $("#graph-max").addEventListener("click", toggleGraph);
  $("#tab-detail").addEventListener("click", () => setTab("detail"));
  $("#tab-sequence").addEventListener("click", () => setTab("sequence"));
  for (const b of document.querySelectorAll(".mobile-nav button")) b.addEventListener("click", () => setView(b.dataset.view));
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea") && e.key !== "Escape") return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const keys = {
      ArrowLeft: () => step(-1),
      ArrowRight: () => step(1),
      ArrowUp: () => step(-1),
      ArrowDown: () => step(1),
      k: () => step(-1),
      j: () => step(1),
      Home: () => jump(false),
      End: () => jump(true),
      f: () => $("#follow").click(),
      g: toggleGraph,
      "/": () => $("#search").focus(),
      Escape: () => document.activeElement?.blur(),
    };
    const fn = keys[e.key];
    if (fn) {
      e.preventDefault();
      fn();
    }
  });
  body.addEventListener("dragover", (e) => {
    e.preventDefault();
    body.classList.add("dropping");
  });
  body.addEventListener("dragleave", () => body.classList.remove("dropping"));
  body.addEventListener("drop", (e) => {
    e.preventDefault();
    body.classList.remove("dropping");
    const file = e.dataTransfer?.files?.[0];
    if (file) openFile(file, file.name);
  });
}

async function boot() {
  let theme = "system";
  try {
    theme = localStorage.getItem("am-dbg-theme") ?? "system";
  } catch {
    // no storage
  }
  applyTheme(THEMES.includes(theme) ? theme : "system");
  wire();
  setView(body.dataset.view);
  const params = new URLSearchParams(location.search);
  const file = params.get("file");
  ui.wanted = params.get("machine") ?? "";
  if (file) {
    try {
      const res = await fetch(new URL(file, location.href));
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      await openFile(await res.blob(), file.split("/").pop());
    } catch (err) {
      showBanner(`Could not load ${file}: ${err.message}`);
    }
  } else if (params.get("dbg") || servedByAmDbg(document)) {
    startLive(feedUrl(location));
  } else {
    ui.conn = "none";
    markReady();
  }
  schedule();
}

window.__inspector = { ui, go, select, openFile };
boot();
