// The React app of test_js_api.py, bundled by esbuild: a component that counts its renders.
import { createElement as h } from "react";
import { flushSync } from "react-dom";
import { createRoot } from "react-dom/client";
import { useMachine } from "../../web/react.mjs";

export async function mount(machine, states) {
  let renders = 0;
  function Status() {
    renders++;
    const { active } = useMachine(machine, states);
    return h("p", { id: "react-status" }, active.join(",") || "idle");
  }
  const node = document.body.appendChild(document.createElement("div"));
  const root = createRoot(node);
  flushSync(() => root.render(h(Status)));
  return {
    renders: () => renders,
    text: () => node.textContent,
    unmount: () => {
      flushSync(() => root.unmount());
      node.remove();
    },
  };
}
