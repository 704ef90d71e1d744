// The operator console's words for the API's codes (statuses, services, rules, cost parts) and
// its formats for times and durations. Every text goes through t() (one catalogue).
import { LANG, t } from "./doorstep.js";
import { serviceName } from "./services.js";

const STATUS = {
  pending: () => t("Waiting for dispatch"),
  offered: () => t("Offered"),
  assigned: () => t("Assigned"),
  in_progress: () => t("Visit under way"),
  completed: () => t("Completed"),
  escalated: () => t("Escalated"),
  cancelled: () => t("Cancelled"),
};
export const status = (code) => (STATUS[code] ? STATUS[code]() : code);

const PRIORITY = {
  emergency: () => t("SOS"),
  urgent: () => t("Urgent"),
  normal: () => t("Normal"),
};
export const priority = (code) => (PRIORITY[code] ? PRIORITY[code]() : code);

export const service = (code) => serviceName(code);

// Rules a caregiver breaks for a manual assignment (app/services/rules.py) and the engine's
// exclusions (app/dispatch/constraints.py Exclusion, app/services/dispatch.py).
const RULE = {
  off_duty: () => t("Not on duty"),
  blocked: () => t("Blocked by the senior"),
  gender: () => t("Not the gender the senior requires"),
  gender_preference: () => t("Not the gender the senior requires"),
  skill: () => t("Lacks a required skill"),
  missing_skill: () => t("Lacks a required skill"),
  certificate: () => t("Certificate lapses before the visit ends"),
  certificate_expired: () => t("Certificate lapses before the visit ends"),
  radius: () => t("Outside their service radius"),
  outside_radius: () => t("Outside their service radius"),
  no_position: () => t("No position reported"),
  stale_position: () => t("Position out of date"),
  shift: () => t("Not in shift then"),
  outside_shift: () => t("Not in shift then"),
  reachable: () => t("Cannot fit the visit in their day in time"),
  no_time_to_travel: () => t("No time to travel between visits"),
  caregiver_busy: () => t("Another visit at that time"),
  daily_cap: () => t("At their daily visit cap"),
  outside_window: () => t("No room left in the time window"),
  busy: () => t("Busy with other offers"),
  already_asked: () => t("Asked already"),
  available: () => t("Available"),
};
export const rule = (code) => (RULE[code] ? RULE[code]() : code.replaceAll("_", " "));

// Caregivers' skills (the catalogue's required skills; app/seed.py ALL_SKILLS).
const SKILL = {
  housekeeping: () => t("housekeeping"),
  bathing: () => t("bathing"),
  personal_care: () => t("personal care"),
  nursing: () => t("nursing"),
  medication: () => t("medication"),
  escort: () => t("escort"),
  rehabilitation: () => t("rehabilitation"),
  first_aid: () => t("first aid"),
};
export const skill = (code) => (SKILL[code] ? SKILL[code]() : code.replaceAll("_", " "));

// Why dispatch escalated, in the page's language, from the decision's code and figures
// (app/services/dispatch.py writes both; its English `reason` is the fallback for a code this
// list lacks, and for decisions recorded before the code was kept).
const ESCALATION = {
  rounds_exhausted: (x) => t("No caregiver accepted after {n} rounds of offers.", { n: x.rounds ?? "?" }),
  window_at_risk: (x, zone) => t("The time window is at risk: the visit must start by {time}.", { time: when(x.due, zone) }),
  engine_error: () => t("Dispatch could not plan this order (an internal error): place it by hand."),
  outbid: (x) => t("All {n} caregivers who could take it were given other orders.", { n: x.outbid }),
  busy: (x) => t("All {n} caregivers who could take it are busy with other offers.", { n: x.busy }),
  all_asked: (x) => t("All {n} caregivers who could take it were asked already.", { n: x.already_asked }),
  nobody_on_duty: (x) => x.caregivers
    ? t("None of the district's {n} caregivers is on duty.", { n: x.caregivers })
    : t("The district has no active caregivers."),
  no_position: (x) => t("None of the {n} caregivers on duty has reported a position.", { n: onDuty(x) }),
  skill: (x) => t("None of the {n} caregivers on duty has the skill {skill}.",
    { n: onDuty(x), skill: (x.skills || []).map(skill).join("、") }),
};
const onDuty = (x) => (x.caregivers ?? 0) - (x.excluded?.off_duty ?? 0);

/** An escalation decision's reason in words ("" when it has none). */
export function escalation(decision, zone) {
  const x = decision.explanation || {};
  const say = ESCALATION[x.code];
  if (say) return say(x, zone);
  if (x.code && x.excluded_scope === "district") {
    // One rule or several excluded everyone on duty: the counts by reason follow the sentence.
    return t("None of the {n} caregivers on duty can take it.", { n: onDuty(x) });
  }
  return decision.reason || "";
}

