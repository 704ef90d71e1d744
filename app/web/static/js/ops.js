// The operator console (/ops): the district's live queue over SSE with SOS and escalations on
// top (banner + generated sound), timers to each order's response target, the district map,
// today's KPIs and the order detail (ops-detail.js). Keyboard first: the queue is one tab stop
// (arrow keys move, Enter/Space open), Escape closes the detail.
//
// The queue API pages at 100 rows; the console fetches every page and renders every row
// (not a virtual list): the desk must see the whole district at once, the alert and the counts
// come from all of it, and real rows keep the keyboard, find-in-page and screen readers
// working. 500 rows render in tens of milliseconds (BENCHMARKS.md, "console"); rows are keyed
// and rebuilt only when what they show changes, and a burst of events is one refresh.
import { ApiError, announce, api, el, live, t } from "./doorstep.js";
import { Detail } from "./ops-detail.js";
import * as map from "./ops-map.js";
import * as words from "./ops-text.js";

const PAGE = 100;
const OPEN_ALERT = new Set(["pending", "offered", "escalated"]);
const SOUND_KEY = "doorstep.ops.sound";
const ACK_KEY = "doorstep.ops.acknowledged";
const REPEAT_ALERT_MS = 30_000;

const $ = (id) => document.getElementById(id);
const body = $("queue");
const state = {
  rows: [],
  byId: new Map(),
  dom: new Map(), // order id -> {tr, sig}
  activeId: null,
  zone: undefined,
  skewMs: 0, // server clock minus this browser's clock
  names: new Map(),
  alertSig: "",
  pendingAlert: null,
  renders: 0,
};

const now = () => Date.now() + state.skewMs;

/** Run ``fn`` at most once at a time and at most every ``gapMs``; calls meanwhile coalesce. */
function coalesced(fn, gapMs) {
  let running = false;
  let again = false;
  let timer = null;
  let last = 0;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = performance.now();
    try {
      await fn();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) console.error(err);
    } finally {
      running = false;
      if (again) {
        again = false;
        request();
      }
    }
  };
  const request = (urgent = false) => {
    if (running) {
      again = true;
      return;
    }
    const wait = urgent ? 0 : Math.max(0, last + gapMs - performance.now());
    if (timer !== null) {
      if (!urgent) return;
      clearTimeout(timer);
    }
    timer = setTimeout(run, wait);
  };
  return request;
}

// --- timers ------------------------------------------------------------------------------------

/** Whether an order is at risk: a quarter or less of its allowance left, at least 3 minutes. */
function timerState(dueMs, createdMs, at) {
  const left = (dueMs - at) / 1000;
  if (left < 0) return ["over", left];
  const allowance = Math.max(0, (dueMs - createdMs) / 1000);
  return [left <= Math.max(180, allowance / 4) ? "risk" : "ok", left];
}

function tickTimer(node, at) {
  const due = Date.parse(node.dataset.due);
  const [kind, left] = timerState(due, Date.parse(node.dataset.created), at);
  const time = words.countdown(left);
  const text = kind === "over"
    ? t("Overdue by {time}", { time })
    : kind === "risk"
      ? t("At risk: {time} left", { time })
      : t("{time} left", { time });
  if (node.textContent !== text) node.textContent = text;
  if (node.dataset.state !== kind) node.dataset.state = kind;
}

function tick() {
  const at = now();
  for (const node of document.querySelectorAll(".timer[data-due]")) tickTimer(node, at);
  for (const node of body.querySelectorAll(".since[data-since]")) {
    const text = words.duration((at - Date.parse(node.dataset.since)) / 1000);
    if (node.textContent !== text) node.textContent = text;
  }
}

// --- the queue ---------------------------------------------------------------------------------

