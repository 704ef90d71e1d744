// The senior's phone page (/app): order a service from big tiles, follow my orders live, SOS.
// One screen at a time, no pop-ups: every confirmation is a screen or a panel in the page.
// Sizes follow the MIIT aging-friendly rules (see app.css); all texts go through t().

import { ApiError, LANG, announce, api, clock, el, idempotencyKey, live, minutesUntil, t } from "./doorstep.js";
import { SERVICE_CODES, serviceName } from "./services.js";

const SVG = "http://www.w3.org/2000/svg";
const HOLD_MS = 1500; // press-and-hold time that sends an SOS
const CHECK_MS = 5000; // how long the "Yes, send SOS" button waits for the second tap
const OPEN = new Set(["pending", "offered", "assigned", "escalated", "in_progress"]);
const CANCELLABLE = new Set(["pending", "offered", "assigned", "escalated"]);
const SOS_CODE = "emergency_help";

// ---------------------------------------------------------------- texts of the catalogue

const STARS = [t("Very poor"), t("Poor"), t("All right"), t("Good"), t("Excellent")];

// Tiles in this order (the everyday services first); new services after them.
function rank(code) {
  const index = SERVICE_CODES.indexOf(code);
  return index < 0 ? 99 : index;
}

/** Money in fen as "¥25.00" in both languages (not the "CN¥" an English locale writes). */
function yuan(fen) {
  return new Intl.NumberFormat(LANG, { style: "currency", currency: "CNY", currencyDisplay: "narrowSymbol" }).format(fen / 100);
}

// ---------------------------------------------------------------- icons (drawn here, no emoji)

// Each icon: path data and circles [cx, cy, r] on a 48x48 grid, stroked in the text colour.
const ICONS = {
  meal_delivery: ["M8 24H40A16 14 0 0 1 8 24Z", "M18 40h12", "M18 17c-2-3 2-5 0-8", "M24 17c-2-3 2-5 0-8", "M30 17c-2-3 2-5 0-8"],
  cleaning: ["M38 6 25 25", "M18 22l12 7-5 13H8z", "M14 40l3-9", "M20 41l3-8"],
  bathing: ["M5 24h38v5a9 9 0 0 1-9 9H14a9 9 0 0 1-9-9z", "M12 38l-2 5", "M36 38l2 5", "M12 24V11a4 4 0 0 1 8 0", "M28 10v3", "M34 14v3", "M28 18v2"],
  personal_care: [[20, 14, 6], "M8 42a12 12 0 0 1 24 0", "M37 22l-5-5a3 3 0 0 1 5-4 3 3 0 0 1 5 4z"],
  nursing_visit: ["M6 16h36v26H6z", "M18 16v-5h12v5", "M24 22v14", "M17 29h14"],
  medication_help: ["M10 30 30 10a7 7 0 0 1 10 10L20 40a7 7 0 0 1-10-10z", "M20 20l10 10"],
  hospital_escort: ["M10 42V10h28v32", "M5 42h38", "M24 15v10", "M19 20h10", "M20 42v-9h8v9"],
  rehabilitation: ["M8 19v10", "M14 14v20", "M34 14v20", "M40 19v10", "M14 24h20"],
  companionship: [[16, 15, 6], [32, 15, 6], "M4 40a12 12 0 0 1 24 0", "M20 40a12 12 0 0 1 24 0"],
  emergency_help: ["M14 34V22a10 10 0 0 1 20 0v12", "M9 34h30", "M20 39a4 4 0 0 0 8 0", "M24 6v3", "M8 12l3 2", "M40 12l-3 2"],
  heart: ["M24 41S7 31 7 18a8.5 8.5 0 0 1 17-3 8.5 8.5 0 0 1 17 3c0 13-17 23-17 23z"],
  wait: [[24, 24, 17], "M24 14v10l7 5"],
  ok: [[24, 24, 17], "M16 24l6 6 11-12"],
  done: ["M8 25l10 10L40 13"],
  off: [[24, 24, 17], "M17 17l14 14", "M31 17 17 31"],
  star: ["M24 5l5.6 12.2 13.4 1.5-10 9.1 2.8 13.2L24 34.3 12.2 41l2.8-13.2-10-9.1 13.4-1.5z"],
};

