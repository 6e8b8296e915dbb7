// Analytics (R12): conversion, goals achieved, enrolled, time to goal (average, p50/p90/p99)
// overall and per goal type, and the series over a window; refreshed while the tab is visible.
import { call, loadGoalTypes, wf } from "../api.js";
import { h, hours, number, percent, replace, whileVisible } from "../dom.js";
import { seriesChart } from "../chart.js";
import { workflowHeader } from "./workflow-nav.js";

const REFRESH_MS = 5000;
const WINDOWS = { "24h": [24, "hour"], "7d": [24 * 7, "day"], "30d": [24 * 30, "day"] };
const choice = { window: "24h", interval: "hour", from: "", to: "" };

function figure(name, value, note) {
  const id = `fig-${name.toLowerCase().replace(/\W+/g, "-")}`;
  return h(
    "section",
    { class: "figure", "aria-labelledby": id },
    h("h2", { id }, name),
    h("p", { class: "value" }, value),
    note ? h("p", { class: "muted small" }, note) : null,
  );
}

// The last n whole hours, through the current one (the API counts whole hours).
function lastHours(n) {
  const end = new Date();
  end.setMinutes(0, 0, 0);
  end.setTime(end.getTime() + 3600e3);
  return [new Date(end.getTime() - n * 3600e3), end];
}

function localInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
}

export async function analyticsView(main, workflowId) {
  const titles = Object.fromEntries((await loadGoalTypes()).map((t) => [t.goal_type, t.title]));
  const figures = h("div", { class: "figures" });
  const timing = h("div", { class: "table-wrap" });
  const timingNote = h("p", { class: "muted small" });
  const chart = h("div");
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const updated = h("p", { class: "muted small" });

  const windowSelect = h(
    "select",
    { id: "an-window" },
    h("option", { value: "24h" }, "Last 24 hours"),
    h("option", { value: "7d" }, "Last 7 days"),
    h("option", { value: "30d" }, "Last 30 days"),
    h("option", { value: "custom" }, "Custom"),
  );
  const intervalSelect = h(
    "select",
    { id: "an-interval" },
    h("option", { value: "hour" }, "Hour"),
    h("option", { value: "day" }, "Day"),
    h("option", { value: "week" }, "Week"),
  );
  const fromInput = h("input", { type: "datetime-local", id: "an-from" });
  const toInput = h("input", { type: "datetime-local", id: "an-to" });
  const custom = h(
    "div",
    { class: "custom-range" },
    h("div", { class: "field" }, h("label", { for: "an-from" }, "From"), fromInput),
    h("div", { class: "field" }, h("label", { for: "an-to" }, "To"), toInput),
  );
  windowSelect.value = choice.window;
  intervalSelect.value = choice.interval;

  function range() {
    if (choice.window === "custom") return [new Date(fromInput.value), new Date(toInput.value)];
    return lastHours(WINDOWS[choice.window][0]);
  }

  function onWindow() {
    choice.window = windowSelect.value;
    custom.hidden = choice.window !== "custom";
    if (choice.window === "custom") {
      const [from, to] = lastHours(WINDOWS["7d"][0]);
      fromInput.value ||= localInput(from);
      toInput.value ||= localInput(to);
    } else {
      intervalSelect.value = choice.interval = WINDOWS[choice.window][1];
    }
    refresh();
  }
  windowSelect.addEventListener("change", onWindow);
  intervalSelect.addEventListener("change", () => {
    choice.interval = intervalSelect.value;
    refresh();
  });
  fromInput.addEventListener("change", refresh);
  toInput.addEventListener("change", refresh);
  custom.hidden = choice.window !== "custom";

  let latest = 0; // answers of an earlier choice that arrive late are dropped
  async function refresh() {
    const asked = ++latest;
    const [from, to] = range();
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) {
      problem.textContent = "Choose a start before the end.";
      problem.hidden = false;
      return;
    }
    try {
      const [all, windowed] = await Promise.all([
        call(`${wf(workflowId)}/goals/stats`),
        call(`${wf(workflowId)}/goals/stats`, {
          query: { from: from.toISOString(), to: to.toISOString(), interval: choice.interval },
        }),
      ]);
      if (asked !== latest) return;
      problem.hidden = true;
      render(all, windowed, { from, to, interval: choice.interval });
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s while this tab is visible.`;
    } catch (exc) {
      if (exc.status === 401 || asked !== latest) return;
      problem.textContent = exc.status === 404 ? "No such workflow: nothing configured or enrolled yet." : exc.message;
      problem.hidden = false;
    }
  }

  function render(all, windowed, range) {
    replace(
      figures,
      figure("Conversion rate", percent(all.conversion_rate), "of the enrollments exited on a goal"),
      figure("Goals achieved", number(all.goals_achieved), "enrollments that exited on a goal"),
      figure("Total enrolled", number(all.total_enrolled)),
      figure("Average time to goal", hours(all.avg_time_to_goal_hours), "enrollment to exit"),
    );
    const row = (name, s) =>
      h(
        "tr",
        {},
        h("th", { scope: "row" }, name),
        h("td", { class: "num" }, number(s.achieved)),
        h("td", { class: "num" }, percent(s.conversion_rate)),
        h("td", { class: "num" }, hours(s.avg_time_to_goal_hours)),
        ["p50", "p90", "p99"].map((p) => h("td", { class: "num" }, hours(s.time_to_goal_hours[p]))),
      );
    const error = Math.round(all.time_to_goal_hours.relative_error * 1000) / 10;
    timingNote.textContent = `All time; the percentiles are within ${error} % of the exact value.`;
    replace(
      timing,
      h(
        "table",
        { class: "data", "aria-labelledby": "time-to-goal" },
        h("thead", {}, h("tr", {}, ["Goal", "Achieved", "Conversion", "Average", "p50", "p90", "p99"].map((t, i) => h("th", { scope: "col", class: i ? "num" : null }, t)))),
        h(
          "tbody",
          {},
          row("All goals", { ...all, achieved: all.goals_achieved }),
          Object.entries(all.by_goal_type).map(([type, s]) => row(titles[type] ?? type, s)),
        ),
      ),
    );
    replace(chart, seriesChart(windowed.series, range));
  }

  replace(
    main,
    workflowHeader(workflowId, "/analytics"),
    h("h2", { class: "sr-only" }, "All time"),
    figures,
    h("h2", { id: "time-to-goal" }, "Time to goal"),
    timingNote,
    timing,
    h("h2", {}, "Over time"),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "an-window" }, "Window"), windowSelect),
      h("div", { class: "field" }, h("label", { for: "an-interval" }, "Bucket"), intervalSelect),
      custom,
    ),
    problem,
    chart,
    updated,
  );
  await refresh();
  return whileVisible(REFRESH_MS, refresh);
}
