// The heading and tabs every screen of one workflow shares.
import { h } from "../dom.js";

const TABS = [
  ["", "Goals"],
  ["/analytics", "Analytics"],
  ["/achievements", "Achievements"],
];

export function workflowHeader(workflowId, current, ...extra) {
  const base = `#/workflows/${encodeURIComponent(workflowId)}`;
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/workflows" }, "Workflows"), " / "),
    h("div", { class: "title-row" }, h("h1", {}, workflowId), ...extra),
    h(
      "nav",
      { class: "tabs", "aria-label": "Workflow" },
      TABS.map(([suffix, label]) =>
        h("a", { href: base + suffix, "aria-current": suffix === current ? "page" : null }, label),
      ),
    ),
  ];
}
