// One transition in full: result, cause and effects (links across machines), changes, the
// resolution steps, log lines, args and the error it carried.

import { clockTime, count, delta, h, shortId } from "./dom.mjs";
import { changes, mutationLabel } from "./model.mjs";

const LOG_LEVELS = ["", "external", "changes", "ops", "decisions", "everything"];

const REL_TEXT = {
  activate: "activates",
  keep: "keeps",
  deactivate: "removes",
  reject: "rejects",
  order: "runs before",
};

/** The detail view of `entry` (of machine `mach`); `go(tx)` jumps to another transition. */
export function renderDetail(session, mach, entry, go) {
  if (!entry) {
    return h("div.empty-detail", {}, h("p", {}, "No transition selected."), h("p.muted", {}, "Pick one in the timeline, or step with ← and →."));
  }
  if (entry.kind !== "tx") return renderNote(mach, entry);
  const { added, removed } = changes(mach, entry);
  const prev = mach.entries[entry.i - 1];
  const result = entry.accepted
    ? h("span.result.ok", {}, "accepted")
    : h("span.result.no", {}, entry.canceled_by ? `canceled by ${entry.canceled_by}` : "canceled");
  const head = h(
    "header.d-head",
    {},
    h("h2.d-title", {}, h(`span.sign.t-${entry.type}`, {}, { add: "+", remove: "−", set: "=" }[entry.type]), entry.called.join(" ")),
    result,
  );
  const meta = h(
    "dl.d-meta",
    {},
    item("Transition", h("code", { title: entry.tx }, shortId(entry.tx))),
    item("Step", `#${count(entry.i + 1)} of ${count(mach.entries.length)}`),
    item("Time", `${clockTime(entry.t)}${prev?.t ? ` (+${delta(entry.t - prev.t)})` : ""}`),
    item("Machine time", String(sum(mach.clockAt(entry.i)))),
    entry.qt != null && item("Queue", `tick ${entry.qt}${entry.queue ? `, ${entry.queue} waiting` : ""}`),
    entry.auto && item("Kind", "auto transition"),
  );
  const out = h("div.detail", {}, head, meta);

  const cause = session.cause(entry);
  const src = entry.source;
  if (src) {
    const body = [];
    if (cause) body.push(txLink(cause, go, cause.mach.id !== entry.id));
    else if (src.tx) body.push(h("span.muted", {}, `transition ${shortId(src.tx)} of ${src.mach} (not streamed)`));
    if (src.handler) body.push(h("span.via", {}, `raised in ${src.handler}`));
    const via = [src.client && `RPC client ${src.client}`, src.tab && `tab ${shortId(src.tab)}`].filter(Boolean);
    if (via.length) body.push(h("span.via", {}, `via ${via.join(", ")}`));
    if (src.meta && Object.keys(src.meta).length) body.push(h("span.muted", {}, Object.entries(src.meta).map(([k, v]) => `${k}=${v}`).join(" ")));
    out.append(section("Caused by", h("div.links", {}, body)));
  }
  const effects = session.effectsOf(entry);
  if (effects.length) {
    out.append(section(`Caused (${effects.length})`, h("div.links", {}, effects.slice(0, 50).map((e) => txLink(e, go, e.mach.id !== entry.id)))));
  }

  if (added.length || removed.length) {
    out.append(
      section(
        "Changes",
        h("div.chips.small", {}, added.map((s) => h("span.chip.added", {}, `+${s}`)), removed.map((s) => h("span.chip.removed", {}, `−${s}`))),
      ),
    );
  }
  if (entry.error) {
    out.append(section("Error", h("pre.error", {}, `${entry.error.type}: ${entry.error.message}`)));
  }
  // a handler that raised: the Exception transition it caused names it
  const raised = new Set(effects.filter((e) => e.source?.handler).map((e) => e.source.handler));
  if (entry.steps?.length) {
    const steps = entry.steps.map((s) => (s.kind === "handler" && raised.has(s.name) ? { ...s, outcome: "raised" } : s));
    out.append(section("Resolution", h("ol.steps", {}, steps.map(step))));
  }
  if (entry.args && Object.keys(entry.args).length) {
    out.append(section("Args", h("dl.args", {}, Object.entries(entry.args).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))));
  }
  if (entry.log?.length) {
    out.append(section("Log", h("ol.log", {}, entry.log.map(([level, line]) => h(`li.lvl-${level}`, { title: LOG_LEVELS[level] ?? "" }, line)))));
  }
  return out;
}

function renderNote(mach, entry) {
  let text = "The machine was disposed.";
  if (entry.kind === "dropped") {
    text = `The stream dropped ${count(entry.count)} transitions here (am-dbg was unreachable or too slow). The clock after them is exact.`;
  } else if (entry.kind === "schema") {
    text = entry.changed ? `The schema changed: ${entry.names.length} states.` : "The machine reconnected and re-sent its schema.";
  }
  return h("div.detail", {}, h("header.d-head", {}, h("h2.d-title", {}, entry.kind)), h("p", {}, text), h("p.muted", {}, clockTime(entry.t)));
}

function item(label, value) {
  return [h("dt", {}, label), h("dd", {}, value)];
}

function section(title, body) {
  return h("section.d-sec", {}, h("h3", {}, title), body);
}

function sum(clock) {
  let total = 0;
  for (const t of Object.values(clock)) total += t;
  return total;
}

function txLink(tx, go, other) {
  return h(
    "button.txlink",
    { type: "button", onclick: () => go(tx), title: `${tx.mach.id} · transition ${tx.tx}` },
    other ? h("span.mach", {}, tx.mach.id) : null,
    h("span.label", {}, mutationLabel(tx)),
    h("span.muted", {}, `#${count(tx.i + 1)}`),
  );
}

function step(s) {
  switch (s.kind) {
    case "rel":
      return h(
        `li.step.rel.rel-${s.rel}`,
        {},
        h("span.kind", {}, s.rel),
        h("span.st", {}, s.from),
        h("span.eff", {}, REL_TEXT[s.effect] ?? s.effect),
        h("span.st", {}, s.to),
      );
    case "handler":
      return h(`li.step.handler${s.outcome ? `.${s.outcome}` : ""}`, {}, h("span.kind", {}, "handler"), h("span.fn", {}, s.name), s.outcome ? h("span.outcome", {}, s.outcome) : null);
    case "cancel":
      return h("li.step.cancel", {}, h("span.kind", {}, "cancel"), s.by ? `by ${s.by}` : `by ${s.reason}`);
    default:
      return h(`li.step.${s.kind}`, {}, h("span.kind", {}, s.kind), h("span.st", {}, s.state));
  }
}
