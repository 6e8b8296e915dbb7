// A goal's criteria form, generated from its goal type's JSON Schema (GET /goal-types).
//
// A property becomes a checkbox (boolean), a decimal input (number), or a text input; one
// marked `x-catalog` becomes a catalog picker (GET /catalog?kind=&q=), a stage's picker
// filtered by the pipeline its `x-catalog-parent` names. Validation mirrors the schema
// (required, pattern, length, minimum) and R1's rule: at least one criterion.
import { call } from "./api.js";
import { h, uid } from "./dom.js";

const KIND_NAMES = {
  tag: "tag",
  form: "form",
  pipeline: "pipeline",
  pipeline_stage: "stage",
  product: "product",
  calendar: "calendar",
  service: "service",
};

function baseType(prop) {
  if (prop.type) return { type: prop.type, ...prop };
  const options = (prop.anyOf ?? []).filter((o) => o.type !== "null");
  const numeric = options.find((o) => o.type === "number");
  return { ...prop, ...(numeric ?? options[0] ?? { type: "string" }) };
}

export function criteriaForm(schema, criteria, onChange) {
  const required = new Set(schema.required ?? []);
  const controls = {};
  const rows = Object.entries(schema.properties ?? {}).map(([name, raw]) => {
    const prop = baseType(raw);
    const id = uid(`c-${name}`);
    const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    let control;
    let row;
    const label = `${prop.title ?? name}${required.has(name) ? " (required)" : ""}`;
    if (prop.type === "boolean") {
      control = h("input", { type: "checkbox", id, name, checked: criteria[name] === true });
      row = h("div", { class: "field check" }, control, h("label", { for: id }, label), error);
    } else {
      control = h("input", {
        type: "text",
        id,
        name,
        value: criteria[name] ?? "",
        autocomplete: "off",
        inputmode: prop.type === "number" ? "decimal" : null,
        "aria-describedby": error.id,
      });
      const extra = raw["x-catalog"] ? picker(control, raw, controls) : null;
      row = h("div", { class: "field" }, h("label", { for: id }, label), control, extra, error);
    }
    control.addEventListener(prop.type === "boolean" ? "change" : "input", () => onChange(values()));
    control.addEventListener("blur", () => validateOne(name));
    controls[name] = { control, prop, error, required: required.has(name) };
    return row;
  });

  function values() {
    const out = {};
    for (const [name, { control, prop }] of Object.entries(controls)) {
      if (prop.type === "boolean") {
        if (control.checked) out[name] = true;
      } else if (control.value.trim() !== "") {
        out[name] = control.value.trim();
      }
    }
    return out;
  }

  function problemOf(name) {
    const { control, prop, required: needed } = controls[name];
    if (prop.type === "boolean") return null;
    const value = control.value.trim();
    const title = prop.title ?? name;
    if (!value) return needed ? `${title} is required` : null;
    if (prop.type === "number") {
      if (!/^\d+(\.\d+)?$/.test(value)) return `${title} must be a decimal number such as 49.99`;
      if (prop.minimum !== undefined && Number(value) < prop.minimum) return `${title} must be at least ${prop.minimum}`;
      return null;
    }
    if (prop.minLength && value.length < prop.minLength) return `${title} is too short`;
    if (prop.maxLength && value.length > prop.maxLength) return `${title} may have at most ${prop.maxLength} characters`;
    if (prop.pattern && !new RegExp(prop.pattern, "u").test(value)) {
      return name === "currency" ? `${title} is a three-letter ISO 4217 code such as USD` : `${title} has characters it may not have`;
    }
    return null;
  }

  function validateOne(name) {
    const problem = problemOf(name);
    const { control, error } = controls[name];
    error.textContent = problem ?? "";
    error.hidden = !problem;
    if (problem) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
    return problem;
  }

  // Every problem of the form; focuses nothing (the editor decides).
  function validate() {
    const problems = Object.keys(controls).map(validateOne).filter(Boolean);
    if (Object.keys(values()).length === 0) problems.push("At least one criterion is required");
    return problems;
  }

  function firstInvalid() {
    return Object.values(controls).find(({ control }) => control.getAttribute("aria-invalid") === "true")?.control;
  }

  return { element: h("div", { class: "criteria" }, rows), values, validate, firstInvalid };
}

// A text input backed by a <datalist> of the catalog entities matching what is typed,
// and a line saying what the id names (or that the catalog does not hold it: R13).
function picker(control, raw, controls) {
  const kind = raw["x-catalog"];
  const list = h("datalist", { id: uid("catalog") });
  const named = h("p", { class: "hint", "aria-live": "polite" });
  control.setAttribute("list", list.id);
  control.setAttribute("aria-describedby", `${control.getAttribute("aria-describedby")} ${named.id ||= uid("named")}`);
  let debounce = null;
  let seen = new Map();
  const parentValue = () => controls[raw["x-catalog-parent"]]?.control.value.trim() || null;

  async function search() {
    const parent = raw["x-catalog-parent"] ? parentValue() : null;
    const page = await call("catalog", {
      query: { kind, q: control.value.trim() || null, parent_id: parent, limit: 20 },
    }).catch(() => null);
    if (!page) return;
    seen = new Map(page.entities.map((e) => [e.entity_id, e]));
    list.replaceChildren(...page.entities.map((e) => h("option", { value: e.entity_id, label: `${e.name} (${e.entity_id})` })));
    describe();
  }

  async function describe() {
    const value = control.value.trim();
    if (!value) {
      named.textContent = `Type to search the ${KIND_NAMES[kind]}s in the catalog.`;
      return;
    }
    let entity = seen.get(value);
    if (!entity) {
      const page = await call("catalog", { query: { kind, q: value, limit: 20 } }).catch(() => null);
      entity = page?.entities.find((e) => e.entity_id === value);
    }
    if (control.value.trim() !== value) return;
    named.textContent = entity ? `${entity.name}` : `The catalog holds no ${KIND_NAMES[kind]} with this id (yet).`;
    named.classList.toggle("warn", !entity);
  }

  control.addEventListener("focus", search, { once: true });
  control.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(search, 200);
  });
  describe();
  return [list, named];
}
