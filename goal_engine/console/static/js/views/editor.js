// The goal editor (R1, R2, R11, R13): up to three goals, each a goal type and its criteria,
// the any/all logic, Save, Activate and Deactivate. Every problem is shown beside the goal
// it concerns: the form's own checks, a 409 or 422 of a save, each R13 violation of a 422 activation.
import { ApiError, call, loadGoalTypes, wf } from "../api.js";
import { h, replace, uid } from "../dom.js";
import { criteriaForm } from "../schemaform.js";
import { workflowHeader } from "./workflow-nav.js";

const MAX_GOALS = 3;
const VIOLATION = /^goal ([0-9a-f-]{36}) \(/;

export async function editorView(main, workflowId) {
  const goalTypes = await loadGoalTypes();
  const byType = Object.fromEntries(goalTypes.map((t) => [t.goal_type, t]));
  const model = { cards: [], logic: "any", savedLogic: "any", status: "inactive", live: true, exists: false };
  const status = h("span", { class: "badge" });
  const liveNote = h("span", { class: "muted small" });
  const message = h("div", { class: "message", role: "status" });
  const workflowErrors = h("ul", { class: "errors", "aria-label": "Problems with the workflow" });
  const cardsEl = h("div", { class: "goals" });
  const logic = h(
    "select",
    { id: "goal-logic", onchange: () => (model.logic = logic.value) },
    h("option", { value: "any" }, "Any goal: the first goal met exits"),
    h("option", { value: "all" }, "All goals: exit once every goal is met"),
  );
  const addButton = h("button", { type: "button", onclick: () => addCard() }, "Add goal");
  const addHint = h("p", { class: "hint", id: "add-goal-hint" });
  addButton.setAttribute("aria-describedby", addHint.id);
  const saveButton = h("button", { type: "submit", class: "primary" }, "Save");
  const activateButton = h("button", { type: "button", onclick: () => activate() }, "Activate");
  const deactivateButton = h("button", { type: "button", onclick: () => setStatus("deactivate") }, "Deactivate");

  async function load() {
    const [goals, settings] = await Promise.all([
      call(`${wf(workflowId)}/goals`).catch(notFound({ goals: [] })),
      call(`${wf(workflowId)}/goal-settings`).catch(notFound(null)),
    ]);
    model.exists = settings !== null;
    model.logic = model.savedLogic = settings?.logic ?? "any";
    model.status = settings?.status ?? "inactive";
    model.live = settings?.live ?? true;
    model.cards = goals.goals.map((g) => card(g));
  }

  function card(goal) {
    const saved = goal ? { goal_type: goal.goal_type, criteria: goal.criteria, is_active: goal.is_active } : null;
    return { key: uid("goal"), id: goal?.id ?? null, ...structuredClone(saved ?? { goal_type: "", criteria: {}, is_active: true }), saved, removed: false, errors: [] };
  }

  function visibleCards() {
    return model.cards.filter((c) => !c.removed);
  }

  function addCard() {
    const fresh = card(null);
    model.cards.push(fresh);
    renderCards();
    fresh.typeSelect.focus();
  }

  function renderCard(c, index) {
    const title = `Goal ${index + 1}`;
    const typeSelect = h(
      "select",
      { id: uid("goal-type"), required: true },
      h("option", { value: "" }, "Choose a goal type"),
      goalTypes.map((t) => h("option", { value: t.goal_type, selected: t.goal_type === c.goal_type }, t.title)),
    );
    const criteriaSlot = h("div");
    const errors = h("ul", { class: "errors", "aria-live": "polite", "aria-label": `Problems with ${title}` });
    const active = h("input", { type: "checkbox", id: uid("goal-active"), checked: c.is_active, onchange: () => (c.is_active = active.checked) });
    errors.tabIndex = -1; // focused to announce a failed save or activation
    c.typeSelect = typeSelect;
    c.errorList = errors;

    function renderCriteria() {
      c.form = c.goal_type ? criteriaForm(byType[c.goal_type].criteria_schema, c.criteria, (v) => (c.criteria = v)) : null;
      replace(
        criteriaSlot,
        c.form
          ? [h("p", { class: "hint" }, `Met by ${byType[c.goal_type].source_event} events.`), c.form.element]
          : h("p", { class: "hint" }, "Choose a goal type to see its criteria."),
      );
    }
    typeSelect.addEventListener("change", () => {
      c.goal_type = typeSelect.value;
      c.criteria = {};
      renderCriteria();
    });
    renderCriteria();
    const section = h(
      "section",
      { class: "card goal", "aria-label": title, "data-goal-id": c.id ?? "" },
      h(
        "div",
        { class: "goal-head" },
        h("h2", {}, title, c.id ? null : h("span", { class: "muted small" }, " (not saved)")),
        h("button", { type: "button", class: "link danger", onclick: () => remove(c) }, `Remove ${title.toLowerCase()}`),
      ),
      h("div", { class: "field" }, h("label", { for: typeSelect.id }, "Goal type"), typeSelect),
      criteriaSlot,
      h("div", { class: "field check" }, active, h("label", { for: active.id }, "Goal active")),
      errors,
    );
    showErrors(c);
    return section;
  }

  function showErrors(c) {
    replace(c.errorList, c.errors.map((e) => h("li", {}, e)));
    c.errorList.hidden = c.errors.length === 0;
  }

  function renderCards() {
    const cards = visibleCards();
    replace(
      cardsEl,
      cards.length ? cards.map(renderCard) : h("p", { class: "muted" }, "No goals yet. Add one: a workflow needs a goal before its contacts can exit on it."),
    );
    addButton.disabled = cards.length >= MAX_GOALS;
    addHint.textContent = cards.length >= MAX_GOALS ? `A workflow has at most ${MAX_GOALS} goals.` : `${cards.length} of ${MAX_GOALS} goals.`;
  }

  function renderStatus() {
    status.className = `badge ${model.status}`;
    status.textContent = model.status === "active" ? "Active" : "Inactive";
    liveNote.textContent = model.exists ? (model.live ? "The engine has the latest change." : "Publishing the latest change to the engine…") : "New workflow: saved on the first Save.";
    logic.value = model.logic;
    deactivateButton.disabled = !model.exists || model.status !== "active";
  }

  function remove(c) {
    c.removed = true;
    if (!c.id) model.cards = model.cards.filter((x) => x !== c);
    renderCards();
    say(c.id ? "The goal is removed when you save." : "");
    addButton.focus();
  }

  function say(text, isError = false) {
    replace(message, text ? h("p", { class: isError ? "error" : "ok" }, text) : null);
  }

  function setWorkflowErrors(list) {
    replace(workflowErrors, list.map((e) => h("li", {}, e)));
    workflowErrors.hidden = list.length === 0;
  }

  function validateAll() {
    let first = null;
    for (const c of visibleCards()) {
      c.errors = c.form ? c.form.validate() : ["Choose a goal type"];
      showErrors(c);
      if (c.errors.length && !first) first = c.form?.firstInvalid() ?? (c.form ? c.errorList : c.typeSelect);
    }
    return first;
  }

  const changed = (c) =>
    !c.saved || c.goal_type !== c.saved.goal_type || c.is_active !== c.saved.is_active || JSON.stringify(c.criteria) !== JSON.stringify(c.saved.criteria);

  // Deletes first, so that replacing a goal never trips the three-goal limit.
  async function save() {
    setWorkflowErrors([]);
    const invalid = validateAll();
    if (invalid) {
      say("Fix the problems shown beside the goals.", true);
      invalid.focus();
      return false;
    }
    let failures = 0;
    for (const c of model.cards.filter((x) => x.removed && x.id)) {
      await attempt(c, () => call(`${wf(workflowId)}/goals/${c.id}`, { method: "DELETE" }).catch(notFound(null)));
    }
    for (const c of visibleCards().filter(changed)) {
      const body = c.id
        ? { goal_type: c.goal_type, criteria: c.criteria, is_active: c.is_active }
        : { goal_type: c.goal_type, criteria: c.criteria };
      const goal = await attempt(c, () =>
        c.id
          ? call(`${wf(workflowId)}/goals/${c.id}`, { method: "PATCH", body })
          : call(`${wf(workflowId)}/goals`, { method: "POST", body }),
      );
      if (goal && !c.id && !c.is_active) {
        await attempt(c, () => call(`${wf(workflowId)}/goals/${goal.id}`, { method: "PATCH", body: { is_active: false } }));
      }
    }
    if (model.logic !== model.savedLogic) {
      try {
        await call(`${wf(workflowId)}/goal-settings`, { method: "PUT", body: { logic: model.logic } });
      } catch (exc) {
        if (exc.status === 401) throw exc;
        failures += 1;
        setWorkflowErrors([`Goal logic: ${describe(exc)}`]);
      }
    }
    failures += model.cards.filter((c) => c.errors.length).length;
    await refresh();
    say(failures ? "Some changes were not saved: see the problems beside them." : "Saved.", failures > 0);
    return failures === 0;

    async function attempt(c, request) {
      try {
        const result = await request();
        c.errors = [];
        return result;
      } catch (exc) {
        if (exc.status === 401) throw exc;
        c.errors = exc.details.length ? exc.details : [describe(exc)];
        return null;
      }
    }
  }

  // Reload from the API, keeping the cards that failed to save as the user left them.
  async function refresh() {
    const failed = model.cards.filter((c) => c.errors.length);
    await load();
    for (const f of failed) {
      const i = model.cards.findIndex((c) => c.id && c.id === f.id);
      if (f.removed && i < 0) continue;
      if (i >= 0) model.cards[i] = { ...f, saved: model.cards[i].saved };
      else if (!f.removed) model.cards.push(f);
    }
    renderStatus();
    renderCards();
  }

  async function activate() {
    const dirty = model.cards.some((c) => c.removed) || visibleCards().some(changed) || model.logic !== model.savedLogic;
    if (dirty && !(await save())) return;
    await setStatus("activate");
  }

  async function setStatus(action) {
    setWorkflowErrors([]);
    for (const c of model.cards) {
      c.errors = [];
      showErrors(c);
    }
    try {
      const result = await call(`${wf(workflowId)}/${action}`, { method: "POST" });
      model.status = result.status;
      await refresh();
      say(result.status === "active" ? "Activated: contacts now exit on these goals." : "Deactivated: the goals no longer exit anyone.");
    } catch (exc) {
      if (exc.status === 401) throw exc;
      if (exc.status !== 422) return say(describe(exc), true);
      const general = [];
      for (const violation of exc.details) {
        const target = model.cards.find((c) => c.id && c.id === violation.match(VIOLATION)?.[1]);
        if (target) target.errors.push(violation.replace(/^goal [0-9a-f-]{36} \([a-z_]+\): /, ""));
        else general.push(violation);
      }
      model.cards.forEach(showErrors);
      setWorkflowErrors(general);
      say(`Not activated: ${exc.details.length} problem${exc.details.length === 1 ? "" : "s"} to fix, shown beside the goals.`, true);
      const first = model.cards.find((c) => c.errors.length);
      (first?.errorList ?? workflowErrors).focus();
    }
  }

  await load();
  workflowErrors.tabIndex = -1; // focused when a violation concerns no single goal
  const form = h(
    "form",
    {
      "aria-label": "Goals",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        save();
      },
    },
    h("div", { class: "field" }, h("label", { for: "goal-logic" }, "Goal logic"), logic),
    cardsEl,
    h("div", { class: "add-row" }, addButton, addHint),
    workflowErrors,
    message,
    h("div", { class: "actions sticky" }, saveButton, activateButton, deactivateButton),
  );
  replace(main, workflowHeader(workflowId, "", status, liveNote), form);
  renderStatus();
  renderCards();
  setWorkflowErrors([]);
  // While the engine has not caught up, look again (the badge says when it has).
  const timer = setInterval(async () => {
    if (document.visibilityState !== "visible" || model.live || !model.exists) return;
    const settings = await call(`${wf(workflowId)}/goal-settings`).catch(() => null);
    if (settings) {
      model.live = settings.live;
      renderStatus();
    }
  }, 2000);
  return () => clearInterval(timer);
}

function notFound(fallback) {
  return (exc) => {
    if (exc instanceof ApiError && exc.status === 404) return fallback;
    throw exc;
  };
}

function describe(exc) {
  if (exc.status === 403) return `Not allowed: ${exc.message}.`;
  if (exc.status === 409) return `${exc.message}.`;
  return exc.details?.length ? exc.details.join("; ") : exc.message;
}