function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 48 48");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const shape of ICONS[name] || ICONS.heart) {
    let node;
    if (Array.isArray(shape)) {
      node = document.createElementNS(SVG, "circle");
      node.setAttribute("cx", shape[0]);
      node.setAttribute("cy", shape[1]);
      node.setAttribute("r", shape[2]);
    } else {
      node = document.createElementNS(SVG, "path");
      node.setAttribute("d", shape);
    }
    svg.append(node);
  }
  return svg;
}

// ---------------------------------------------------------------- time in plain words

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

function dayName(date) {
  const today = new Date();
  const tomorrow = new Date(today);
  tomorrow.setDate(today.getDate() + 1);
  if (sameDay(date, today)) return t("Today");
  if (sameDay(date, tomorrow)) return t("Tomorrow");
  return new Intl.DateTimeFormat(LANG, { month: "long", day: "numeric", weekday: "short" }).format(date);
}

function windowText(startIso, endIso) {
  const start = new Date(startIso);
  return t("{day} {from} to {to}", { day: dayName(start), from: clock(startIso), to: clock(endIso) });
}

/** The preset windows still possible for this service: this morning/afternoon, tomorrow's. */
function presetWindows(service, now = new Date()) {
  const at = (days, hour) => {
    const d = new Date(now);
    d.setDate(d.getDate() + days);
    d.setHours(hour, 0, 0, 0);
    return d;
  };
  // The earliest start worth offering: a quarter of an hour on, on a five-minute mark.
  const soonest = new Date(Math.ceil((now.getTime() + 15 * 60000) / 300000) * 300000);
  const need = (service.default_duration_min + 30) * 60000;
  return [
    { key: "today-am", name: t("This morning"), start: at(0, 8), end: at(0, 12) },
    { key: "today-pm", name: t("This afternoon"), start: at(0, 14), end: at(0, 18) },
    { key: "tomorrow-am", name: t("Tomorrow morning"), start: at(1, 8), end: at(1, 12) },
    { key: "tomorrow-pm", name: t("Tomorrow afternoon"), start: at(1, 14), end: at(1, 18) },
  ]
    .map((w) => ({ ...w, start: w.start < soonest ? soonest : w.start }))
    .filter((w) => w.end - w.start >= need);
}

/** Whole minutes since an ISO instant (never negative: the phone's clock may run a little behind). */
function minutesSince(iso, now = Date.now()) {
  return Math.max(0, Math.floor((now - new Date(iso).getTime()) / 60000));
}

/** How long she has been waiting for a caregiver, in plain words ("Waiting for 2 minutes"). */
function waitedText(order) {
  const minutes = minutesSince(order.created_at);
  if (order.priority === "emergency") {
    if (minutes < 1) return t("You called just now.");
    if (minutes === 1) return t("You called 1 minute ago.");
    return t("You called {minutes} minutes ago.", { minutes });
  }
  if (minutes < 1) return t("You asked just now.");
  if (minutes === 1) return t("You have been waiting for 1 minute.");
  return t("You have been waiting for {minutes} minutes.", { minutes });
}

/** What happens next while no caregiver has taken the order yet (null once one has). */
function nextText(order) {
  const sos = order.priority === "emergency";
  if (order.status === "pending" || order.status === "offered") {
    return sos
      ? t("If no caregiver answers quickly, the duty desk will send someone to you.")
      : t("If no caregiver takes it, the duty desk will arrange one for you.");
  }
  if (order.status === "escalated") {
    return sos
      ? t("The duty desk is sending someone to you. You do not need to do anything.")
      : t("The duty desk is arranging a caregiver. You do not need to do anything.");
  }
  return null;
}

const WAITING = new Set(["pending", "offered", "escalated"]);

// ---------------------------------------------------------------- page state

const $ = (id) => document.getElementById(id);
const state = {
  services: [],
  orders: [],
  draft: null, // {service, window: null | {name, start, end}, note, key}
  screen: "services",
  cards: new Map(), // order id → {sig, node}
  ui: new Map(), // order id → {cancel: bool, score: n, busy: bool, error: text}
  placing: false,
};

