// Newest-first pages behind opaque cursors: "Newer" goes back along the cursors seen.
import { h, replace } from "./dom.js";

export function cursorPager(load) {
  const trail = [null]; // the cursor of each page seen; the last is the current page
  const el = h("div", { class: "pager" });
  let next = null;

  async function show() {
    next = await load(trail.at(-1));
    replace(
      el,
      h("button", { type: "button", disabled: trail.length === 1, onclick: () => go(-1) }, "Newer"),
      h("span", { class: "muted small" }, `Page ${trail.length}`),
      h("button", { type: "button", disabled: !next, onclick: () => go(1) }, "Older"),
    );
  }

  function go(step) {
    if (step > 0 && next) trail.push(next);
    if (step < 0 && trail.length > 1) trail.pop();
    return show();
  }

  return { element: el, show, onFirstPage: () => trail.length === 1 };
}

export function json(value) {
  return value === null || value === undefined ? h("span", { class: "muted" }, "–") : h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}
