// The caregiver's phone page (/care): duty, position sharing, live offers with a countdown and a
// chime, today's visits with check-in and check-out at the door. Everything goes through the
// public API (/v1) with the page's cookie session; offers and visits follow the event stream.

import { ApiError, announce, api, clock, el, live, phoneText, t } from "./doorstep.js";
import { serviceName } from "./services.js";

// Position reports: at most one every MIN_SEND_MS, one at least every MAX_SEND_MS while a fix is
// known, sooner when the caregiver has moved MOVED_M or more (the dispatcher's picture of the
// fleet stays fresh without draining the battery or the API).
const MIN_SEND_MS = 15_000;
const MAX_SEND_MS = 60_000;
const MOVED_M = 30;
const ACTIVE = new Set(["assigned", "in_progress"]);

// Decline in one tap: the reason an operator reads (in the caregiver's words, as shown).
const DECLINE_REASONS = [
  t("Too far away"),
  t("Busy with another visit"),
  t("Cannot make that time"),
  t("Not able to do this service"),
];
const VISIT_STATUS = {
  assigned: t("Yours: on the way"),
  in_progress: t("In progress"),
  completed: t("Done"),
  withdrawn: t("Withdrawn"),
  reassigned: t("Given to someone else"),
  cancelled: t("Cancelled"),
  no_show: t("Missed"),
};

const $ = (id) => document.getElementById(id);
const state = {
  onDuty: false,
  offers: new Map(), // offer id -> {offer, deadline (performance.now() ms), total_s, node}
  seenOffers: new Set(),
  visits: new Map(), // visit id -> {sig, node, busy}
  watch: null,
  fix: null, // the latest {lat, lon, at}
  sent: null, // the last sent {lat, lon, sentAt}
  sending: false,
  due: null, // the timer for the next position report, and when it fires (ms)
  dueAt: 0,
  audio: null,
};


/** Straight-line metres between two points (for the throttle only; the API measures check-in). */
function metres(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * 6_371_000 * Math.asin(Math.sqrt(h));
}

function number(value) {
  return new Intl.NumberFormat(document.documentElement.lang || "zh-CN").format(value);
}

function distanceText(m) {
  return m < 1000 ? t("{m} m", { m: number(Math.round(m / 10) * 10) }) : t("{km} km", { km: (m / 1000).toFixed(1) });
}

/** Show a card's message: progress plainly, a problem marked as one (words and colour). */
function say(node, text, problem = false) {
  node.textContent = text;
  node.classList.toggle("problem", problem);
}

function problemText(err) {
  if (err instanceof ApiError && err.code === "offline") return t("No connection. Trying again…");
  return t("That did not work: {detail}", { detail: err.message || err.code || "" });
}

// ---- sound and vibration -------------------------------------------------------------------

// Browsers may allow sound only after the person has touched the page: any tap unlocks it, and
// while it is locked a button says so (an offer that cannot ring is easy to miss).
function unlockAudio() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  if (!state.audio) {
    state.audio = new Context();
    state.audio.addEventListener("statechange", showSound);
  }
  if (state.audio.state === "suspended") state.audio.resume().catch(() => {});
  showSound();
}

function showSound() {
  $("sound").hidden = !state.audio || state.audio.state === "running" || !state.onDuty;
}

document.addEventListener("pointerdown", unlockAudio);
document.addEventListener("keydown", unlockAudio);

/** A two-tone chime made on the phone (no audio file): three times for an emergency. */
function chime(urgent) {
  const ctx = state.audio;
  if (ctx && ctx.state === "running") {
    const rounds = urgent ? 3 : 1;
    let at = ctx.currentTime + 0.02;
    for (let round = 0; round < rounds; round += 1) {
      for (const freq of [880, 660]) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.5, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.28);
        osc.connect(gain).connect(ctx.destination);
        osc.start(at);
        osc.stop(at + 0.3);
        at += 0.32;
      }
      at += 0.15;
    }
  }
  try {
    navigator.vibrate?.(urgent ? [300, 120, 300, 120, 300] : [250, 100, 250]);
  } catch {
    // Not allowed (no tap yet, or the browser has no vibration): the chime and the card suffice.
  }
}