// ---------------------------------------------------------------- text size (remembered)

const SIZES = [
  { cls: "", name: t("Standard") },
  { cls: "text-bigger", name: t("Large") },
  { cls: "text-biggest", name: t("Largest") },
];
const SIZE_KEY = "doorstep.app.textSize";

function applySize(index) {
  const root = document.documentElement;
  for (const size of SIZES) if (size.cls) root.classList.remove(size.cls);
  if (SIZES[index].cls) root.classList.add(SIZES[index].cls);
  $("text-size-name").textContent = SIZES[index].name;
  try {
    localStorage.setItem(SIZE_KEY, String(index));
  } catch (err) {
    // Private mode: the size holds for this visit only.
  }
}

function setUpTextSize() {
  let index = 0;
  try {
    index = Math.min(SIZES.length - 1, Math.max(0, Number(localStorage.getItem(SIZE_KEY)) || 0));
  } catch (err) {
    index = 0;
  }
  applySize(index);
  $("text-size").addEventListener("click", () => {
    index = (index + 1) % SIZES.length;
    applySize(index);
  });
}

// ---------------------------------------------------------------- screens

const TAB_OF = { services: "tab-services", when: "tab-services", confirm: "tab-services", orders: "tab-orders" };

function show(name, { push = true, focus = true } = {}) {
  if ((name === "when" || name === "confirm") && !state.draft) name = "services";
  // A message about what was just done belongs to the screen it was done on.
  if (name !== state.screen) announce("");
  state.screen = name;
  for (const screen of document.querySelectorAll(".screen")) screen.hidden = screen.dataset.screen !== name;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.id === TAB_OF[name]) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (push) history.pushState({ screen: name }, "", `#${name}`);
  window.scrollTo(0, 0);
  if (focus) $(`screen-${name}`).querySelector("h1")?.focus({ preventScroll: true });
}

function setUpNavigation() {
  document.addEventListener("click", (event) => {
    const go = event.target.closest("[data-go]");
    if (go) show(go.dataset.go);
  });
  window.addEventListener("popstate", (event) => show(event.state?.screen || "services", { push: false }));
}

// ---------------------------------------------------------------- ordering

async function loadServices() {
  try {
    state.services = await api("GET", "/v1/services");
  } catch (err) {
    $("services-loading").textContent = t("The services could not be loaded. Please try again later.");
    return;
  }
  $("services-loading").hidden = true;
  const tiles = $("tiles");
  tiles.replaceChildren(
    ...state.services
      .filter((s) => s.code !== SOS_CODE)
      .sort((a, b) => rank(a.code) - rank(b.code))
      .map((service) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "tile", dataset: { code: service.code }, onclick: () => choose(service) },
            icon(service.code, "icon tile-icon"),
            el("span", { class: "tile-name" }, serviceName(service.code, service.name)),
            el("span", { class: "tile-price" }, yuan(service.price_fen)),
          ),
        ),
      ),
  );
}

function choose(service) {
  state.draft = { service, window: null, note: "", key: null };
  $("when-service").textContent = serviceName(service.code, service.name);
  $("when-icon").replaceChildren(icon(service.code, "icon title-icon"));
  $("note").value = "";
  renderWindows();
  show("when");
}

function renderWindows() {
  const draft = state.draft;
  const choice = (key, name, detail, window) =>
    el(
      "button",
      {
        type: "button",
        class: "window",
        dataset: { window: key },
        "aria-pressed": String((draft.window?.key || "asap") === key),
        onclick: () => {
          draft.window = window;
          renderWindows();
          document.querySelector(`[data-window="${key}"]`)?.focus();
        },
      },
      el("span", { class: "window-name" }, name),
      detail ? el("span", { class: "window-time" }, detail) : null,
    );
  $("windows").replaceChildren(
    choice("asap", t("As soon as possible"), "", null),
    ...presetWindows(draft.service).map((w) => choice(w.key, w.name, `${clock(w.start.toISOString())} – ${clock(w.end.toISOString())}`, w)),
  );
}

