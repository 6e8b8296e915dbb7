// The analytics series as an SVG bar chart (enrolled and achieved per bucket), with the
// same numbers in a table for screen readers and keyboard users.
import { h, number, percent } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const STEP = { hour: 3600e3, day: 86400e3 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

// Every bucket start in [from, to), as the API truncates them (UTC; weeks start on Monday).
export function bucketStarts(from, to, interval) {
  const start = new Date(from);
  start.setUTCMinutes(0, 0, 0);
  if (interval !== "hour") start.setUTCHours(0);
  if (interval === "week") start.setUTCDate(start.getUTCDate() - ((start.getUTCDay() + 6) % 7));
  const out = [];
  for (let t = start.getTime(); t < to.getTime() && out.length < 2000; ) {
    out.push(new Date(t));
    t = interval === "week" ? t + 7 * STEP.day : t + STEP[interval];
  }
  return out;
}

function label(date, interval) {
  return interval === "hour"
    ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}

export function seriesChart(series, { from, to, interval }) {
  const byStart = new Map(series.map((b) => [new Date(b.start).getTime(), b]));
  const buckets = bucketStarts(from, to, interval).map(
    (start) => byStart.get(start.getTime()) ?? { start: start.toISOString(), enrolled: 0, achieved: 0, conversion_rate: 0 },
  );
  const enrolled = buckets.reduce((a, b) => a + b.enrolled, 0);
  const achieved = buckets.reduce((a, b) => a + b.achieved, 0);
  const top = Math.max(1, ...buckets.map((b) => Math.max(b.enrolled, b.achieved)));
  const [W, H, left, bottom] = [960, 240, 36, 24];
  const slot = (W - left) / Math.max(1, buckets.length);
  const y = (v) => H - bottom - ((H - bottom - 8) * v) / top;
  const every = Math.ceil(buckets.length / 8);
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `Enrolled and achieved per ${interval}: ${number(enrolled)} enrolled, ${number(achieved)} achieved in the window` },
    s("line", { x1: left, x2: W, y1: y(0), y2: y(0), class: "axis" }),
    s("text", { x: left - 6, y: y(top) + 4, class: "tick", "text-anchor": "end" }, String(top)),
    s("text", { x: left - 6, y: y(0) + 4, class: "tick", "text-anchor": "end" }, "0"),
    ...buckets.flatMap((b, i) => {
      const x = left + i * slot;
      const w = Math.max(1, slot / 2 - 1);
      const date = new Date(b.start);
      const title = `${label(date, interval)}: ${b.enrolled} enrolled, ${b.achieved} achieved`;
      return [
        s("rect", { x: x + 1, y: y(b.enrolled), width: w, height: y(0) - y(b.enrolled), class: "bar enrolled" }, s("title", {}, title)),
        s("rect", { x: x + 1 + w, y: y(b.achieved), width: w, height: y(0) - y(b.achieved), class: "bar achieved" }, s("title", {}, title)),
        i % every === 0 ? s("text", { x: x + slot / 2, y: H - 6, class: "tick", "text-anchor": "middle" }, label(date, interval)) : "",
      ];
    }),
  );
  const rows = buckets.filter((b) => b.enrolled || b.achieved);
  return h(
    "figure",
    { class: "chart-box" },
    h("div", { class: "chart-scroll" }, svg),
    h(
      "figcaption",
      {},
      h("span", { class: "key enrolled" }, "Enrolled"),
      h("span", { class: "key achieved" }, "Achieved"),
      ` ${number(enrolled)} enrolled, ${number(achieved)} achieved in the window.`,
    ),
    h(
      "details",
      {},
      h("summary", {}, "Chart data as a table"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "data" },
          h("thead", {}, h("tr", {}, ["Bucket start", "Enrolled", "Achieved", "Conversion"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            rows.length
              ? rows.map((b) => h("tr", {}, h("td", {}, new Date(b.start).toLocaleString()), h("td", { class: "num" }, b.enrolled), h("td", { class: "num" }, b.achieved), h("td", { class: "num" }, percent(b.conversion_rate))))
              : h("tr", {}, h("td", { colspan: 4 }, "Nothing in this window.")),
          ),
        ),
      ),
    ),
  );
}