async function fetchQueue() {
  // Follow next_cursor page by page: keyset pages never repeat or skip an order that moved.
  const sent = performance.now();
  const pages = [];
  let cursor = null;
  do {
    const page = await api("GET", "/v1/ops/queue?limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    pages.push(page);
    cursor = page.next_cursor;
  } while (cursor);
  const seen = new Set();
  const rows = [];
  for (const page of pages) {
    for (const row of page.items) {
      if (seen.has(row.id)) continue; // the queue moved between pages
      seen.add(row.id);
      rows.push(row);
    }
  }
  const timed = rows.find((r) => r.response_due_at && r.time_left_s !== null);
  if (timed) {
    const received = (sent + performance.now()) / 2 + performance.timeOrigin;
    state.skewMs = Date.parse(timed.response_due_at) - timed.time_left_s * 1000 - received;
    if (Math.abs(state.skewMs) < 1500) state.skewMs = 0; // within a second's rounding
  }
  return rows;
}

function rowClass(row) {
  if (row.priority === "emergency") return "r-sos";
  if (row.status === "escalated") return "r-escalated";
  if (row.no_show_at) return "r-noshow";
  return "";
}

function rowSig(row) {
  return [
    row.status, row.priority, row.senior_name, row.senior_neighbourhood, row.service_code,
    row.caregiver_name, row.offered.map((c) => c.name).join(","), row.response_due_at,
    row.no_show_at, row.asap, row.window_start, row.window_end, row.id === state.detailId,
    state.zone, words.dayKey(now(), state.zone), // "tomorrow" becomes "today" at midnight
  ].join("|");
}

function buildRow(row, tr) {
  const badges = [el("span", { class: "badge s-" + row.status }, words.status(row.status))];
  if (row.priority !== "normal") badges.unshift(el("span", { class: "badge p-" + row.priority }, words.priority(row.priority)));
  if (row.no_show_at) badges.push(el("span", { class: "badge noshow" }, t("No-show")));
  let who = el("span", { class: "muted" }, "–");
  if (row.caregiver_name) who = row.caregiver_name;
  else if (row.offered.length) who = t("Offered to {names}", { names: row.offered.map((c) => c.name).join("、") });
  const when = row.asap ? t("As soon as possible") : words.timeWindow(row.window_start, row.window_end, state.zone, now());
  tr.replaceChildren(
    el("td", { class: "c-timer" }, row.response_due_at
      ? el("span", { class: "timer", "data-due": row.response_due_at, "data-created": row.created_at }, "")
      : el("span", { class: "muted" }, t("Visit under way"))),
    el("td", { class: "c-status" }, badges),
    el("td", { class: "c-senior" }, el("span", { class: "name" }, row.senior_name), el("span", { class: "hood" }, row.senior_neighbourhood)),
    el("td", { class: "c-service" }, words.service(row.service_code), el("span", { class: "hood" }, when)),
    el("td", { class: "c-caregiver" }, who),
    el("td", { class: "c-wait" }, el("span", { class: "since", "data-since": row.created_at }, "")),
  );
  tr.className = rowClass(row);
  tr.dataset.status = row.status;
  tr.dataset.priority = row.priority;
  if (row.id === state.detailId) tr.setAttribute("aria-current", "true");
  else tr.removeAttribute("aria-current");
}

function renderQueue(rows, askedAt = performance.now()) {
  const started = performance.now();
  const hadFocus = body.contains(document.activeElement);
  const oldIndex = state.rows.findIndex((r) => r.id === state.activeId);
  state.rows = rows;
  state.byId = new Map(rows.map((r) => [r.id, r]));
  for (const [id, entry] of state.dom) {
    if (!state.byId.has(id)) {
      entry.tr.remove();
      state.dom.delete(id);
    }
  }
  let cursor = body.firstElementChild;
  for (const row of rows) {
    let entry = state.dom.get(row.id);
    if (!entry) {
      const tr = el("tr", { tabindex: "-1", "data-order-id": row.id });
      entry = { tr, sig: "" };
      state.dom.set(row.id, entry);
    }
    const sig = rowSig(row);
    if (entry.sig !== sig) {
      buildRow(row, entry.tr);
      entry.sig = sig;
    }
    if (entry.tr !== cursor) body.insertBefore(entry.tr, cursor);
    else cursor = cursor.nextElementSibling;
  }
  // The roving tab stop: the active row, else the nearest one to where it was, else the first.
  if (!state.byId.has(state.activeId)) {
    const next = rows[Math.min(Math.max(oldIndex, 0), rows.length - 1)];
    state.activeId = next ? next.id : null;
    if (hadFocus && next) state.dom.get(next.id).tr.focus();
  }
  for (const [id, entry] of state.dom) entry.tr.tabIndex = id === state.activeId ? 0 : -1;
  $("queue-loading").hidden = true;
  $("queue-empty").hidden = rows.length > 0;
  const sos = rows.filter((r) => r.priority === "emergency").length;
  const escalated = rows.filter((r) => r.status === "escalated").length;
  $("queue-count").textContent = t("{n} open · {sos} SOS · {escalated} escalated", { n: rows.length, sos, escalated });
  tick();
  state.renders += 1;
  body.dataset.renders = String(state.renders);
  body.dataset.renderMs = (performance.now() - started).toFixed(1);
  // Once the SOS has its row, the row's alert replaces the placeholder (and a queue read after
  // the event without it means the SOS is closed already).
  const pending = state.pendingAlert;
  if (pending && (state.byId.has(pending.id) || askedAt > pending.at)) state.pendingAlert = null;
  renderAlerts();
}

const refreshQueue = coalesced(async () => {
  const asked = performance.now();
  renderQueue(await fetchQueue(), asked);
}, 400);

function focusRow(id) {
  const entry = state.dom.get(id);
  if (!entry) return;
  if (state.activeId && state.dom.has(state.activeId)) state.dom.get(state.activeId).tr.tabIndex = -1;
  state.activeId = id;
  entry.tr.tabIndex = 0;
  entry.tr.focus();
}

body.addEventListener("keydown", (e) => {
  const tr = e.target.closest("tr[data-order-id]");
  if (!tr || e.altKey || e.ctrlKey || e.metaKey) return;
  const index = state.rows.findIndex((r) => r.id === tr.dataset.orderId);
  const go = (i) => {
    const row = state.rows[Math.max(0, Math.min(state.rows.length - 1, i))];
    if (row) focusRow(row.id);
  };
  const step = Math.max(1, Math.floor($("queue-scroll").clientHeight / tr.offsetHeight) - 1);
  const moves = {
    ArrowDown: () => go(index + 1), ArrowUp: () => go(index - 1), j: () => go(index + 1), k: () => go(index - 1),
    Home: () => go(0), End: () => go(state.rows.length - 1),
    PageDown: () => go(index + step), PageUp: () => go(index - step),
    Enter: () => openOrder(tr.dataset.orderId), " ": () => openOrder(tr.dataset.orderId),
    "!": () => openTopAlert(),
  };
  if (moves[e.key]) {
    e.preventDefault();
    moves[e.key]();
  }
});

body.addEventListener("click", (e) => {
  const tr = e.target.closest("tr[data-order-id]");
  if (!tr) return;
  focusRow(tr.dataset.orderId);
  openOrder(tr.dataset.orderId);
});

body.addEventListener("focusin", (e) => {
  const tr = e.target.closest("tr[data-order-id]");
  if (tr && tr.dataset.orderId !== state.activeId) focusRow(tr.dataset.orderId);
});

// --- order detail ------------------------------------------------------------------------------

const detail = new Detail({
  panel: $("detail"),
  title: $("detail-title"),
  body: $("detail-body"),
  closeButton: $("detail-close"),
  names: state.names,
  zone: () => state.zone,
  onChanged: () => {
    refreshQueue(true);
    refreshMap(true);
    refreshKpis();
  },
  onClose: (id) => {
    state.detailId = null;
    $("map-panel").hidden = false;
    markCurrent();
    refreshMap(true);
    if (state.dom.has(id)) focusRow(id);
    else if (state.activeId) focusRow(state.activeId);
    else $("main").focus();
  },
});
detail.onRendered = tick;
const reloadDetail = coalesced(() => detail.load(), 500);

function markCurrent() {
  for (const [id, entry] of state.dom) {
    if (id === state.detailId) entry.tr.setAttribute("aria-current", "true");
    else entry.tr.removeAttribute("aria-current");
  }
}

function openOrder(id) {
  state.detailId = id;
  $("map-panel").hidden = true;
  markCurrent();
  detail.open(id);
}

// --- alerts: SOS and escalations, banner and sound ---------------------------------------------

function alerting() {
  return state.rows.filter((r) => (r.priority === "emergency" && OPEN_ALERT.has(r.status)) || r.status === "escalated");
}

const acknowledged = new Set(JSON.parse(sessionStorage.getItem(ACK_KEY) || "[]"));

/**
 * The alert the banner names: the newest unanswered SOS (a new one takes the banner at once),
 * else the first escalated order in the queue's order.
 */
function namedAlert(rows) {
  let newest = null;
  for (const r of rows) {
    if (r.priority !== "emergency") continue;
    if (!newest || Date.parse(r.created_at) > Date.parse(newest.created_at)) newest = r;
  }
  return newest || rows[0] || null;
}

function openTopAlert() {
  const top = namedAlert(alerting());
  if (top) {
    focusRow(top.id);
    openOrder(top.id);
  }
}

function renderAlerts() {
  const rows = alerting();
  const banner = $("alert");
  if (!rows.length && !state.pendingAlert) {
    state.alertSig = "";
    delete banner.dataset.orderId;
    banner.hidden = true;
    banner.replaceChildren();
    return;
  }
  // Rebuild only when the alerts change: the region is re-announced on every change.
  const sig = rows.map((r) => r.id + r.status + (acknowledged.has(r.id) ? "a" : "")).join() + (state.pendingAlert ? "p" + state.pendingAlert.id : "");
  if (sig !== state.alertSig) {
    state.alertSig = sig;
    // A new SOS not yet in the queue's rows is the newest of all: it takes the banner at once.
    const pending = state.pendingAlert;
    const top = pending ? null : namedAlert(rows);
    const sos = rows.filter((r) => r.priority === "emergency").length;
    const others = pending ? rows : rows.filter((r) => r !== top);
    const otherSos = others.filter((r) => r.priority === "emergency").length;
    const parts = [];
    if (top) {
      const what = top.priority === "emergency" ? t("SOS") : t("Escalated");
      parts.push(
        el("strong", { class: "alert-kind" }, what),
        el("span", { class: "alert-what" }, t("{name}, {place}", { name: top.senior_name, place: top.senior_neighbourhood }),
          " · ", words.service(top.service_code), " · ", words.status(top.status)),
        top.response_due_at ? el("span", { class: "timer", "data-due": top.response_due_at, "data-created": top.created_at }, "") : null,
      );
    } else {
      parts.push(el("strong", { class: "alert-kind" }, t("SOS")), el("span", { class: "alert-what" }, t("A senior pressed SOS. Loading…")));
    }
    if (others.length) {
      parts.push(el("span", { class: "alert-more" }, t("{n} other alerts ({sos} SOS)", { n: others.length, sos: otherSos })));
    }
    if (top) {
      parts.push(
        el("button", { type: "button", class: "alert-open", onclick: openTopAlert }, t("Open the order")),
      );
      if (rows.some((r) => !acknowledged.has(r.id))) {
        parts.push(el("button", { type: "button", class: "alert-ack", onclick: acknowledge }, t("Silence")));
      }
    }
    const namedId = pending ? pending.id : top.id;
    const kind = sos || pending ? "sos" : "escalated";
    if (namedId !== banner.dataset.orderId) {
      // Another alert took the banner: flash it again.
      banner.classList.remove("sos", "escalated");
      void banner.offsetWidth;
    }
    banner.className = "alert " + kind;
    banner.dataset.orderId = namedId;
    banner.replaceChildren(...parts.filter(Boolean));
    banner.hidden = false;
    tick();
  }
  // Sound once for every new alert (a new SOS too after an earlier one was silenced).
  const fresh = rows.filter((r) => !acknowledged.has(r.id) && !sounded.has(r.id));
  const unsounded = state.pendingAlert && !sounded.has(state.pendingAlert.id) ? state.pendingAlert : null;
  if (fresh.length || unsounded) {
    if (unsounded) sounded.add(unsounded.id);
    for (const r of fresh) sounded.add(r.id);
    siren.play(fresh.some((r) => r.priority === "emergency") || unsounded ? "sos" : "escalation");
  }
}

const sounded = new Set();

function acknowledge() {
  for (const r of alerting()) acknowledged.add(r.id);
  sessionStorage.setItem(ACK_KEY, JSON.stringify([...acknowledged].slice(-500)));
  announce(t("Alert sound silenced until the next alert."));
  renderAlerts();
  const open = document.querySelector("#alert .alert-open");
  if (open) open.focus();
}

// Repeat the sound while an alert nobody silenced stays open.
setInterval(() => {
  const loud = alerting().filter((r) => !acknowledged.has(r.id));
  if (loud.length) siren.play(loud.some((r) => r.priority === "emergency") ? "sos" : "escalation");
}, REPEAT_ALERT_MS);

/** Generated tones (Web Audio); browsers need a gesture first, so the desk turns it on once. */
class Siren {
  constructor(button) {
    this.button = button;
    this.ctx = null;
    this.wanted = localStorage.getItem(SOUND_KEY) === "on";
    this.played = 0;
    button.addEventListener("click", () => this.toggle());
    if (this.wanted) {
      this.start();
      // Until the browser allows it, the first key or click on the page lets it play.
      const unlock = () => this.start();
      document.addEventListener("pointerdown", unlock, { once: true, capture: true });
      document.addEventListener("keydown", unlock, { once: true, capture: true });
    }
    this.show();
  }

  start() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.ctx) this.ctx = new Context();
    this.ctx.onstatechange = () => this.show();
    if (this.ctx.state === "suspended") this.ctx.resume().then(() => this.show(), () => this.show());
  }

  toggle() {
    this.wanted = !this.wanted;
    localStorage.setItem(SOUND_KEY, this.wanted ? "on" : "off");
    if (this.wanted) {
      this.start();
      this.play("test");
    }
    this.show();
  }

  show() {
    const running = this.ctx && this.ctx.state === "running";
    this.button.setAttribute("aria-pressed", this.wanted ? "true" : "false");
    this.button.textContent = !this.wanted
      ? t("Enable sound")
      : running ? t("Sound on") : t("Sound blocked: click to allow");
    this.button.dataset.state = !this.wanted ? "off" : running ? "on" : "blocked";
  }

  play(kind) {
    if (!this.wanted || !this.ctx) return;
    if (this.ctx.state !== "running") {
      this.ctx.resume().catch(() => {});
      return;
    }
    // SOS: three rising pairs; escalation: two falling tones; test: one short tone.
    const notes = kind === "sos"
      ? [[880, 0], [1175, 0.18], [880, 0.5], [1175, 0.68], [880, 1.0], [1175, 1.18]]
      : kind === "escalation" ? [[784, 0], [587, 0.25]] : [[660, 0]];
    const t0 = this.ctx.currentTime + 0.02;
    for (const [freq, at] of notes) {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.type = "triangle";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + at);
      gain.gain.exponentialRampToValueAtTime(0.3, t0 + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.16);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t0 + at);
      osc.stop(t0 + at + 0.18);
    }
    this.played += 1;
    this.button.dataset.played = String(this.played);
  }
}

