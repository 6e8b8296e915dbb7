// Sign in: paste a token. Why a token failed is shown, and the form asks again.
import { h, replace } from "../dom.js";

export function signInView(main, { reason, signIn }) {
  const input = h("textarea", {
    id: "token",
    name: "token",
    rows: 4,
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "token-hint",
  });
  const problem = h("p", { class: "error", role: "alert", id: "sign-in-problem" }, reason ?? "");
  problem.hidden = !reason;
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      "aria-labelledby": "sign-in-title",
      onsubmit: async (event) => {
        event.preventDefault();
        const token = input.value.trim();
        if (!token) return show("Paste a token first.");
        button.disabled = true;
        try {
          await signIn(token);
        } catch (exc) {
          show(
            exc.status === 401
              ? `The API refused the token: ${exc.message}.`
              : exc.status === 403
                ? `The token cannot read workflows: ${exc.message}.`
                : exc.message,
          );
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
    h(
      "p",
      { class: "hint", id: "token-hint" },
      "A bearer JWT with workflows:read (and workflows:write to change goals). It stays in this tab only. ",
      "For local use, ",
      h("code", {}, "goal-engine token --tenant acme --console"),
      " prints a link that signs you in.",
    ),
    problem,
    h("div", { class: "actions" }, button),
  );
  function show(message) {
    problem.textContent = message;
    problem.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  replace(main, form);
  input.focus();
}