// ---- duty and position ----------------------------------------------------------------------

function showDuty() {
  const card = $("duty");
  card.classList.toggle("is-on", state.onDuty);
  card.classList.toggle("is-off", !state.onDuty);
  $("duty-text").textContent = state.onDuty ? t("On duty") : t("Off duty");
  const button = $("duty-toggle");
  button.textContent = state.onDuty ? t("Go off duty") : t("Go on duty");
  button.classList.toggle("primary", !state.onDuty);
  button.disabled = false;
  $("position").hidden = !state.onDuty;
  showSound();
}

function positionStatus(text, problem = false) {
  const box = $("position");
  box.classList.toggle("error", problem);
  box.classList.toggle("notice", !problem);
  $("position-status").textContent = text;
  $("position-retry").hidden = !problem;
}

async function sendPosition(force = false) {
  const fix = state.fix;
  if (!fix || !state.onDuty || state.sending) return;
  const now = Date.now();
  if (!force && state.sent) {
    const since = now - state.sent.sentAt;
    const wait = (metres(state.sent, fix) >= MOVED_M ? MIN_SEND_MS : MAX_SEND_MS) - since;
    if (wait > 0) {
      // Not yet: the latest fix goes when it is due (one timer, whatever arrives meanwhile).
      if (!state.due || now + wait < state.dueAt) {
        clearTimeout(state.due);
        state.dueAt = now + wait;
        state.due = setTimeout(() => {
          state.due = null;
          sendPosition(false);
        }, wait);
      }
      return;
    }
  }
  clearTimeout(state.due);
  state.due = null;
  state.sending = true;
  try {
    await api("PUT", "/v1/caregivers/me/position", {
      lat: fix.lat,
      lon: fix.lon,
      recorded_at: new Date(Math.min(fix.at, now)).toISOString(),
    });
    state.sent = { lat: fix.lat, lon: fix.lon, sentAt: now };
    positionStatus(t("Sharing your location (last sent {time}).", { time: clock(new Date(now).toISOString()) }));
  } catch (err) {
    positionStatus(problemText(err), true);
  } finally {
    state.sending = false;
  }
}

function locationError(err) {
  if (err && err.code === 1) {
    return t("Location is blocked. Without it you get no offers and cannot check in. Allow location for this site in the browser's settings, then tap Try again.");
  }
  return t("Cannot find your position yet. Go outdoors or turn on location, then tap Try again.");
}

function watchPosition() {
  state.watch = navigator.geolocation.watchPosition(
    (pos) => {
      state.fix = { lat: pos.coords.latitude, lon: pos.coords.longitude, at: pos.timestamp || Date.now() };
      sendPosition(state.sent === null);
    },
    (err) => {
      // A moment without a fix after a good one is ordinary (a tunnel, a lift): keep quiet.
      if (err.code === 1 || !state.fix) positionStatus(locationError(err), true);
    },
    { enableHighAccuracy: true, maximumAge: 10_000, timeout: 30_000 },
  );
}

function startWatch() {
  stopWatch();
  if (!navigator.geolocation) {
    positionStatus(t("This browser cannot share a location: offers need it. Use the phone's own browser."), true);
    return;
  }
  positionStatus(t("Finding your position…"));
  watchPosition();
}

function stopWatch() {
  if (state.watch !== null) navigator.geolocation.clearWatch(state.watch);
  clearTimeout(state.due);
  state.due = null;
  state.watch = null;
  state.fix = null;
  state.sent = null;
}

