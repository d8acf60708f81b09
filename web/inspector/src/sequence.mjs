// The sequence view: mutations between machines (a tab, a server, a worker) as arrows between
// lifelines, in time order, around the selected transition.

import { clockTime, h, svg } from "./dom.mjs";
import { mutationLabel, procLabel } from "./model.mjs";

const ROW = 36;
const HEAD = 46;
const WINDOW = 40;

/** Cross-machine messages: a transition whose source is in another machine, tab or client. */
export function crossMessages(session) {
  const out = [];
  for (const e of session.linked) {
    const cause = session.cause(e);
    if (cause) {
      if (cause.mach !== e.mach) out.push({ from: cause.mach.id, to: e.mach.id, cause, effect: e });
    } else if (e.source.tab || e.source.client) {
      const from = e.source.tab ? `tab:${e.source.tab}` : `client:${e.source.client}`;
      out.push({ from, to: e.mach.id, cause: null, effect: e });
    } else if (e.source.mach && e.source.mach !== e.id) {
      out.push({ from: e.source.mach, to: e.mach.id, cause: null, effect: e });
    }
  }
  out.sort((a, b) => a.effect.t - b.effect.t);
  return out;
}

/** The view around `selected` (an entry, or null for the latest). */
export function renderSequence(session, selected, go, width) {
  const all = crossMessages(session);
  if (!all.length) {
    return h(
      "div.empty-detail",
      {},
      h("p", {}, "No mutations between machines yet."),
      h("p.muted", {}, "When a handler of one machine mutates another (or a browser tab mutates a server machine over RPC), the call shows up here as an arrow."),
    );
  }
  let center = all.length - 1;
  if (selected) {
    const at = all.findIndex((m) => m.effect === selected || m.cause === selected);
    center = at >= 0 ? at : nearest(all, selected.t);
  }
  const start = Math.max(0, Math.min(center - WINDOW / 2, all.length - WINDOW));
  const shown = all.slice(start, start + WINDOW);
  const lanes = [];
  for (const m of shown) for (const id of [m.from, m.to]) if (!lanes.includes(id)) lanes.push(id);
  const laneW = Math.max(120, Math.min(220, (width - 24) / lanes.length));
  const w = Math.max(width, laneW * lanes.length + 24);
  const height = HEAD + shown.length * ROW + 16;
  const root = svg("svg", { class: "sequence", width: String(w), height: String(height), viewBox: `0 0 ${w} ${height}`, role: "img", "aria-label": "Mutations between machines" });
  const defs = svg("defs", {}, root);
  const marker = svg("marker", { id: "seq-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" }, defs);
  svg("path", { d: "M0,0 L10,5 L0,10 z", class: "seq-mk" }, marker);
  const x = (id) => 12 + laneW * lanes.indexOf(id) + laneW / 2;
  for (const id of lanes) {
    const cx = x(id);
    svg("line", { x1: cx, y1: HEAD - 6, x2: cx, y2: height - 8, class: "lifeline" }, root);
    const label = svg("text", { x: cx, y: 18, class: "lane", "text-anchor": "middle" }, root);
    label.textContent = laneName(session, id, laneW);
    const sub = svg("text", { x: cx, y: 34, class: "lane-sub", "text-anchor": "middle" }, root);
    sub.textContent = laneSub(session, id, laneW);
  }
  shown.forEach((m, k) => {
    const y = HEAD + k * ROW + ROW / 2 + 6;
    const x1 = x(m.from);
    const x2 = x(m.to);
    const dir = x2 > x1 ? 1 : -1;
    const g = svg("g", { class: `msg${m.effect === selected || m.cause === selected ? " selected" : ""}${m.effect.accepted ? "" : " canceled"}`, tabindex: "0" }, root);
    svg("rect", { x: Math.min(x1, x2) - 6, y: y - ROW / 2 - 4, width: Math.abs(x2 - x1) + 12, height: ROW, rx: 6, class: "hit" }, g);
    svg("line", { x1: x1 + dir * 4, y1: y, x2: x2 - dir * 6, y2: y, class: "arrow", "marker-end": "url(#seq-arrow)" }, g);
    svg("circle", { cx: x1, cy: y, r: 3.5, class: "dot" }, g);
    const label = svg("text", { x: (x1 + x2) / 2, y: y - 7, class: "msg-label", "text-anchor": "middle" }, g);
    label.textContent = clip(`${mutationLabel(m.effect)}${m.effect.accepted ? "" : " ✕"}`, Math.abs(x2 - x1) - 16);
    const title = svg("title", {}, g);
    title.textContent = `${clockTime(m.effect.t)} ${m.from} → ${m.to}: ${mutationLabel(m.effect)}`;
    const open = () => go(m.effect);
    g.addEventListener("click", open);
    g.addEventListener("keydown", (e) => e.key === "Enter" && open());
  });
  const note = start > 0 || start + WINDOW < all.length ? h("p.muted.seq-note", {}, `${shown.length} of ${all.length} calls, around the selected transition`) : null;
  return h("div.seq-wrap", {}, note, root);
}

function nearest(all, t) {
  let lo = 0;
  let hi = all.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (all[mid].effect.t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function laneName(session, id, width) {
  if (id.startsWith("tab:")) return clip(`tab ${id.slice(4, 10)}`, width - 8);
  if (id.startsWith("client:")) return clip(id.slice(7), width - 8);
  return clip(id, width - 8);
}

function laneSub(session, id, width) {
  if (id.startsWith("tab:")) return "browser tab (RPC)";
  if (id.startsWith("client:")) return "RPC client";
  const mach = session.machines.get(id);
  return clip(mach ? procLabel(mach.proc) : "not streamed", width - 8);
}

function clip(text, px) {
  const max = Math.max(4, Math.floor(px / 6.5));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
