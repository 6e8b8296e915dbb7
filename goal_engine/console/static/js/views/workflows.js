// The tenant's workflows: conversion, achieved, enrolled and status; sorted, searchable, paged.
import { call } from "../api.js";
import { h, number, percent, replace } from "../dom.js";

const PAGE = 25;
const COLUMNS = [
  ["workflow_id", "Workflow", "asc"],
  ["status", "Status", "asc"],
  ["total_enrolled", "Enrolled", "desc"],
  ["goals_achieved", "Achieved", "desc"],
  ["conversion_rate", "Conversion", "desc"],
];
const state = { q: "", sort: "conversion_rate", order: "desc", offset: 0 };

export async function workflowsView(main) {
  const search = h("input", { type: "search", id: "wf-search", value: state.q, autocomplete: "off" });
  const table = h("div", { class: "table-wrap" });
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  const pager = h("div", { class: "pager" });
  const openId = h("input", { id: "wf-open", required: true, autocomplete: "off", placeholder: "wf-onboarding" });

  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      state.q = search.value.trim();
      state.offset = 0;
      load();
    }, 250);
  });

  async function load() {
    const page = await call("workflows", {
      query: { q: state.q, sort: state.sort, order: state.order, limit: PAGE, offset: state.offset },
    });
    summary.textContent =
      page.total === 0
        ? state.q
          ? `No workflow matches “${state.q}”.`
          : "No workflows yet: open one by id below to add its first goal."
        : `${page.total} workflow${page.total === 1 ? "" : "s"}` +
          (page.total > PAGE ? `, ${state.offset + 1}–${state.offset + page.workflows.length} shown` : "");
    replace(table, page.workflows.length ? renderTable(page.workflows) : null);
    replace(
      pager,
      h("button", { type: "button", disabled: state.offset === 0, onclick: () => move(-PAGE) }, "Previous"),
      h("button", { type: "button", disabled: page.next_offset === null, onclick: () => move(PAGE) }, "Next"),
    );
  }

  function move(delta) {
    state.offset = Math.max(0, state.offset + delta);
    load();
  }

  function sortBy(column, first) {
    if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
    else [state.sort, state.order] = [column, first];
    state.offset = 0;
    load().then(() => table.querySelector(`button[data-sort="${column}"]`)?.focus());
  }

  function renderTable(rows) {
    const head = COLUMNS.map(([key, label, first]) => {
      const sorted = state.sort === key;
      return h(
        "th",
        {
          scope: "col",
          class: first === "desc" ? "num" : null,
          "aria-sort": sorted ? (state.order === "asc" ? "ascending" : "descending") : "none",
        },
        h(
          "button",
          { type: "button", class: "sort", "data-sort": key, onclick: () => sortBy(key, first) },
          label,
          h("span", { "aria-hidden": "true" }, sorted ? (state.order === "asc" ? " ▲" : " ▼") : ""),
        ),
      );
    });
    return h(
      "table",
      { class: "data", "aria-label": "Workflows" },
      h("thead", {}, h("tr", {}, head, h("th", { scope: "col", class: "num" }, "Goals"))),
      h(
        "tbody",
        {},
        rows.map((w) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: `#/workflows/${encodeURIComponent(w.workflow_id)}` }, w.workflow_id)),
            h("td", {}, h("span", { class: `badge ${w.status}` }, w.status === "active" ? "Active" : "Inactive")),
            h("td", { class: "num" }, number(w.total_enrolled)),
            h("td", { class: "num" }, number(w.goals_achieved)),
            h("td", { class: "num" }, percent(w.conversion_rate)),
            h("td", { class: "num" }, `${w.goals} / 3`),
          ),
        ),
      ),
    );
  }

  replace(
    main,
    h("h1", {}, "Workflows"),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "wf-search" }, "Search workflows"), search),
      h(
        "form",
        {
          class: "inline",
          onsubmit: (event) => {
            event.preventDefault();
            const id = openId.value.trim();
            if (id) location.hash = `#/workflows/${encodeURIComponent(id)}`;
          },
        },
        h("div", { class: "field" }, h("label", { for: "wf-open" }, "Open or create a workflow by id"), openId),
        h("button", { type: "submit" }, "Open"),
      ),
    ),
    summary,
    table,
    pager,
  );
  await load();
}
