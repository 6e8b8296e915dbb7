// The audit trail: who changed what and when, before and after, and every achievement.
import { call } from "../api.js";
import { h, replace, when } from "../dom.js";
import { cursorPager, json } from "../pager.js";

const PAGE = 25;

// The top-level keys whose value differs: what a change changed, at a glance.
function changedKeys(before, after) {
  if (!before || !after || typeof before !== "object" || typeof after !== "object") return [];
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]) && k !== "updated_at");
}

export async function auditView(main) {
  const table = h("div", { class: "table-wrap" });
  const pager = cursorPager(async (cursor) => {
    const page = await call("audit", { query: { limit: PAGE, cursor } });
    replace(table, page.entries.length ? render(page.entries) : h("p", { class: "muted" }, "Nothing recorded yet."));
    return page.next_cursor;
  });

  function render(entries) {
    return h(
      "table",
      { class: "data", "aria-label": "Audit trail" },
      h("thead", {}, h("tr", {}, ["When", "Who", "What", "Before", "After"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        entries.map((e) => {
          const keys = changedKeys(e.before, e.after);
          return h(
            "tr",
            {},
            h("td", {}, when(e.at)),
            h("td", {}, e.actor),
            h(
              "td",
              {},
              h("strong", {}, e.action),
              h("div", { class: "muted small" }, `${e.entity_type} ${e.entity_id}`),
              keys.length ? h("div", { class: "small" }, `changed: ${keys.join(", ")}`) : null,
            ),
            h("td", {}, json(e.before)),
            h("td", {}, json(e.after)),
          );
        }),
      ),
    );
  }

  replace(
    main,
    h("h1", {}, "Audit trail"),
    h("p", { class: "muted" }, "Every configuration change of this tenant's workflows, and every achievement, newest first."),
    table,
    pager.element,
  );
  await pager.show();
}
