// The upload in local mode: handlers of the page's machine, with a timer in place of a network.
// server.py runs the same upload in Python for remote mode.

export const LIMIT = 20 * 2 ** 20;
const CHUNKS = 20;
const CHUNK_MS = 150;

/** Files to try: each shows a different path through the machine. */
export const SAMPLES = [
  { name: "report.pdf", size: 2_516_582, note: "uploads" },
  { name: "photos.zip", size: 9_017_753, flaky: true, note: "the connection drops once" },
  { name: "notes.txt", size: 0, note: "empty: refused" },
  { name: "holiday.mov", size: 50_331_648, note: "over the 20 MB limit: refused" },
];

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} bytes`;
  return bytes < 2 ** 20 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** The `file` arg of `Selected`: a name and a size (the bytes are never read). */
export function isFile(file) {
  return typeof file?.name === "string" && file.name.length > 0 && Number.isInteger(file.size) && file.size >= 0;
}

function refusal(file) {
  if (!file) return "no file selected";
  if (file.size === 0) return `${file.name} is empty`;
  if (file.size > LIMIT) return `${file.name} is ${formatSize(file.size)}, over the ${LIMIT / 2 ** 20} MB limit`;
  return null;
}

/** Negotiation (`...Enter`) guards the upload; `UploadingState` starts it, `UploadingEnd` stops it. */
export class Uploader {
  #changed;
  #report;
  #timer = null;

  /** `changed()` after the file or its progress changed; `report(line)` adds a line to the log. */
  constructor(changed, report) {
    this.file = null;
    this.sent = 0;
    this.dropped = false; // the flaky file drops its connection once
    this.resume = false; // the network went away mid-upload: going online resumes it
    this.#changed = changed;
    this.#report = report;
  }

  status() {
    return { file: this.file, sent: this.sent };
  }

  SelectedEnter(e) {
    return isFile(e.args.file);
  }

  SelectedState(e) {
    const { name, size, flaky = false } = e.args.file;
    this.file = { name, size, flaky };
    this.sent = 0;
    this.dropped = this.resume = false;
    this.#changed();
    e.machine.add1("Uploading"); // uploads start on selection
  }

  UploadingEnter(e) {
    const reason = refusal(this.file);
    if (reason) e.machine.log(`refused: ${reason}`);
    return !reason;
  }

  UploadingState(e) {
    if (this.sent >= this.file.size) this.sent = 0;
    this.#timer = setInterval(() => this.#chunk(e.machine), CHUNK_MS);
  }

  UploadingEnd(e) {
    this.stop();
    this.resume = e.added.includes("Offline");
  }

  PausedEnter(e) {
    return e.statesBefore.includes("Uploading");
  }

  OnlineState(e) {
    if (!this.resume) return;
    this.resume = false;
    e.machine.add1("Uploading");
  }

  ExceptionState(e) {
    this.#report(`[error] ${e.machine.err()?.message}`);
  }

  /** Stop the timer (the machine is going away). */
  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
  }

  #chunk(machine) {
    const { size, flaky } = this.file;
    if (flaky && !this.dropped && this.sent >= size / 2) {
      this.dropped = true;
      machine.addErrState("ErrUpload", new Error(`connection reset at ${Math.floor((100 * this.sent) / size)}%`));
      return;
    }
    this.sent = Math.min(size, this.sent + Math.ceil(size / CHUNKS));
    machine.add1("Progress", { sent: this.sent });
    this.#changed();
    if (this.sent >= size) machine.add1("Done");
  }
}