function toConfirm() {
  const draft = state.draft;
  const note = $("note").value.trim();
  if (draft.key === null || note !== draft.note || draft.keyFor !== draft.window?.key) {
    // A new order on this screen gets a new key; the same order tapped twice keeps its key.
    draft.key = idempotencyKey();
    draft.keyFor = draft.window?.key;
  }
  draft.note = note;
  $("confirm-service").replaceChildren(icon(draft.service.code, "icon inline-icon"), serviceName(draft.service.code, draft.service.name));
  $("confirm-when").textContent = draft.window
    ? windowText(draft.window.start.toISOString(), draft.window.end.toISOString())
    : t("As soon as possible");
  $("confirm-price").textContent = yuan(draft.service.price_fen);
  $("confirm-note").textContent = note;
  $("confirm-note-row").hidden = !note;
  $("confirm-error").hidden = true;
  show("confirm");
}

function orderError(err) {
  if (err instanceof ApiError && err.code === "window_in_past") return t("That time has already passed. Please choose another time.");
  if (err instanceof ApiError && err.code === "offline") return t("No connection. Please try again.");
  return t("The order could not be placed. Please try again.");
}

async function place() {
  if (state.placing) return; // a double tap orders once (and the key makes sure of it)
  const draft = state.draft;
  const body = { service_code: draft.service.code, notes: draft.note };
  if (draft.window) {
    body.window_start = draft.window.start.toISOString();
    body.window_end = draft.window.end.toISOString();
  }
  state.placing = true;
  $("place").disabled = true;
  $("place").textContent = t("Placing the order…");
  try {
    const order = await api("POST", "/v1/orders", body, { "Idempotency-Key": draft.key });
    state.draft = null;
    mergeOrder(order);
    show("orders");
    announce(t("Your order is placed: {service}.", { service: serviceName(order.service_code) }));
  } catch (err) {
    $("confirm-error").textContent = orderError(err);
    $("confirm-error").hidden = false;
  } finally {
    state.placing = false;
    $("place").disabled = false;
    $("place").textContent = t("Yes, order it");
  }
}

// ---------------------------------------------------------------- my orders

/** The status in plain words and an icon (never colour alone): from the senior-facing
 * ``status_code`` of the API, else from the order's own status. */
function statusOf(order) {
  const sos = order.priority === "emergency";
  switch (order.status_code || order.status) {
    case "finding_caregiver":
    case "pending":
      return { kind: "wait", text: sos ? t("Calling the caregivers nearby") : t("Finding a caregiver for you") };
    case "asking_caregiver":
    case "offered":
      return { kind: "wait", text: sos ? t("Calling the caregivers nearby") : t("Asking a caregiver") };
    case "duty_desk_arranging":
      return { kind: "wait", text: t("The duty desk is arranging a caregiver for you") };
    case "duty_desk_on_it":
    case "escalated":
      return { kind: "wait", text: t("The duty desk has your call and is finding help") };
    case "caregiver_coming":
    case "assigned":
      return { kind: "ok", text: sos ? t("A caregiver is on the way") : t("A caregiver is booked") };
    case "caregiver_late":
      return { kind: "wait", text: t("Your caregiver is late; the duty desk is looking into it") };
    case "caregiver_here":
    case "in_progress":
      return { kind: "ok", text: t("The caregiver is with you") };
    case "visit_done":
    case "completed":
      return { kind: "done", text: t("Done") };
    case "cancelled":
      return { kind: "off", text: t("Cancelled") };
    default:
      return { kind: "wait", text: t("Being handled") };
  }
}

function caregiverOf(order) {
  return order.caregiver && order.caregiver.display_name ? order.caregiver : null;
}

/** When the caregiver comes: minutes away (ETA), else the planned start, else the window. */
function timeOf(order) {
  if (order.status === "assigned" && order.eta) {
    const minutes = minutesUntil(order.eta);
    return minutes > 1 ? t("Arrives in about {minutes} minutes", { minutes }) : t("Arriving now");
  }
  if (order.status === "assigned" && order.planned_start) {
    return t("Planned start: {day} {time}", { day: dayName(new Date(order.planned_start)), time: clock(order.planned_start) });
  }
  if (order.window_start && order.window_end) return windowText(order.window_start, order.window_end);
  if (order.asap && OPEN.has(order.status)) return t("As soon as possible");
  return "";
}

