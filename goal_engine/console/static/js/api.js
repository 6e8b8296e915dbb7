// The HTTP API, from the console's origin. Every error is the API's {"error": {...}} shape.
import * as session from "./session.js";

const BASE = new URL("../api/v1/", document.baseURI);

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? [];
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function call(path, { method = "GET", body, query, token = session.token() } = {}) {
  const url = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    throw new ApiError(0, "network", `the API did not answer (${exc.message})`);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    const failure = new ApiError(response.status, error.code, error.message ?? response.statusText, error.details);
    if (response.status === 401) onUnauthorized(failure);
    throw failure;
  }
  return data;
}

export const wf = (id) => `workflows/${encodeURIComponent(id)}`;

let goalTypes = null;
export async function loadGoalTypes() {
  goalTypes ??= call("goal-types").then((r) => r.goal_types);
  try {
    return await goalTypes;
  } catch (exc) {
    goalTypes = null;
    throw exc;
  }
}