async function toggleDuty() {
  const button = $("duty-toggle");
  button.disabled = true;
  try {
    const me = await api("PUT", "/v1/caregivers/me/duty", { on_duty: !state.onDuty });
    state.onDuty = me.on_duty;
    announce(state.onDuty ? t("You are on duty. Offers will ring here.") : t("You are off duty. No new offers will come."));
    if (state.onDuty) startWatch();
    else stopWatch();
  } catch (err) {
    announce(problemText(err));
  }
  showDuty();
}

/** One fresh fix now, for check-in. The position watch pauses meanwhile: a one-off request
 * waits behind a running watch in some browsers until the position changes. */
async function currentPosition() {
  if (!navigator.geolocation) throw { code: 2 };
  const watching = state.watch !== null;
  if (watching) {
    navigator.geolocation.clearWatch(state.watch);
    state.watch = null;
  }
  try {
    const pos = await new Promise((resolve, reject) => {
      navigator.geolocation.getCurrentPosition(resolve, reject, {
        enableHighAccuracy: true,
        maximumAge: 0,
        timeout: 20_000,
      });
    });
    state.fix = { lat: pos.coords.latitude, lon: pos.coords.longitude, at: pos.timestamp || Date.now() };
    return pos;
  } finally {
    if (watching && state.onDuty && state.watch === null) watchPosition();
  }
}

// ---- offers ---------------------------------------------------------------------------------

function secondsLeft(entry) {
  return Math.max(0, Math.ceil((entry.deadline - performance.now()) / 1000));
}

function offerCard(offer) {
  const urgent = offer.priority === "emergency";
  const titleId = `offer-${offer.id}-title`;
  const message = el("p", { class: "card-message", role: "alert" });
  const accept = el(
    "button",
    { type: "button", class: "big primary accept", "aria-describedby": titleId },
    t("Accept"),
  );
  accept.addEventListener("click", () => answer(offer.id, "accept"));
  const reasons = DECLINE_REASONS.map((reason) => {
    const b = el("button", { type: "button", class: "reason" }, reason);
    b.addEventListener("click", () => answer(offer.id, "decline", reason));
    return b;
  });
  // Declining takes two taps, "Decline…" then a reason, well apart from Accept: a decline is
  // final (the API has no undo; the order goes to the next caregiver at once), so a slip of the
  // thumb under Accept must not be one.
  const declineId = `offer-${offer.id}-decline`;
  const reasonsId = `offer-${offer.id}-reasons`;
  const decline = el(
    "div",
    { class: "decline", id: reasonsId, hidden: true },
    el("p", { class: "decline-label", id: declineId }, t("Not taking it, because:")),
    el("div", { class: "reasons", role: "group", "aria-labelledby": declineId }, reasons),
  );
  const toggle = el(
    "button",
    { type: "button", class: "decline-toggle", "aria-expanded": "false", "aria-controls": reasonsId },
    t("Decline…"),
  );
  toggle.addEventListener("click", () => {
    const open = decline.hidden;
    decline.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? t("Keep the offer (hide the reasons)") : t("Decline…");
    if (open) reasons[0].focus();
  });
  const when = offer.asap
    ? t("As soon as possible: start about {time}", { time: clock(offer.starts_at) })
    : t("Start {time}", { time: clock(offer.starts_at) });
  return el(
    "li",
    { class: `card offer${urgent ? " sos" : ""}`, dataset: { offerId: offer.id } },
    el(
      "p",
      { class: "tag" },
      urgent ? t("SOS emergency") : offer.priority === "urgent" ? t("Urgent offer") : t("New offer"),
    ),
    el("h3", { id: titleId }, serviceName(offer.service_code), " · ", offer.neighbourhood),
    el(
      "p",
      { class: "countdown" },
      el("span", { class: "seconds" }, ""),
    ),
    el("div", { class: "timebar", "aria-hidden": "true" }, el("div", { class: "timebar-fill" })),
    el(
      "ul",
      { class: "facts" },
      el("li", {}, when),
      el("li", {}, t("{minutes} min on site", { minutes: offer.duration_min })),
      el(
        "li",
        {},
        t("About {minutes} min away ({distance})", {
          minutes: Math.max(1, Math.round(offer.travel_s / 60)),
          distance: distanceText(offer.distance_m),
        }),
      ),
    ),
    accept,
    el("div", { class: "decline-area" }, toggle, decline),
    message,
  );
}

