// The upload page's logic in TypeScript: `tsc --noEmit -p examples/ts` (part of `make test`)
// checks it against the bridge's types. upload_states.ts is generated:
//   am-gen --ts --name Upload --states "Selected,Uploading:require(Selected) remove(Done),Done" \
//       -o examples/ts/upload_states.ts
import { loadAsyncmachine, type AsyncMachine } from "../../web/asyncmachine.mjs";
import { persist } from "../../web/persist.mjs";
import { UploadSchema, UploadStates, type UploadState } from "./upload_states.js";

export async function main(): Promise<AsyncMachine<UploadState>> {
  const am = await loadAsyncmachine({ indexURL: "/pyodide/" });

  // the state names come from the const schema: a typo does not compile
  const inline = am.machine({ Idle: {}, Busy: { remove: ["Idle"] } } as const);
  inline.add1("Busy");
  // @ts-expect-error -- "Bussy" is not a state of this machine
  inline.add1("Bussy");
  inline.dispose();

  const upload: AsyncMachine<UploadState> = am.machine(UploadSchema, { id: "upload" });
  const stop = persist(upload, "upload");
  upload.bind({
    UploadingEnter: (e) => e.args.file !== undefined,
    async UploadingState(e) {
      // e.signal aborts when Uploading deactivates: the request is dropped with it
      const response = await fetch("/upload", { method: "POST", signal: e.signal });
      if (!response.ok) throw new Error(`upload failed: ${response.status}`);
      e.machine.add1(UploadStates.Done);
    },
  });
  upload.add1("Selected");
  upload.add1("Uploading", { file: "report.pdf" });
  try {
    await upload.when1("Done", { timeout: 30_000 });
  } catch (err) {
    if (err instanceof DOMException && err.name === "TimeoutError") upload.addErr(err);
  }
  const why = upload.explainAdd1("Uploading");
  if (!(why instanceof Promise)) console.log(why.canceledBy, why.rejected);
  const store = upload.store(["Uploading", "Done"]);
  const active: readonly UploadState[] = store.getSnapshot().active;
  console.log(active);
  stop();
  return upload;
}
