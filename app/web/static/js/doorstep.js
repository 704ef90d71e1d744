// Shared by every page: texts from the catalogue, the API with the page's CSRF token, the live
// event stream, and small DOM helpers. Plain ES module, no build step, nothing from a CDN.

const TEXTS = JSON.parse(document.getElementById("texts").textContent || "{}");
export const LANG = document.documentElement.lang || "zh-CN";

/** The catalogue's text for an English msgid; {name} placeholders filled from params. */
export function t(msgid, params = {}) {
  const text = TEXTS[msgid] || msgid;
  return text.replace(/\{(\w+)\}/g, (m, key) => (key in params ? String(params[key]) : m));
}

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

/** An error answer of the API (problem+json): status, stable code, detail, extra fields. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "error";
    this.problem = problem;
  }
}

/** Call the API with the page's cookie session; JSON in and out; throws ApiError. */
export async function api(method, path, body = undefined, headers = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (method !== "GET") init.headers["X-CSRF-Token"] = CSRF;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, { code: "offline", detail: t("No connection. Trying again…") });
  }
  if (response.status === 401) {
    // The session ended (logged out elsewhere, or expired): the page shows the log-in form.
    window.location.reload();
    throw new ApiError(401, { code: "session_expired" });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (response.status === 403 && data.code === "csrf_failed") {
    // This page's session was replaced (a log-in elsewhere in this browser): start afresh.
    window.location.reload();
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A fresh idempotency key, so a retried order is placed once. */
export function idempotencyKey() {
  return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
}

/**
 * Follow the caller's live events (SSE, with the cookie). ``onEvent(type, data)`` for each
 * event; ``onState(connected)`` when the connection opens or drops (the browser reconnects by
 * itself and resumes after the last event id, so nothing is missed).
 */
export function live(onEvent, onState = () => {}) {
  const source = new EventSource("/v1/events", { withCredentials: true });
  source.addEventListener("open", () => onState(true));
  source.addEventListener("error", () => onState(false));
  // The server's history is behind our last event id (a restore): re-read everything shown.
  source.addEventListener("stream.reset", () => onState(true));
  source.onmessage = (e) => onEvent("message", JSON.parse(e.data));
  // Every named event type funnels into onEvent; types are registered as they are learnt.
  const handler = (e) => onEvent(e.type, JSON.parse(e.data));
  // The stream's event types (app/services/order_machine.py Event, offer_machine.py).
  for (const type of [
    "stream.open", "order.placed", "order.place", "order.offer", "order.decline", "order.expire",
    "order.accept", "order.assign", "order.reassign", "order.escalate", "order.check_in",
    "order.check_out", "order.withdraw", "order.no_show", "order.cancel", "order.no_show_flagged",
    "offer.created", "offer.accepted", "offer.declined", "offer.expired", "offer.withdrawn",
  ]) {
    source.addEventListener(type, handler);
  }
  return source;
}

/** Create an element: el("p", {class: "x"}, "text", child…). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Local clock time of an ISO instant (the phone's zone, which is the district's). */
export function clock(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(LANG, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

/** Whole minutes from now until an ISO instant (negative once past). */
export function minutesUntil(iso, now = Date.now()) {
  return Math.round((new Date(iso).getTime() - now) / 60000);
}

/** Money in fen as yuan. */
/** A phone number as people read it: the API's E.164 (`+8613900000001`) shown in the usual
 * national grouping for mainland mobiles (`139 0000 0001`); any other number as it is. Links
 * keep the E.164 form (`tel:`), which every phone dials. */
export function phoneText(e164) {
  const cn = /^\+86(1\d{2})(\d{4})(\d{4})$/.exec(e164 || "");
  return cn ? `${cn[1]} ${cn[2]} ${cn[3]}` : e164;
}

export function yuan(fen) {
  return new Intl.NumberFormat(LANG, { style: "currency", currency: "CNY" }).format(fen / 100);
}

/** Say something to screen readers (and show it) in the page's live region. */
export function announce(text, region = document.getElementById("announce")) {
  if (region) region.textContent = text;
}