function tick() {
  for (const [id, entry] of state.offers) {
    const left = secondsLeft(entry);
    const seconds = entry.node.querySelector(".seconds");
    const fill = entry.node.querySelector(".timebar-fill");
    fill.style.width = `${entry.total_s ? Math.min(100, (100 * left) / entry.total_s) : 0}%`;
    entry.node.classList.toggle("hurry", left <= 10);
    if (left > 0) {
      seconds.textContent = t("{seconds} s left to answer", { seconds: left });
    } else if (!entry.expired) {
      entry.expired = true;
      seconds.textContent = t("Time is up: the offer went to someone else.");
      for (const b of entry.node.querySelectorAll("button")) b.disabled = true;
      setTimeout(() => {
        if (state.offers.get(id) === entry) dropOffer(id);
      }, 4000);
    }
  }
}

function dropOffer(id) {
  const entry = state.offers.get(id);
  if (entry) entry.node.remove();
  state.offers.delete(id);
  $("offers-empty").hidden = state.offers.size > 0;
}

async function refreshOffers() {
  let page;
  try {
    page = await api("GET", "/v1/offers?status=open&limit=20");
  } catch (err) {
    return;
  }
  const fetched = performance.now();
  const open = new Set();
  const fresh = [];
  for (const offer of page.items) {
    if (offer.expires_in_s <= 0) continue;
    open.add(offer.id);
    const entry = state.offers.get(offer.id);
    const deadline = fetched + offer.expires_in_s * 1000;
    if (entry) {
      entry.deadline = deadline;
      continue;
    }
    const total = Math.max(offer.expires_in_s, Math.round((Date.parse(offer.deadline) - Date.parse(offer.created_at)) / 1000));
    const node = offerCard(offer);
    state.offers.set(offer.id, { offer, deadline, total_s: total, node, expired: false });
    $("offers").append(node);
    if (!state.seenOffers.has(offer.id)) {
      state.seenOffers.add(offer.id);
      fresh.push(offer);
    }
  }
  for (const id of [...state.offers.keys()]) {
    const entry = state.offers.get(id);
    if (!open.has(id) && !entry.busy && !entry.expired) dropOffer(id);
  }
  $("offers-empty").hidden = state.offers.size > 0;
  tick();
  if (fresh.length) {
    const urgent = fresh.some((o) => o.priority === "emergency");
    chime(urgent);
    const first = fresh[0];
    announce(t("New offer: {service} in {place}.", { service: serviceName(first.service_code), place: first.neighbourhood }));
  }
}

const OFFER_PROBLEMS = {
  offer_expired: t("Too late: this offer has expired."),
  order_taken: t("Another caregiver has already taken this order."),
  offer_withdrawn: t("This offer was withdrawn."),
  offer_declined: t("You already declined this offer."),
  offer_accepted: t("You already accepted this offer."),
  caregiver_busy: t("You already have a visit at that time."),
};

async function answer(id, verb, reason = "") {
  const entry = state.offers.get(id);
  if (!entry) return;
  const buttons = entry.node.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  entry.busy = true;
  const message = entry.node.querySelector(".card-message");
  say(message, verb === "accept" ? t("Accepting…") : t("Declining…"));
  try {
    if (verb === "accept") {
      await api("POST", `/v1/offers/${id}/accept`);
      announce(t("Accepted. The visit is in today's list below."));
    } else {
      await api("POST", `/v1/offers/${id}/decline`, { reason });
      announce(t("Declined: {reason}.", { reason }));
    }
    dropOffer(id);
    refreshVisits();
  } catch (err) {
    say(message, OFFER_PROBLEMS[err.code] || problemText(err), true);
    entry.busy = false;
    if (err.code === "offline") {
      for (const b of buttons) b.disabled = false;
    } else {
      entry.expired = true;
      setTimeout(() => dropOffer(id), 5000);
    }
  }
}