function person(caregiver, line) {
  const name = caregiver.display_name;
  return el(
    "div",
    { class: "person" },
    el("span", { class: "initial", "aria-hidden": "true" }, caregiver.initial || Array.from(name)[0] || ""),
    el("span", { class: "person-text" }, el("span", { class: "person-name" }, t("Caregiver: {name}", { name })), line ? el("span", { class: "person-line" }, line) : null),
  );
}

function uiOf(id) {
  if (!state.ui.has(id)) state.ui.set(id, { cancel: false, score: 0, busy: false, error: "" });
  return state.ui.get(id);
}

function mergeOrder(order) {
  state.orders = [order, ...state.orders.filter((o) => o.id !== order.id)];
  renderOrders();
}

function cancelReasons(order) {
  return order.priority === "emergency"
    ? [t("I pressed SOS by mistake"), t("I am all right now")]
    : [t("I no longer need it"), t("The time does not suit me"), t("My family will help")];
}

async function act(order, fn, done) {
  const ui = uiOf(order.id);
  if (ui.busy) return;
  ui.busy = true;
  ui.error = "";
  renderOrders();
  try {
    let updated;
    for (let attempt = 1; ; attempt += 1) {
      try {
        updated = await fn();
        break;
      } catch (err) {
        // Dispatch moved the order on at the same moment: the senior's wish still stands.
        if (!(err instanceof ApiError && err.code === "concurrent_change" && attempt < 3)) throw err;
      }
    }
    Object.assign(ui, { cancel: false, score: 0, busy: false });
    mergeOrder(updated);
    announce(done);
  } catch (err) {
    ui.busy = false;
    ui.error = err instanceof ApiError && err.status === 409 ? t("This order has moved on; it can no longer be changed here.") : t("That did not work. Please try again.");
    renderOrders();
    refresh();
  }
}

function cancelPart(order) {
  const ui = uiOf(order.id);
  if (!CANCELLABLE.has(order.status)) return null;
  if (!ui.cancel) {
    return el("button", { type: "button", class: "big cancel", onclick: () => { ui.cancel = true; renderOrders(); focusIn(order.id, ".cancel-panel button"); } }, t("Cancel this order"));
  }
  return el(
    "div",
    { class: "cancel-panel", role: "group", "aria-labelledby": `cancel-q-${order.id}` },
    el("p", { id: `cancel-q-${order.id}`, class: "panel-question" }, t("Cancel this order? Tap the reason:")),
    ...cancelReasons(order).map((reason) =>
      el(
        "button",
        {
          type: "button",
          class: "danger big",
          disabled: ui.busy,
          onclick: () => act(order, () => api("POST", `/v1/orders/${order.id}/cancel`, { reason }), t("The order is cancelled.")),
        },
        reason,
      ),
    ),
    el("button", { type: "button", class: "big keep", onclick: () => { ui.cancel = false; renderOrders(); focusIn(order.id, ".cancel"); } }, t("Keep the order")),
  );
}

