// A schema as a graph: states as nodes laid out by dagre from their `require` and `add`
// relations, `remove` and `after` drawn as arcs over that layout; active states filled, the
// states a transition changed outlined. The layout is computed once per schema; time travel only
// changes classes and tick labels. Used by the inspector and by the upload demo.

import dagre from "@dagrejs/dagre";
import { svg } from "./dom.mjs";

const NODE_H = 30;
const FLAG_H = 12;
const PAD_X = 12;
const KINDS = ["require", "add", "remove", "after"];
const MAX_FIT = 1.15;
const MIN_FIT = 0.7;

let measureCtx = null;
function textWidth(text, font) {
  measureCtx ??= document.createElement("canvas").getContext("2d");
  measureCtx.font = font;
  return measureCtx.measureText(text).width;
}

/** Relations between states, with mutual `remove`s merged into one two-way edge. */
export function relations(names, states) {
  const known = new Set(names);
  const edges = [];
  const removes = new Map();
  for (const from of names) {
    const spec = states[from] ?? {};
    for (const kind of KINDS) {
      for (const to of spec[kind] ?? []) {
        if (!known.has(to) || to === from) continue;
        if (kind === "remove") {
          const back = removes.get(`${to}\u0000${from}`);
          if (back) {
            back.mutual = true;
            continue;
          }
          const edge = { kind, from, to, mutual: false };
          removes.set(`${from}\u0000${to}`, edge);
          edges.push(edge);
        } else edges.push({ kind, from, to, mutual: false });
      }
    }
  }
  return edges;
}

/** Lay out a schema: node boxes and edge paths in one coordinate space.
 *
 * Each group of states linked by `require`/`add` is laid out by dagre; the groups, and the
 * states with no such relation (packed in a grid), are then placed in rows to suit `aspect`
 * (width / height of the view), so a wide schema does not end up as one thin line. */
export function layoutSchema(names, states, font, aspect = 1.6) {
  const tickW = textWidth("00", font);
  const boxes = new Map();
  for (const name of names) {
    const spec = states[name] ?? {};
    const flags = [spec.auto && "auto", spec.multi && "multi"].filter(Boolean);
    const w = Math.ceil(textWidth(name, font) + tickW + PAD_X * 2 + 10);
    boxes.set(name, { name, x: 0, y: 0, w, h: NODE_H + (flags.length ? FLAG_H : 0), flags });
  }
  const edges = relations(names, states);
  const laid = edges.filter((e) => e.kind === "require" || e.kind === "add");
  const groups = components(names, laid);
  const blocks = [];
  const loners = [];
  for (const group of groups) {
    if (group.length === 1) loners.push(group[0]);
    else blocks.push(layoutGroup(group, laid, boxes, aspect));
  }
  if (loners.length) blocks.push(gridBlock(loners, boxes, aspect));
  const { width, height } = pack(blocks, aspect);
  for (const box of boxes.values()) {
    box.x += box.block.dx;
    box.y += box.block.dy;
  }
  for (const e of edges) {
    const a = boxes.get(e.from);
    const b = boxes.get(e.to);
    const points = e.points?.map((p) => ({ x: p.x + e.block.dx, y: p.y + e.block.dy }));
    e.d = points ? smooth(points) : arc(a, b);
  }
  return { nodes: boxes, edges, width: Math.max(width, 40), height: Math.max(height, 40) };
}

const MARGIN = 16;
const GAP = 28;

/** Groups of states connected by the given edges (in `names` order). */
function components(names, edges) {
  const parent = new Map(names.map((n) => [n, n]));
  const find = (n) => {
    while (parent.get(n) !== n) n = parent.get(n);
    return n;
  };
  for (const e of edges) parent.set(find(e.from), find(e.to));
  const groups = new Map();
  for (const n of names) {
    const root = find(n);
    if (!groups.has(root)) groups.set(root, []);
    groups.get(root).push(n);
  }
  return [...groups.values()];
}