// ---- visits ---------------------------------------------------------------------------------

function isToday(iso) {
  const d = new Date(iso);
  const now = new Date();
  return d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
}

function mapLinks(senior) {
  const lat = senior.lat.toFixed(6);
  const lon = senior.lon.toFixed(6);
  // geo: opens the phone's map app (Android); the https link is for phones without geo: and
  // opens Amap (the app if installed), given WGS-84 coordinates as the phone reports them.
  const web = `https://uri.amap.com/marker?position=${lon},${lat}&coordinate=wgs84&callnative=1`;
  return el(
    "div",
    { class: "maps" },
    el("a", { class: "button big navigate", href: `geo:${lat},${lon}?q=${lat},${lon}` }, t("Navigate in the map app")),
    el("a", { class: "web-map", href: web, target: "_blank", rel: "noopener noreferrer" }, t("No map app? Open the web map")),
  );
}

function signature(visit) {
  const { distance_m: _ignored, ...rest } = visit;
  return JSON.stringify(rest);
}

function distanceLine(visit) {
  if (visit.distance_m === null || visit.distance_m === undefined) return "";
  return t("About {distance} from your last position.", { distance: distanceText(visit.distance_m) });
}

function visitCard(visit) {
  const senior = visit.senior;
  const message = el("p", { class: "card-message", role: "alert" });
  const titleId = `visit-${visit.id}-title`;
  const children = [
    el(
      "p",
      { class: "when" },
      el("span", { class: "time" }, `${clock(visit.checked_in_at || visit.starts_at)}–${clock(visit.checked_out_at || visit.ends_at)}`),
      el("span", { class: `badge status-${visit.status}` }, VISIT_STATUS[visit.status] || visit.status),
    ),
    el(
      "h3",
      { id: titleId },
      visit.priority === "emergency" ? `${t("SOS emergency")} · ` : "",
      serviceName(visit.service_code),
      " · ",
      senior ? senior.name : visit.neighbourhood,
    ),
  ];
  if (senior) {
    children.push(
      el("p", { class: "address" }, senior.address),
      el("p", { class: "phone" }, el("a", { href: `tel:${senior.phone}` }, t("Call {phone}", { phone: phoneText(senior.phone) }))),
    );
    if (senior.care_notes) {
      children.push(el("div", { class: "care-notes" }, el("p", { class: "label" }, t("Care notes")), el("p", {}, senior.care_notes)));
    }
    if (visit.status === "assigned") {
      children.push(el("p", { class: "small distance" }, distanceLine(visit)));
      children.push(mapLinks(senior));
      const checkIn = el("button", { type: "button", class: "big primary check-in", "aria-describedby": titleId }, t("Check in at the door"));
      checkIn.addEventListener("click", () => doCheckIn(visit, checkIn, message));
      children.push(checkIn);
    }
    if (visit.status === "in_progress") {
      const notesId = `visit-${visit.id}-notes`;
      const notes = el("textarea", { id: notesId, class: "notes", rows: "3", maxlength: "2000" });
      const checkOut = el("button", { type: "button", class: "big primary check-out", "aria-describedby": titleId }, t("Check out"));
      checkOut.addEventListener("click", () => doCheckOut(visit, notes, checkOut, message));
      children.push(
        el("p", { class: "small" }, t("Checked in at {time}.", { time: clock(visit.checked_in_at) })),
        el("label", { for: notesId }, t("Notes for the record (optional)")),
        notes,
        checkOut,
      );
    }
  }
  if (visit.status === "completed" && visit.actual_duration_min !== null) {
    children.push(el("p", { class: "small" }, t("Finished after {minutes} min.", { minutes: visit.actual_duration_min })));
  }
  children.push(message);
  return el("li", { class: `card visit status-${visit.status}`, dataset: { visitId: visit.id, status: visit.status } }, children);
}

