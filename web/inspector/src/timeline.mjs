// The transition list: only the rows in view exist in the DOM (a pool re-filled on scroll), so a
// timeline of 100,000 transitions scrolls like one of ten.

import { clockTime, count, h } from "./dom.mjs";
import { mutationLabel } from "./model.mjs";

export const ROW = 30;
const OVERSCAN = 6;

export class Timeline {
  constructor(root, { onSelect }) {
    this.root = root;
    this.onSelect = onSelect;
    this.scroller = h("div.tl-scroll", { role: "listbox", "aria-label": "Transitions", tabindex: "0" });
    this.spacer = h("div.tl-spacer");
    this.scroller.append(this.spacer);
    root.append(this.scroller);
    this.rows = [];
    this.mach = null;
    this.view = new Int32Array(0);
    this.selected = -1;
    this.session = null;
    /** Keep the last row in view (following new transitions), also when the list resizes. */
    this.stick = false;
    this.scroller.addEventListener("scroll", () => this.paint());
    this.scroller.addEventListener("click", (e) => {
      const row = e.target.closest(".tl-row");
      if (row) this.onSelect(Number(row.dataset.i));
    });
    new ResizeObserver(() => (this.stick ? this.reveal(this.view.length - 1, true) : this.paint())).observe(this.scroller);
  }

  /** Show `view` (entry indexes of `mach`), with entry `selected` highlighted. */
  set(session, mach, view, selected) {
    this.session = session;
    this.mach = mach;
    this.view = view;
    this.selected = selected;
    this.spacer.style.height = `${view.length * ROW}px`;
    this.paint();
  }

  /** Scroll so that view position `pos` is visible (`end`: align it to the bottom). */
  reveal(pos, end = false) {
    const top = pos * ROW;
    const s = this.scroller;
    if (pos < 0) return;
    if (end) s.scrollTop = Math.max(0, top + ROW - s.clientHeight);
    else if (top < s.scrollTop) s.scrollTop = top;
    else if (top + ROW > s.scrollTop + s.clientHeight) s.scrollTop = top + ROW - s.clientHeight;
  }

  paint() {
    const s = this.scroller;
    const n = this.view.length;
    const first = Math.max(0, Math.floor(s.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(n, Math.ceil((s.scrollTop + s.clientHeight) / ROW) + OVERSCAN);
    const needed = Math.max(0, last - first);
    while (this.rows.length < needed) {
      const row = h("div.tl-row", { role: "option" });
      this.rows.push(row);
      s.append(row);
    }
    for (let k = 0; k < this.rows.length; k++) {
      const row = this.rows[k];
      const pos = first + k;
      if (k >= needed) {
        row.hidden = true;
        continue;
      }
      row.hidden = false;
      const i = this.view[pos];
      row.style.transform = `translateY(${pos * ROW}px)`;
      const entry = this.mach.entries[i];
      if (row.dataset.key !== `${this.mach.id}:${i}`) {
        row.dataset.key = `${this.mach.id}:${i}`;
        row.dataset.i = String(i);
        fillRow(row, entry, this.session);
      }
      const sel = i === this.selected;
      row.classList.toggle("selected", sel);
      row.setAttribute("aria-selected", String(sel));
    }
  }
}

function fillRow(row, e, session) {
  row.className = "tl-row";
  row.replaceChildren();
  const num = h("span.tl-num", {}, count(e.i + 1));
  const time = h("span.tl-time", {}, clockTime(e.t));
  if (e.kind === "dropped") {
    row.classList.add("gap");
    row.append(num, time, h("span.tl-main", {}, `${count(e.count)} transitions dropped by the stream`));
    return;
  }
  if (e.kind === "schema") {
    row.classList.add("note");
    const text = e.changed ? `schema changed: ${e.names.length} states` : "reconnected";
    row.append(num, time, h("span.tl-main", {}, text));
    return;
  }
  if (e.kind === "dispose") {
    row.classList.add("note");
    row.append(num, time, h("span.tl-main", {}, "disposed"));
    return;
  }
  row.classList.add(`t-${e.type}`);
  if (!e.accepted) row.classList.add("canceled");
  if (e.error || e.called.includes("Exception")) row.classList.add("error");
  const label = h("span.tl-main", {}, h("span.tl-sign", {}, { add: "+", remove: "−", set: "=" }[e.type]), e.called.join(" "));
  const badges = h("span.tl-badges");
  if (e.auto) badges.append(h("span.badge.auto", { title: "auto transition" }, "auto"));
  if (e.source) {
    const cause = session?.cause(e);
    const other = cause ? cause.mach.id !== e.id : Boolean(e.source.tab || e.source.client);
    if (other) badges.append(h("span.badge.link", { title: "caused by another machine" }, "↖"));
  }
  if (!e.accepted) badges.append(h("span.badge.cancel", { title: e.canceled_by ? `canceled by ${e.canceled_by}` : "canceled" }, "✕"));
  const delta = h("span.tl-delta");
  for (const [state, tick] of Object.entries(e.ticks)) {
    delta.append(h(`span.${tick % 2 ? "plus" : "minus"}`, {}, (tick % 2 ? "+" : "−") + state));
  }
  row.title = `${mutationLabel(e)}${e.accepted ? "" : " (canceled)"}`;
  row.append(num, time, label, delta, badges);
}