const PART = {
  travel: () => t("Travel"),
  delay: () => t("Delay"),
  continuity: () => t("Knows the senior"),
  preferred: () => t("Preferred by the senior"),
  language: () => t("Language"),
  workload: () => t("Workload"),
  rating: () => t("Rating"),
};
export const part = (code) => (PART[code] ? PART[code]() : code);

const KIND = {
  offer: () => t("Offer"),
  emergency: () => t("SOS broadcast"),
  batch: () => t("Batch offer"),
  auto_assign: () => t("Automatic assignment"),
  escalate: () => t("Escalation"),
  manual: () => t("Manual assignment"),
};
export const kind = (code) => (KIND[code] ? KIND[code]() : code);

const EVENT = {
  place: () => t("Placed"),
  offer: () => t("Offered"),
  decline: () => t("Declined"),
  expire: () => t("Offer expired"),
  accept: () => t("Accepted"),
  assign: () => t("Assigned by the duty desk"),
  reassign: () => t("Reassigned"),
  escalate: () => t("Escalated"),
  check_in: () => t("Checked in"),
  check_out: () => t("Checked out"),
  withdraw: () => t("Caregiver withdrew"),
  no_show: () => t("No-show"),
  cancel: () => t("Cancelled"),
};
export const event = (code) => (EVENT[code] ? EVENT[code]() : code.replaceAll("_", " "));

const VERDICT = {
  feasible: () => t("Can take it"),
  overridable: () => t("Only with an override"),
  excluded: () => t("Excluded"),
};
export const verdict = (code) => (VERDICT[code] ? VERDICT[code]() : code);

const two = (n) => String(n).padStart(2, "0");

/** A countdown: "12:05" under an hour, "1:02:05" above (whole seconds, absolute value). */
export function countdown(seconds) {
  const s = Math.abs(Math.trunc(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? h + ":" + two(m) + ":" + two(s % 60) : m + ":" + two(s % 60);
}

/** A duration in words: "45 s", "12 min", "3 h 05 min". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return t("{n} s", { n: s });
  const m = Math.round(s / 60);
  if (m < 60) return t("{n} min", { n: m });
  return t("{h} h {m} min", { h: Math.floor(m / 60), m: two(m % 60) });
}

/** Metres as "650 m" or "2.4 km". */
export function distance(metres) {
  if (metres === null || metres === undefined) return "–";
  if (metres < 1000) return t("{n} m", { n: Math.round(metres / 10) * 10 });
  return t("{n} km", { n: (metres / 1000).toFixed(1) });
}

/** Date and time in the district's zone (the operator's desk is in the district). */
export function when(iso, zone) {
  if (!iso) return "";
  const options = { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat(LANG, options).format(new Date(iso));
}

/** Clock time (hours and minutes) in the district's zone. */
export function hm(iso, zone) {
  if (!iso) return "";
  const options = { hour: "2-digit", minute: "2-digit" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat(LANG, options).format(new Date(iso));
}

/** The local date of ``ms`` (epoch milliseconds) in the district's zone, as "YYYY-MM-DD". */
export function dayKey(ms, zone) {
  const options = { year: "numeric", month: "2-digit", day: "2-digit" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat("en-CA", options).format(new Date(ms));
}

/** Whole days from the local date of ``nowMs`` to that of ``iso`` (0 today, 1 tomorrow). */
function daysFrom(iso, zone, nowMs) {
  return Math.round((Date.parse(dayKey(Date.parse(iso), zone)) - Date.parse(dayKey(nowMs, zone))) / 86_400_000);
}

/** The day in words when it is not today: "", "Tomorrow", or "Fri 12/5". */
function dayWords(iso, zone, nowMs) {
  const days = daysFrom(iso, zone, nowMs);
  if (days === 0) return "";
  if (days === 1) return t("Tomorrow");
  const options = { weekday: "short", month: "numeric", day: "numeric" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat(LANG, options).format(new Date(iso));
}

/** A time window "09:00–11:00", with its day in front when that is not today (district zone). */
export function timeWindow(startIso, endIso, zone, nowMs) {
  const span = hm(startIso, zone) + "–" + hm(endIso, zone);
  const day = dayWords(startIso, zone, nowMs);
  return day ? t("{day} {time}", { day, time: span }) : span;
}

/** A clock time "09:00", with its day in front when that is not today (district zone). */
export function hmDay(iso, zone, nowMs) {
  if (!iso) return "";
  const day = dayWords(iso, zone, nowMs);
  return day ? t("{day} {time}", { day, time: hm(iso, zone) }) : hm(iso, zone);
}