let visitsLoading = null;
let visitsAgain = false;

async function refreshVisits() {
  // One refresh at a time; a request during one runs once more after it (nothing missed).
  if (visitsLoading) {
    visitsAgain = true;
    return visitsLoading;
  }
  visitsLoading = loadVisits().finally(() => {
    visitsLoading = null;
    if (visitsAgain) {
      visitsAgain = false;
      refreshVisits();
    }
  });
  return visitsLoading;
}

async function loadVisits() {
  let page;
  try {
    page = await api("GET", "/v1/visits?limit=50");
  } catch (err) {
    return;
  }
  const today = page.items.filter((v) => ACTIVE.has(v.status) || isToday(v.starts_at));
  // The address and care notes come only with one visit, only while it is the caregiver's.
  const full = await Promise.all(
    today.map((v) => (ACTIVE.has(v.status) ? api("GET", `/v1/visits/${v.id}`).catch(() => v) : v)),
  );
  full.sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
  // A card is rebuilt only when its visit changed: a refresh (an event, another tap) never
  // wipes a message being shown, a note being typed or a check-in on its way.
  const cards = [];
  for (const visit of full) {
    const sig = signature(visit);
    let entry = state.visits.get(visit.id);
    if (!entry || (entry.sig !== sig && !entry.busy)) {
      entry = { sig, node: visitCard(visit), busy: false };
      state.visits.set(visit.id, entry);
    }
    const distance = entry.node.querySelector(".distance");
    if (distance) distance.textContent = distanceLine(visit);
    cards.push(entry.node);
  }
  const shown = new Set(full.map((v) => v.id));
  for (const id of [...state.visits.keys()]) if (!shown.has(id)) state.visits.delete(id);
  const list = $("visits");
  const focused = document.activeElement;
  list.replaceChildren(...cards);
  if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus();
  $("visits-empty").hidden = full.length > 0;
}

function setBusy(visit, busy) {
  const entry = state.visits.get(visit.id);
  if (entry) entry.busy = busy;
}

async function doCheckIn(visit, button, message) {
  button.disabled = true;
  setBusy(visit, true);
  say(message, t("Finding your position…"));
  let pos;
  try {
    pos = await currentPosition();
  } catch (err) {
    say(
      message,
      err && err.code === 1
        ? t("Location is blocked, so the phone cannot show you are at the door. Allow location for this site in the browser's settings, or call the duty desk.")
        : t("Cannot find your position. Step outside or turn on location, then try again."),
      true,
    );
    button.disabled = false;
    setBusy(visit, false);
    return;
  }
  say(message, t("Checking in…"));
  try {
    await api("POST", `/v1/visits/${visit.id}/check-in`, { lat: pos.coords.latitude, lon: pos.coords.longitude });
    announce(t("Checked in. Take good care."));
    setBusy(visit, false);
    await refreshVisits();
  } catch (err) {
    if (err.code === "too_far") {
      const p = err.problem;
      say(
        message,
        t("You are {distance} m from the senior's home. Check-in works within {radius} m of the door: go closer and try again.", {
          distance: number(Math.round(p.distance_m)),
          radius: number(Math.round(p.radius_m)),
        }),
        true,
      );
      message.dataset.distanceM = String(Math.round(p.distance_m));
    } else if (err.code === "too_early") {
      say(message, t("Too early: check-in opens at {time}.", { time: clock(err.problem.opens_at) }), true);
    } else {
      say(message, problemText(err), true);
    }
    button.disabled = false;
    setBusy(visit, false);
  }
}

/** Minutes planned and minutes since check-in, when less than half the plan has passed (a
 * check-out that early is more likely a slip than a finished visit); otherwise null. */