/** A group by dagre, top-down or left-right: whichever shape suits `aspect` better. */
function layoutGroup(group, edges, boxes, aspect) {
  const tb = dagreGroup(group, edges, boxes, "TB");
  if (group.length < 6) return tb;
  const lr = dagreGroup(group, edges, boxes, "LR");
  const misfit = (b) => Math.abs(Math.log(b.w / b.h / aspect));
  const best = misfit(lr) < misfit(tb) * 0.8 ? lr : tb;
  if (best === tb) dagreGroup(group, edges, boxes, "TB"); // the boxes hold the last layout
  return best;
}

function dagreGroup(group, edges, boxes, rankdir) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir, nodesep: 18, ranksep: rankdir === "TB" ? 44 : 56, edgesep: 10, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  const members = new Set(group);
  for (const name of group) g.setNode(name, { width: boxes.get(name).w, height: boxes.get(name).h });
  const mine = edges.filter((e) => members.has(e.from));
  mine.forEach((e, n) => {
    // `require` points from the dependency down to the state needing it; `add` downwards too
    if (e.kind === "require") g.setEdge(e.to, e.from, { weight: 2 }, `e${n}`);
    else g.setEdge(e.from, e.to, { weight: 1 }, `e${n}`);
  });
  dagre.layout(g);
  const block = { w: g.graph().width, h: g.graph().height, dx: 0, dy: 0, nodes: group };
  for (const name of group) Object.assign(boxes.get(name), { x: g.node(name).x, y: g.node(name).y, block });
  mine.forEach((e, n) => {
    const v = e.kind === "require" ? e.to : e.from;
    const w = e.kind === "require" ? e.from : e.to;
    const points = g.edge({ v, w, name: `e${n}` })?.points;
    e.points = points && (e.kind === "require" ? points.slice().reverse() : points);
    e.block = block;
  });
  return block;
}

/** States without layout relations, in rows, about as wide as `aspect` wants. */
function gridBlock(names, boxes, aspect) {
  const cellW = Math.max(...names.map((n) => boxes.get(n).w)) + 14;
  const cellH = NODE_H + FLAG_H + 10;
  const cols = Math.max(1, Math.min(names.length, Math.round(Math.sqrt((names.length * aspect * cellH) / cellW))));
  const block = { w: cols * cellW - 14, h: Math.ceil(names.length / cols) * cellH - 10, dx: 0, dy: 0, nodes: names };
  names.forEach((name, i) => {
    const box = boxes.get(name);
    Object.assign(box, { x: (i % cols) * cellW + box.w / 2, y: Math.floor(i / cols) * cellH + box.h / 2, block });
  });
  return block;
}

/** Place blocks left to right in rows (tallest first), rows no wider than `aspect` wants. */
function pack(blocks, aspect) {
  const area = blocks.reduce((sum, b) => sum + (b.w + GAP) * (b.h + GAP), 0);
  const maxW = Math.max(Math.sqrt(area * aspect), ...blocks.map((b) => b.w));
  let x = MARGIN;
  let y = MARGIN;
  let rowH = 0;
  let width = 0;
  for (const b of [...blocks].sort((a, c) => c.h - a.h)) {
    if (x > MARGIN && x + b.w > MARGIN + maxW) {
      x = MARGIN;
      y += rowH + GAP;
      rowH = 0;
    }
    b.dx = x;
    b.dy = y;
    x += b.w + GAP;
    rowH = Math.max(rowH, b.h);
    width = Math.max(width, x - GAP + MARGIN);
  }
  return { width, height: y + rowH + MARGIN };
}

/** A smooth path through dagre's points (Catmull-Rom as cubic Béziers). */
function smooth(points) {
  if (points.length < 3) return `M${points.map((p) => `${p.x},${p.y}`).join("L")}`;
  let d = `M${points[0].x},${points[0].y}`;
  for (let i = 0; i < points.length - 1; i++) {
    const p0 = points[i - 1] ?? points[i];
    const p1 = points[i];
    const p2 = points[i + 1];
    const p3 = points[i + 2] ?? p2;
    const c1 = { x: p1.x + (p2.x - p0.x) / 6, y: p1.y + (p2.y - p0.y) / 6 };
    const c2 = { x: p2.x - (p3.x - p1.x) / 6, y: p2.y - (p3.y - p1.y) / 6 };
    d += `C${c1.x},${c1.y} ${c2.x},${c2.y} ${p2.x},${p2.y}`;
  }
  return d;
}