function ratingPart(order) {
  if (order.status !== "completed") return null;
  if (order.rating) {
    return el(
      "p",
      { class: "rated" },
      el("span", { class: "stars-shown", "aria-hidden": "true" }, ...[1, 2, 3, 4, 5].map((n) => icon("star", n <= order.rating ? "icon star on" : "icon star"))),
      t("Your rating: {score} stars, {label}", { score: order.rating, label: STARS[order.rating - 1] }),
    );
  }
  const ui = uiOf(order.id);
  const comment = el("textarea", { id: `comment-${order.id}`, rows: "2", maxlength: "300" });
  if (ui.comment) comment.value = ui.comment;
  comment.addEventListener("input", () => (ui.comment = comment.value));
  return el(
    "div",
    { class: "rate", role: "group", "aria-labelledby": `rate-q-${order.id}` },
    el("p", { id: `rate-q-${order.id}`, class: "panel-question" }, t("How was this visit? Tap the stars:")),
    el(
      "div",
      { class: "stars" },
      ...[1, 2, 3, 4, 5].map((n) =>
        el(
          "button",
          {
            type: "button",
            class: "star-button",
            dataset: { score: String(n) },
            "aria-pressed": String(ui.score === n),
            "aria-label": t("{score} stars, {label}", { score: n, label: STARS[n - 1] }),
            onclick: () => { ui.score = n; renderOrders(); focusIn(order.id, `[data-score="${n}"]`); },
          },
          icon("star", n <= ui.score ? "icon star on" : "icon star"),
          el("span", { class: "star-n" }, String(n)),
        ),
      ),
    ),
    ui.score ? el("p", { class: "chosen" }, t("You chose {score} stars: {label}", { score: ui.score, label: STARS[ui.score - 1] })) : null,
    ui.score ? el("label", { for: `comment-${order.id}` }, t("Anything to add? (you may leave it empty)")) : null,
    ui.score ? comment : null,
    ui.score
      ? el(
          "button",
          {
            type: "button",
            class: "primary big send-rating",
            disabled: ui.busy,
            onclick: () => act(order, () => api("POST", `/v1/orders/${order.id}/rating`, { score: ui.score, comment: (ui.comment || "").trim() }), t("Thank you for your rating.")),
          },
          t("Send my rating"),
        )
      : null,
  );
}

function card(order) {
  const status = statusOf(order);
  const caregiver = caregiverOf(order);
  const when = timeOf(order);
  const ui = uiOf(order.id);
  const showPerson = caregiver && ["assigned", "in_progress", "completed"].includes(order.status);
  return el(
    "li",
    { class: `order order-${status.kind}${order.priority === "emergency" ? " order-sos" : ""}`, dataset: { order: order.id, status: order.status } },
    el("h2", { class: "order-title" }, icon(order.service_code, "icon inline-icon"), serviceName(order.service_code)),
    el("p", { class: `status status-${status.kind}` }, icon(status.kind, "icon status-icon"), el("span", { class: "status-text" }, status.text)),
    showPerson ? person(caregiver, order.status === "assigned" ? when : "") : null,
    when && !(showPerson && order.status === "assigned") ? el("p", { class: "when" }, when) : null,
    WAITING.has(order.status) ? el("p", { class: "waited" }, waitedText(order)) : null,
    WAITING.has(order.status) ? el("p", { class: "next" }, nextText(order)) : null,
    // Her own note (an SOS carries the system's, not hers).
    order.notes && order.priority !== "emergency" ? el("p", { class: "note" }, t("Your note: {note}", { note: order.notes })) : null,
    order.price_fen ? el("p", { class: "price" }, t("Price: {price}", { price: yuan(order.price_fen) })) : null,
    ui.error ? el("p", { class: "error", role: "alert" }, ui.error) : null,
    cancelPart(order),
    ratingPart(order),
  );
}

function focusIn(id, selector) {
  state.cards.get(id)?.node.querySelector(selector)?.focus();
}

function sorted(orders) {
  const open = orders.filter((o) => OPEN.has(o.status));
  const closed = orders.filter((o) => !OPEN.has(o.status));
  const newest = (a, b) => (a.created_at < b.created_at ? 1 : -1);
  return [...open.sort(newest), ...closed.sort(newest)].slice(0, 30);
}

/** Re-render the cards whose order or panel changed (a card being typed in is left alone). */
function renderOrders() {
  const list = $("orders");
  const shown = sorted(state.orders);
  const keep = new Set();
  let previous = null;
  for (const order of shown) {
    const sig = JSON.stringify([order, state.ui.get(order.id) ? { ...state.ui.get(order.id), comment: undefined } : null, timeOf(order), waitedText(order)]);
    let entry = state.cards.get(order.id);
    if (!entry || entry.sig !== sig) {
      const node = card(order);
      if (entry) entry.node.replaceWith(node);
      entry = { sig, node };
      state.cards.set(order.id, entry);
    }
    keep.add(order.id);
    // Keep the DOM in the sorted order, moving only what moved.
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== entry.node) list.insertBefore(entry.node, expected);
    previous = entry.node;
  }
  for (const [id, entry] of state.cards) {
    if (!keep.has(id)) {
      entry.node.remove();
      state.cards.delete(id);
    }
  }
  $("orders-empty").hidden = shown.length > 0;
  const open = state.orders.filter((o) => OPEN.has(o.status)).length;
  $("orders-count").textContent = open ? String(open) : "";
  $("orders-count").hidden = !open;
  renderSos();
}

