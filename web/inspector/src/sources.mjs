// Where the inspector's lines come from: a live am-dbg (WebSocket), or a session file.

/** Split JSON lines into messages; bad lines are reported, the rest kept. */
export function parseLines(text, errors, source = "") {
  try {
    // one parse for the whole batch is much faster than one per line (lines have no raw "\n")
    const all = JSON.parse(`[${text.trim().replaceAll("\n", ",")}]`);
    if (all.every((msg) => msg !== null && typeof msg === "object" && !Array.isArray(msg))) return all;
  } catch {
    // a bad line somewhere: find it below, keep the others
  }
  const out = [];
  let start = 0;
  let n = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    n++;
    if (end > start) {
      try {
        out.push(JSON.parse(text.slice(start, end)));
      } catch (err) {
        errors.push(`${source}line ${n}: ${err.message}`);
      }
    }
    start = end + 1;
  }
  return out;
}

/** The text of a session file (gzip or plain), from its bytes. */
export async function fileText(blob) {
  const head = new Uint8Array(await blob.slice(0, 2).arrayBuffer());
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const stream = blob.stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text();
  }
  return blob.text();
}

/** A session file's bytes, gzip-compressed. */
export async function gzipLines(lines) {
  const text = [...lines].join("\n") + "\n";
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).blob();
}

/** am-dbg's inspector feed, reconnecting (with a fresh copy of the session) when it drops. */
export class LiveFeed {
  constructor(url, { onReset, onLines, onState }) {
    this.url = url;
    this.onReset = onReset;
    this.onLines = onLines;
    this.onState = onState;
    this.ws = null;
    this.delay = 250;
    this.closed = false;
    this.synced = false;
  }

  open() {
    if (this.closed) return;
    this.onState("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let first = true;
    let pending = null; // live lines that arrive while the snapshot is fetched
    ws.onmessage = async (event) => {
      if (pending) {
        pending.push(event.data);
        return;
      }
      if (!first) {
        this.onLines(event.data, false);
        return;
      }
      first = false;
      this.synced = false;
      this.onReset();
      this.onLines(event.data, false); // {"kind": "server", "snapshot": ...}
      const { snapshot } = JSON.parse(event.data);
      pending = [];
      let text = "";
      try {
        const res = await fetch(new URL(snapshot, this.httpUrl()));
        text = res.ok ? await res.text() : "";
      } catch {
        ws.close(); // try again from the start
        return;
      }
      if (this.ws !== ws) return;
      for (const more of pending) text += `\n${more}`;
      pending = null;
      this.synced = true;
      this.delay = 250;
      this.onLines(text, true);
      this.onState("live");
    };
    ws.onclose = () => {
      if (this.ws !== ws || this.closed) return;
      this.onState("offline");
      setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 4000);
    };
  }

  /** The HTTP address next to the feed (where the snapshot and the export are). */
  httpUrl() {
    const url = new URL(this.url);
    url.protocol = url.protocol === "wss:" ? "https:" : "http:";
    url.pathname = url.pathname.replace(/ui$/, "");
    return url;
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  close() {
    this.closed = true;
    this.ws?.close();
  }
}

/** The feed's URL next to the page (`./ui`), or the one given as `?dbg=`. */
export function feedUrl(location) {
  const params = new URLSearchParams(location.search);
  const given = params.get("dbg");
  if (given) {
    const url = new URL(given, location.href);
    if (url.protocol.startsWith("http")) url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/ui";
    return url.href;
  }
  const url = new URL("ui", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/** True when the page is served by am-dbg (which marks it), not copied as a static file. */
export function servedByAmDbg(document) {
  return document.querySelector('meta[name="am-dbg"]')?.content === "live";
}