/** An arc between two boxes, leaving and entering at their borders. */
function arc(a, b) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  const start = border(a, dx / len, dy / len);
  const end = border(b, -dx / len, -dy / len);
  const bend = Math.min(60, len * 0.25);
  const mx = (start.x + end.x) / 2 - (dy / len) * bend;
  const my = (start.y + end.y) / 2 + (dx / len) * bend;
  return `M${start.x},${start.y}Q${mx},${my} ${end.x},${end.y}`;
}

function border(box, ux, uy) {
  const hw = box.w / 2 + 2;
  const hh = box.h / 2 + 2;
  const t = Math.min(ux ? hw / Math.abs(ux) : Infinity, uy ? hh / Math.abs(uy) : Infinity);
  return { x: box.x + ux * t, y: box.y + uy * t };
}

/** The rendered graph of one machine's schema, updated in place as time moves. */
export class SchemaGraph {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.svg = svg("svg", { class: "schema-graph", role: "img" });
    container.append(this.svg);
    this.key = "";
    this.layout = null;
    this.nodes = new Map();
    this.edgeEls = [];
    this.view = null;
    this.svg.addEventListener("wheel", (e) => this.zoom(e), { passive: false });
    this.svg.addEventListener("pointerdown", (e) => this.pan(e));
    this.svg.addEventListener("dblclick", () => this.fit());
    new ResizeObserver(() => this.layout && this.fit()).observe(container);
  }

  /** Show `names`/`states`; a no-op when it is the schema already shown. */
  setSchema(names, states, label = "") {
    const key = JSON.stringify([names, states]);
    if (key === this.key) return;
    this.key = key;
    const font = getComputedStyle(this.container).getPropertyValue("--graph-font").trim() || "600 13px system-ui";
    const box = this.container.getBoundingClientRect();
    const aspect = box.width > 0 && box.height > 0 ? box.width / box.height : 1.6;
    this.layout = layoutSchema(names, states, font, Math.min(4, Math.max(0.5, aspect)));
    this.svg.setAttribute("aria-label", `${label} schema: ${names.length} states`);
    this.render();
    this.pendingFit = true; // after update(): a big graph centres on its active states
  }

  render() {
    const { nodes, edges } = this.layout;
    this.svg.replaceChildren();
    const defs = svg("defs", {}, this.svg);
    for (const kind of KINDS) {
      const marker = svg("marker", { id: `am-arrow-${kind}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
      if (kind === "remove") svg("path", { d: "M6,0 L6,10", class: `mk mk-${kind}` }, marker);
      else svg("path", { d: "M0,0 L10,5 L0,10 z", class: `mk mk-${kind}` }, marker);
    }
    const root = svg("g", { class: "viewport" }, this.svg);
    const edgeLayer = svg("g", { class: "edges" }, root);
    this.edgeEls = edges.map((e) => {
      const path = svg("path", { d: e.d, class: `edge rel-${e.kind}`, "marker-end": `url(#am-arrow-${e.kind})` }, edgeLayer);
      if (e.mutual) path.setAttribute("marker-start", `url(#am-arrow-${e.kind})`);
      path.dataset.from = e.from;
      path.dataset.to = e.to;
      const title = svg("title", {}, path);
      title.textContent = e.mutual ? `${e.from} and ${e.to} remove each other` : `${e.from} ${e.kind} ${e.to}`;
      return path;
    });
    const nodeLayer = svg("g", { class: "nodes" }, root);
    this.nodes = new Map();
    for (const n of nodes.values()) {
      const g = svg("g", { class: "node", transform: `translate(${n.x - n.w / 2},${n.y - n.h / 2})`, tabindex: "-1" }, nodeLayer);
      g.dataset.state = n.name;
      svg("rect", { width: n.w, height: n.h, rx: "8" }, g);
      const name = svg("text", { x: PAD_X, y: NODE_H / 2 + 1, class: "name", "dominant-baseline": "middle" }, g);
      name.textContent = n.name;
      const tick = svg("text", { x: n.w - PAD_X, y: NODE_H / 2 + 1, class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, g);
      if (n.flags.length) {
        const flags = svg("text", { x: PAD_X, y: NODE_H + 3, class: "flags", "dominant-baseline": "middle" }, g);
        flags.textContent = n.flags.join(" · ");
      }
      const title = svg("title", {}, g);
      g.addEventListener("pointerenter", () => this.focus(n.name));
      g.addEventListener("pointerleave", () => this.focus(null));
      g.addEventListener("click", () => this.onSelect?.(n.name));
      this.nodes.set(n.name, { g, tick, title, box: n });
    }
  }

  /** Highlight a state's relations (null: none). */
  focus(name) {
    this.svg.classList.toggle("focused", Boolean(name));
    for (const path of this.edgeEls) {
      path.classList.toggle("hl", path.dataset.from === name || path.dataset.to === name);
    }
    for (const [state, { g }] of this.nodes) g.classList.toggle("hl", state === name);
  }

  /** Show a point in time: `clock` ticks; `added`/`removed`/`called` sets of the transition. */
  update({ clock = {}, added = new Set(), removed = new Set(), called = new Set(), selected = "" } = {}) {
    for (const [name, { g, tick, title }] of this.nodes) {
      const t = clock[name] ?? 0;
      const active = t % 2 === 1;
      g.classList.toggle("active", active);
      g.classList.toggle("added", added.has(name));
      g.classList.toggle("removed", removed.has(name));
      g.classList.toggle("called", called.has(name));
      g.classList.toggle("selected", selected === name);
      tick.textContent = String(t);
      title.textContent = `${name}: tick ${t} (${active ? "active" : "inactive"})`;
    }
    if (this.pendingFit) {
      this.pendingFit = false;
      this.fit();
    }
  }

  // ---- view: fit, zoom with the wheel, pan by dragging

  /** The whole graph in view, centred, magnified at most MAX_FIT; a graph too big to read
   * that way is shown at MIN_FIT around its active states instead (drag to pan, wheel to
   * zoom, double-click to come back here). */
  fit() {
    if (!this.layout) return;
    const { width, height } = this.layout;
    const box = this.svg.getBoundingClientRect();
    const bw = box.width || width;
    const bh = box.height || height;
    let scale = Math.min(MAX_FIT, bw / width, bh / height);
    let cx = width / 2;
    let cy = height / 2;
    if (scale < MIN_FIT) {
      scale = MIN_FIT;
      const focus = [...this.nodes.values()].filter(({ g }) => g.classList.contains("active"));
      const boxes = focus.length ? focus.map(({ box: b }) => b) : [...this.layout.nodes.values()];
      cx = (Math.min(...boxes.map((b) => b.x)) + Math.max(...boxes.map((b) => b.x))) / 2;
      cy = (Math.min(...boxes.map((b) => b.y)) + Math.max(...boxes.map((b) => b.y))) / 2;
    }
    const w = bw / scale;
    const h = bh / scale;
    this.view = { x: cx - w / 2, y: cy - h / 2, w, h };
    this.applyView();
  }

  applyView() {
    const { x, y, w, h } = this.view;
    this.svg.setAttribute("viewBox", `${x} ${y} ${w} ${h}`);
  }

  zoom(event) {
    if (!this.view) return;
    event.preventDefault();
    const rect = this.svg.getBoundingClientRect();
    const scale = Math.exp(event.deltaY * 0.0015);
    const v = this.view;
    const fx = (event.clientX - rect.left) / rect.width;
    const fy = (event.clientY - rect.top) / rect.height;
    const w = Math.min(Math.max(v.w * scale, 40), this.layout.width * 4);
    const h = (w / v.w) * v.h;
    this.view = { x: v.x + (v.w - w) * fx, y: v.y + (v.h - h) * fy, w, h };
    this.applyView();
  }

  pan(event) {
    if (!this.view || event.button !== 0 || event.target.closest(".node")) return;
    const rect = this.svg.getBoundingClientRect();
    const start = { x: event.clientX, y: event.clientY, view: { ...this.view } };
    const ratio = Math.max(this.view.w / rect.width, this.view.h / rect.height);
    const move = (e) => {
      this.view = { ...start.view, x: start.view.x - (e.clientX - start.x) * ratio, y: start.view.y - (e.clientY - start.y) * ratio };
      this.applyView();
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }
}