function earlyCheckOut(visit) {
  const planned = Math.round((Date.parse(visit.ends_at) - Date.parse(visit.starts_at)) / 60000);
  const elapsed = Math.max(0, (Date.now() - Date.parse(visit.checked_in_at)) / 60000);
  if (!visit.checked_in_at || !(planned > 0) || elapsed >= planned / 2) return null;
  return { planned, elapsed: Math.floor(elapsed) };
}

/** Ask in the card, no pop-up: finish now, or back to the visit. */
function confirmCheckOut(visit, early, notes, button, message) {
  setBusy(visit, true); // a refresh must not rebuild the card under the question
  const questionId = `visit-${visit.id}-early`;
  const question =
    early.elapsed < 1
      ? t("Planned {planned} min, less than a minute so far. Finish the visit?", { planned: early.planned })
      : t("Planned {planned} min, only {elapsed} min so far. Finish the visit?", early);
  const yes = el("button", { type: "button", class: "big primary confirm-check-out" }, t("Yes, finish and check out"));
  const back = el("button", { type: "button", class: "big back" }, t("No, back to the visit"));
  const box = el(
    "div",
    { class: "early", role: "group", "aria-labelledby": questionId },
    el("p", { class: "early-question", id: questionId }, question),
    yes,
    back,
  );
  button.hidden = true;
  button.after(box);
  yes.addEventListener("click", () => {
    box.remove();
    button.hidden = false;
    doCheckOut(visit, notes, button, message, true);
  });
  back.addEventListener("click", () => {
    box.remove();
    button.hidden = false;
    setBusy(visit, false);
    button.focus();
  });
  yes.focus();
}

async function doCheckOut(visit, notes, button, message, confirmed = false) {
  const early = confirmed ? null : earlyCheckOut(visit);
  if (early) {
    say(message, "");
    confirmCheckOut(visit, early, notes, button, message);
    return;
  }
  button.disabled = true;
  setBusy(visit, true);
  say(message, t("Checking out…"));
  try {
    await api("POST", `/v1/visits/${visit.id}/check-out`, { notes: notes.value.trim() });
    announce(t("Checked out. Thank you!"));
    setBusy(visit, false);
    await refreshVisits();
  } catch (err) {
    say(message, problemText(err), true);
    button.disabled = false;
    setBusy(visit, false);
  }
}

// ---- live -----------------------------------------------------------------------------------

let pending = null;
function soon(offers, visits) {
  // Events come in bursts (an accept is an offer event and an order event): one refresh each.
  pending = pending || { offers: false, visits: false };
  pending.offers ||= offers;
  pending.visits ||= visits;
  setTimeout(() => {
    if (!pending) return;
    const { offers: o, visits: v } = pending;
    pending = null;
    if (o) refreshOffers();
    if (v) refreshVisits();
  }, 120);
}

function onEvent(type) {
  if (type.startsWith("offer.")) soon(true, false);
  else if (type.startsWith("order.")) soon(false, true);
}

let everConnected = false;
function onState(connected) {
  const box = $("connection");
  if (connected) {
    box.hidden = true;
    // After a drop, catch up with anything the stream could not replay (expired offers).
    if (everConnected) soon(true, true);
    everConnected = true;
  } else {
    box.textContent = t("No connection. Trying again…");
    box.hidden = false;
  }
}

async function start() {
  $("duty-toggle").addEventListener("click", toggleDuty);
  $("position-retry").addEventListener("click", () => state.onDuty && startWatch());
  $("sound").addEventListener("click", () => {
    unlockAudio();
    setTimeout(() => chime(false), 100);
  });
  unlockAudio();
  try {
    const me = await api("GET", "/v1/caregivers/me");
    state.onDuty = me.on_duty;
  } catch (err) {
    announce(problemText(err));
  }
  showDuty();
  if (state.onDuty) startWatch();
  live(onEvent, onState);
  await Promise.all([refreshOffers(), refreshVisits()]);
  setInterval(tick, 500);
  setInterval(() => sendPosition(false), MIN_SEND_MS);
  document.body.dataset.ready = "true";
}

start();
