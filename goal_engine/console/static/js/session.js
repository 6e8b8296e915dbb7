// The token lives in this tab's sessionStorage only: closing the tab signs out.

const KEY = "goal-engine.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function store(value) {
  sessionStorage.setItem(KEY, value);
}

export function clear() {
  sessionStorage.removeItem(KEY);
}

// The claims, for display and the expiry timer only: the API checks the signature.
export function claims(value = token()) {
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

// A token handed over in the link `goal-engine token --console` prints (#token=...):
// kept for the session and taken out of the address bar and the history.
export function takeFromLocation() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#/workflows`);
  return decodeURIComponent(match[1]);
}
