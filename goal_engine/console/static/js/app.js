// The shell: the sign-in gate, the header, and a hash router over the screens.
import { ApiError, call, whenUnauthorized } from "./api.js";
import { h, replace } from "./dom.js";
import * as session from "./session.js";
import { achievementsView } from "./views/achievements.js";
import { analyticsView } from "./views/analytics.js";
import { auditView } from "./views/audit.js";
import { editorView } from "./views/editor.js";
import { signInView } from "./views/signin.js";
import { workflowsView } from "./views/workflows.js";

const main = document.getElementById("main");
let cleanup = null;
let signInReason = null;
let expiryTimer = null;

const ROUTES = [
  [/^#\/workflows\/([^/]+)\/analytics$/, analyticsView],
  [/^#\/workflows\/([^/]+)\/achievements$/, achievementsView],
  [/^#\/workflows\/([^/]+)$/, editorView],
  [/^#\/audit$/, auditView],
  [/^#\/workflows$/, workflowsView],
];

export function signOut(reason) {
  session.clear();
  clearTimeout(expiryTimer);
  signInReason = reason;
  if (location.hash !== "#/signin") location.hash = "#/signin";
  else render();
}

export async function signIn(token) {
  // Any read proves the token: the API answers 401 with the reason, or 403 without the scope.
  await call("goal-types", { token });
  session.store(token);
  signInReason = null;
  location.hash = "#/workflows";
}

function watchExpiry() {
  clearTimeout(expiryTimer);
  const exp = session.claims()?.exp;
  if (!exp) return;
  const left = exp * 1000 - Date.now();
  const reason = `Your token expired at ${new Date(exp * 1000).toLocaleTimeString()}. Paste a new one.`;
  if (left <= 0) return signOut(reason);
  expiryTimer = setTimeout(() => signOut(reason), Math.min(left, 2 ** 31 - 1));
}

function showChrome(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  const claims = session.claims();
  document.getElementById("who-text").textContent = claims
    ? `${claims.tenant_id} · ${claims.sub}`
    : "";
  for (const link of document.querySelectorAll("#nav a")) {
    const here = location.hash.startsWith(link.getAttribute("href"));
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function render() {
  cleanup?.();
  cleanup = null;
  // At load, or when the link is opened in a tab that has the console already.
  const handed = session.takeFromLocation();
  if (handed) {
    session.store(handed);
    signInReason = null;
  }
  const hash = location.hash || "#/workflows";
  if (!session.token()) {
    showChrome(false);
    if (hash !== "#/signin") {
      location.hash = "#/signin";
      return;
    }
    cleanup = signInView(main, { reason: signInReason, signIn });
    return;
  }
  if (hash === "#/signin") {
    location.hash = "#/workflows";
    return;
  }
  showChrome(true);
  watchExpiry();
  const [pattern, view] = ROUTES.find(([re]) => re.test(hash)) ?? [];
  if (!view) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/workflows" }, "Back to the workflows")));
    return;
  }
  const params = hash.match(pattern).slice(1).map(decodeURIComponent);
  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    cleanup = (await view(main, ...params)) ?? null;
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) return; // signed out already
    replace(main, h("h1", {}, "Something went wrong"), h("p", { role: "alert", class: "error" }, exc.message));
  }
}

whenUnauthorized((error) => signOut(`The API refused the token: ${error.message}. Paste a new one.`));
document.getElementById("sign-out").addEventListener("click", () => signOut("You signed out."));
window.addEventListener("hashchange", render);
render();
