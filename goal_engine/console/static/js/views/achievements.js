// The achievement log (which event met which goal, newest first) and an enrollment's status.
import { call, loadGoalTypes, wf } from "../api.js";
import { h, replace, when, whileVisible } from "../dom.js";
import { cursorPager, json } from "../pager.js";
import { workflowHeader } from "./workflow-nav.js";

const PAGE = 20;
const REFRESH_MS = 5000;

export async function achievementsView(main, workflowId) {
  const titles = Object.fromEntries((await loadGoalTypes()).map((t) => [t.goal_type, t.title]));
  const table = h("div", { class: "table-wrap" });
  const problem = h("p", { class: "error", role: "alert", hidden: true });

  const pager = cursorPager(async (cursor) => {
    try {
      const page = await call(`${wf(workflowId)}/goals/achievements`, { query: { limit: PAGE, cursor } });
      problem.hidden = true;
      replace(table, page.achievements.length ? render(page.achievements) : h("p", { class: "muted" }, "No achievements yet."));
      return page.next_cursor;
    } catch (exc) {
      if (exc.status !== 401) {
        problem.textContent = exc.status === 404 ? "No such workflow: nothing configured or enrolled yet." : exc.message;
        problem.hidden = false;
      }
      return null;
    }
  });

  function render(rows) {
    return h(
      "table",
      { class: "data", "aria-label": "Achievements" },
      h("thead", {}, h("tr", {}, ["Achieved at", "Contact", "Enrollment", "Goal", "Trigger event"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        rows.map((a) =>
          h(
            "tr",
            {},
            h("td", {}, when(a.achieved_at)),
            h("td", {}, a.contact_id),
            h("td", {}, a.workflow_enrollment_id),
            h("td", {}, titles[a.goal_type] ?? a.goal_type),
            h(
              "td",
              { class: "trigger" },
              h("strong", {}, a.trigger_event.type),
              h("span", { class: "muted small" }, ` ${a.trigger_event.id} at ${when(a.trigger_event.time)}`),
              json(a.trigger_event.data),
            ),
          ),
        ),
      ),
    );
  }

  const enrollmentInput = h("input", { id: "en-id", required: true, autocomplete: "off", placeholder: "en-1" });
  const enrollmentOut = h("div", { "aria-live": "polite" });
  const lookup = h(
    "form",
    {
      class: "inline",
      onsubmit: async (event) => {
        event.preventDefault();
        const id = enrollmentInput.value.trim();
        if (!id) return;
        try {
          const e = await call(`${wf(workflowId)}/enrollments/${encodeURIComponent(id)}`);
          replace(
            enrollmentOut,
            h(
              "dl",
              { class: "facts", "aria-label": `Enrollment ${id}` },
              h("dt", {}, "Status"), h("dd", {}, h("span", { class: `badge ${e.status}` }, e.status)),
              h("dt", {}, "Contact"), h("dd", {}, e.contact_id),
              h("dt", {}, "Enrolled"), h("dd", {}, when(e.enrolled_at)),
              h("dt", {}, "Ended"), h("dd", {}, when(e.ended_at)),
              h("dt", {}, "Goals met"), h("dd", {}, (e.goal_config_ids ?? []).join(", ") || "–"),
            ),
          );
        } catch (exc) {
          if (exc.status === 401) return;
          replace(enrollmentOut, h("p", { class: "error" }, exc.status === 404 ? `No enrollment ${id} in this workflow.` : exc.message));
        }
      },
    },
    h("div", { class: "field" }, h("label", { for: "en-id" }, "Enrollment id"), enrollmentInput),
    h("button", { type: "submit" }, "Look up"),
  );

  replace(
    main,
    workflowHeader(workflowId, "/achievements"),
    h("h2", {}, "Achievement log"),
    h("p", { class: "muted small" }, "Newest first; the first page refreshes while this tab is visible."),
    problem,
    table,
    pager.element,
    h("h2", {}, "Enrollment status"),
    lookup,
    enrollmentOut,
  );
  await pager.show();
  return whileVisible(REFRESH_MS, () => pager.onFirstPage() && pager.show());
}