let refreshing = null;
let again = false;

async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      const page = await api("GET", "/v1/orders?limit=50");
      state.orders = page.items;
      renderOrders();
    } catch (err) {
      // Offline for a moment: the stream reconnects and refreshes again.
    }
  })();
  await refreshing;
  refreshing = null;
  if (again) {
    again = false;
    await refresh();
  }
}

// ---------------------------------------------------------------- SOS

function openSos() {
  return state.orders.find((o) => o.priority === "emergency" && OPEN.has(o.status)) || null;
}

function sosScreenOrder() {
  return state.orders.find((o) => o.id === state.sosId) || null;
}

/** What happens now, in words: who is coming and when, or that the duty desk is on it. */
function sosNow(order) {
  const caregiver = caregiverOf(order);
  switch (order.status) {
    case "assigned": {
      if (order.status_code === "caregiver_late") return t("Your caregiver is late; the duty desk is looking into it");
      if (!caregiver) return t("A caregiver is on the way.");
      if (order.eta && minutesUntil(order.eta) > 1) {
        return t("A caregiver is on the way: {name}, about {minutes} minutes.", { name: caregiver.display_name, minutes: minutesUntil(order.eta) });
      }
      return t("A caregiver is on the way: {name}.", { name: caregiver.display_name });
    }
    case "in_progress":
      return caregiver ? t("{name} is with you.", { name: caregiver.display_name }) : t("The caregiver is with you");
    case "escalated":
      return t("The duty desk has your call and is finding help.");
    case "completed":
      return t("Your SOS call has been dealt with.");
    case "cancelled":
      return t("Your SOS call is cancelled.");
    default:
      return t("We are calling the caregivers nearby. Please wait.");
  }
}

function renderSos() {
  const open = openSos();
  $("sos-label").textContent = open ? t("Call sent") : t("Emergency call");
  $("sos-how").textContent = open ? t("See who is coming") : t("Press and hold");
  $("sos").classList.toggle("sent", Boolean(open));
  const order = sosScreenOrder();
  if (!order) return;
  const text = sosNow(order);
  if ($("sos-status").textContent !== text) $("sos-status").textContent = text;
  const waiting = WAITING.has(order.status);
  const waited = waiting ? waitedText(order) : "";
  const next = (waiting && nextText(order)) || "";
  if ($("sos-waited").textContent !== waited) $("sos-waited").textContent = waited;
  if ($("sos-next").textContent !== next) $("sos-next").textContent = next;
  $("sos-waited").hidden = !waited;
  $("sos-next").hidden = !next;
  const caregiver = caregiverOf(order);
  const box = $("sos-caregiver");
  if (caregiver && ["assigned", "in_progress"].includes(order.status)) {
    box.replaceChildren(person(caregiver, ""));
    box.hidden = false;
  } else {
    box.hidden = true;
  }
}

function showSos(order) {
  state.sosId = order.id;
  mergeOrder(order);
  show("sos");
}

let sending = false;

async function sendSos() {
  if (sending) return;
  sending = true;
  closeCheck();
  $("sos-label").textContent = t("Sending SOS…");
  try {
    const order = await api("POST", "/v1/sos");
    showSos(order);
  } catch (err) {
    openCheck(false);
    $("sos-check-text").textContent = t("The SOS could not be sent. Press the button again, or call 120.");
    $("sos-label").textContent = t("Emergency call");
  } finally {
    sending = false;
  }
}

let checkTimer = null;
let checkOpenedAt = 0;