const siren = new Siren($("sound"));

// --- the map -----------------------------------------------------------------------------------

async function loadMap() {
  if (state.detailId) return; // hidden behind the detail; drawn again when it closes
  const data = await api("GET", "/v1/ops/map");
  for (const c of data.caregivers) state.names.set(c.id, c.name);
  const drawn = map.draw($("map"), data, { selected: state.detailId, onOrder: (id) => { focusRow(id); openOrder(id); }, zone: state.zone });
  $("map-asof").textContent = t("as of {time}", { time: words.hm(data.as_of, state.zone) });
  const extra = $("legend").querySelector(".unplaced");
  if (extra) extra.remove();
  if (drawn.unplaced) {
    $("legend").append(el("li", { class: "unplaced" }, t("{n} on duty without a position (not on the map)", { n: drawn.unplaced })));
  }
}

const refreshMap = coalesced(loadMap, 2000);

// --- KPIs --------------------------------------------------------------------------------------

async function loadKpis() {
  const k = await api("GET", "/v1/ops/kpis");
  state.zone = k.time_zone;
  const date = new Intl.DateTimeFormat(document.documentElement.lang, { dateStyle: "medium", timeZone: k.time_zone }).format(new Date(k.day_start));
  $("kpi-date").textContent = t("{date}, {zone} time, as of {time}", { date, zone: k.time_zone, time: words.hm(k.as_of, k.time_zone) });
  const show = {
    orders_placed: String(k.orders_placed),
    fill_rate: k.fill_rate === null ? "–" : Math.round(k.fill_rate * 100) + "%",
    first_offer_median_s: words.duration(k.first_offer_median_s),
    sos_first_offer_p95_s: words.duration(k.sos_first_offer_p95_s),
    sos_arrival_p95_s: words.duration(k.sos_arrival_p95_s),
    escalations: String(k.escalations),
    no_shows: String(k.no_shows),
  };
  const extra = {
    fill_rate: t("{filled} of {placed} filled", { filled: k.filled, placed: k.asap_placed }),
    sos_first_offer_p95_s: t("{n} SOS today", { n: k.sos_placed }),
    sos_arrival_p95_s: t("{n} arrived", { n: k.sos_arrived }),
    first_offer_median_s: t("{n} offered", { n: k.offered }),
    orders_placed: t("{n} completed", { n: k.completed }),
  };
  for (const dd of document.querySelectorAll("#kpis dd[data-kpi]")) {
    const key = dd.dataset.kpi;
    const value = el("span", { class: "kpi-value" }, show[key]);
    if (extra[key]) dd.replaceChildren(value, el("span", { class: "kpi-extra" }, extra[key]));
    else dd.replaceChildren(value);
  }
}