function openCheck(countdown = true) {
  clearInterval(checkTimer);
  const panel = $("sos-check");
  panel.hidden = false;
  checkOpenedAt = performance.now();
  let left = Math.round(CHECK_MS / 1000);
  const say = () => ($("sos-check-text").textContent = t("Send an SOS? Press “Yes, send SOS” within {seconds} seconds.", { seconds: left }));
  say();
  if (countdown) {
    checkTimer = setInterval(() => {
      left -= 1;
      if (left <= 0) closeCheck();
      else say();
    }, 1000);
  }
  $("sos-confirm").focus();
}

function closeCheck() {
  clearInterval(checkTimer);
  checkTimer = null;
  $("sos-check").hidden = true;
}

function setUpSos() {
  const button = $("sos");
  const ring = $("sos-ring");
  let holding = null; // {start, timer, frame}
  let held = false; // the hold sent an SOS: ignore the click that ends it

  const paint = () => {
    if (!holding) return;
    const part = Math.min(1, (performance.now() - holding.start) / HOLD_MS);
    ring.setAttribute("stroke-dashoffset", String(100 - 100 * part));
    holding.frame = requestAnimationFrame(paint);
  };
  const stop = () => {
    if (!holding) return;
    clearTimeout(holding.timer);
    cancelAnimationFrame(holding.frame);
    holding = null;
    ring.setAttribute("stroke-dashoffset", "100");
    button.classList.remove("holding");
    renderSos();
  };

  button.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || openSos()) return;
    held = false;
    button.setPointerCapture?.(event.pointerId);
    button.classList.add("holding");
    $("sos-label").textContent = t("Keep holding…");
    holding = {
      start: performance.now(),
      frame: 0,
      timer: setTimeout(() => {
        held = true;
        stop();
        sendSos();
      }, HOLD_MS),
    };
    paint();
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) button.addEventListener(type, stop);
  button.addEventListener("contextmenu", (event) => event.preventDefault());
  button.addEventListener("click", () => {
    if (held) {
      held = false;
      return;
    }
    const open = openSos();
    if (open) {
      showSos(open);
      return;
    }
    // A tap (or Enter/Space, or a screen reader's activation) asks once more, out of the way.
    openCheck();
  });
  $("sos-no").addEventListener("click", () => {
    closeCheck();
    button.focus();
  });
  $("sos-confirm").addEventListener("click", () => {
    // A held Enter key repeats: the second "tap" must be a deliberate one.
    if (performance.now() - checkOpenedAt < 400) return;
    sendSos();
  });
}

// ---------------------------------------------------------------- start

function setUpLive() {
  let timer = null;
  let lost = null;
  live(
    (type) => {
      if (!type.startsWith("order.")) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 100);
    },
    (connected) => {
      clearTimeout(lost);
      if (connected) {
        refresh();
      } else {
        lost = setTimeout(() => announce(t("No connection. Trying again…")), 3000);
      }
    },
  );
  // Minutes to arrival and minutes waited move on by themselves.
  setInterval(renderOrders, 15000);
}

/** The page's content always ends above the fixed SOS bar, whatever its height (text size,
 * language, the "Send an SOS?" panel): main's bottom padding follows the bar's real height. */
function setUpBarRoom() {
  const bar = $("sos-bar");
  const fit = () => document.documentElement.style.setProperty("--sos-bar-height", `${Math.ceil(bar.getBoundingClientRect().height)}px`);
  fit();
  if (window.ResizeObserver) new ResizeObserver(fit).observe(bar);
  else window.addEventListener("resize", fit);
}

async function start() {
  setUpBarRoom();
  setUpTextSize();
  setUpNavigation();
  setUpSos();
  $("to-confirm").addEventListener("click", toConfirm);
  $("place").addEventListener("click", place);
  // A reload keeps the section it was on (the address says which); the rest start afresh.
  const first = location.hash === "#orders" ? "orders" : "services";
  history.replaceState({ screen: first }, "");
  if (first !== "services") show(first, { push: false, focus: false });
  await Promise.all([loadServices(), refresh()]);
  const open = openSos();
  if (open) showSos(open);
  setUpLive();
}

start();