const refreshKpis = coalesced(loadKpis, 10_000);

// --- names of every caregiver of the district (the decisions name them by id) -----------------

async function loadNames() {
  let cursor = null;
  do {
    const page = await api("GET", "/v1/ops/caregivers?limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    for (const c of page.items) state.names.set(c.id, c.name);
    cursor = page.next_cursor;
  } while (cursor);
}

// --- live --------------------------------------------------------------------------------------

const ALERTING_EVENTS = new Set(["order.escalate", "order.no_show", "order.no_show_flagged"]);

function onEvent(type, data) {
  if (!data || !data.order_id) return;
  const urgent = (data.priority === "emergency" && (type === "order.place" || type === "order.placed")) || ALERTING_EVENTS.has(type);
  if (urgent && data.priority === "emergency" && !state.byId.has(data.order_id)) {
    // Show the SOS at once; the refresh fills in who and where.
    state.pendingAlert = { id: data.order_id, at: performance.now() };
    renderAlerts();
  }
  refreshQueue(urgent);
  refreshMap(urgent); // an SOS goes on the map at once too
  refreshKpis();
  if (data.order_id === state.detailId) reloadDetail();
}

let wasConnected = null;
function onState(connected) {
  const conn = $("conn");
  conn.dataset.state = connected ? "live" : "down";
  conn.textContent = connected ? t("Live") : t("Reconnecting…");
  if (connected && wasConnected === false) {
    refreshQueue(true);
    refreshMap(true);
    refreshKpis(true);
  }
  wasConnected = connected;
}

document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && detail.isOpen && !$("detail").contains(e.target)) {
    e.preventDefault();
    detail.close();
  }
});

async function start() {
  map.legend($("legend"));
  live(onEvent, onState);
  await loadKpis().catch(() => {});
  await Promise.all([refreshQueue(true), loadNames().catch(() => {})]);
  refreshMap(true);
  setInterval(tick, 1000);
  setInterval(() => refreshMap(), 20_000); // positions move without events
  setInterval(() => refreshKpis(), 60_000);
  setInterval(() => refreshQueue(), 60_000); // a safety net: timers and re-orders
}

start();
