// The order detail panel of the operator console: the order and the senior's contact, manual
// assignment from the engine's ranked candidates (an override needs a reason), cancel with a
// reason, the dispatch decisions with the engine's explanation, and the history.
import { ApiError, announce, api, el, phoneText, t } from "./doorstep.js";
import * as words from "./ops-text.js";

const ASSIGNABLE = new Set(["pending", "offered", "escalated"]);
const CANCELLABLE = new Set(["pending", "offered", "assigned", "escalated"]);

function problemText(err) {
  if (err instanceof ApiError) return err.problem.detail || err.problem.title || err.message;
  return String(err);
}

function fact(label, ...value) {
  return el("div", { class: "fact" }, el("dt", {}, label), el("dd", {}, ...value));
}

/**
 * The panel. ``names``: Map caregiver id → name (filled by the console); ``zone()``: the
 * district's time zone; ``onChanged()``: after an assignment or a cancellation;
 * ``onClose(id)``: after the panel closed (focus goes back to the queue).
 */
export class Detail {
  constructor({ panel, title, body, closeButton, names, zone, onChanged, onClose }) {
    Object.assign(this, { panel, title, body, names, zone, onChanged, onClose });
    this.id = null;
    this.order = null;
    this.candidates = null;
    this.loading = null;
    closeButton.addEventListener("click", () => this.close());
    panel.addEventListener("keydown", (e) => this.keydown(e));
  }

  get isOpen() {
    return this.id !== null;
  }

  name(id) {
    return this.names.get(id) || t("Unknown caregiver");
  }

  /** Open order ``id``; focus the panel once it is drawn. */
  async open(id) {
    this.id = id;
    this.order = null;
    this.candidates = null;
    this.form = null;
    this.panel.hidden = false;
    this.title.textContent = t("Loading the order…");
    this.body.replaceChildren();
    this.panel.focus();
    await this.load();
  }

  close() {
    if (this.id === null) return;
    const id = this.id;
    this.id = null;
    this.order = null;
    this.panel.hidden = true;
    this.onClose(id);
  }

  /** Reload the open order (after a live event about it), keeping any form being filled. */
  async load() {
    const id = this.id;
    if (id === null) return;
    try {
      const order = await api("GET", "/v1/ops/orders/" + id);
      let candidates = null;
      if (ASSIGNABLE.has(order.status)) {
        candidates = await api("GET", "/v1/ops/orders/" + id + "/candidates").catch((err) => {
          if (err instanceof ApiError && err.status === 409) return null;
          throw err;
        });
      }
      if (this.id !== id) return;
      for (const c of candidates?.candidates || []) this.names.set(c.caregiver_id, c.name);
      this.order = order;
      this.candidates = candidates;
      if (this.form && !ASSIGNABLE.has(order.status) && this.form.kind === "assign") this.form = null;
      if (this.form && !CANCELLABLE.has(order.status)) this.form = null;
      this.render();
    } catch (err) {
      if (this.id !== id) return;
      if (err instanceof ApiError && err.status === 404) {
        this.title.textContent = t("Order not found");
        this.body.replaceChildren(el("p", { class: "error" }, t("This order is not in your district, or no longer exists.")));
        return;
      }
      this.body.replaceChildren(el("p", { class: "error", role: "alert" }, t("Could not load the order: {error}", { error: problemText(err) })));
    }
  }

  render() {
    const o = this.order;
    const zone = this.zone();
    const active = document.activeElement;
    const keep = active && this.body.contains(active) ? active.id : null;
    this.title.textContent = o.senior_name + " · " + words.service(o.service_code);
    const people = [];
    if (o.caregiver_name) people.push(fact(t("Caregiver"), o.caregiver_name));
    if (o.offered?.length) people.push(fact(t("Offered to"), o.offered.map((c) => c.name).join("、")));
    const span = o.asap
      ? t("As soon as possible")
      : words.when(o.window_start, zone) + " – " + words.hm(o.window_end, zone);
    const summary = el("dl", { class: "facts" },
      fact(t("Status"), el("span", { class: "badge s-" + o.status }, words.status(o.status)),
        " ", el("span", { class: "badge p-" + o.priority }, words.priority(o.priority))),
      // A timer runs until check-in; a visit under way says so; a closed order has none.
      o.response_due_at
        ? fact(t("Time left"), el("span", { class: "timer", "data-due": o.response_due_at, "data-created": o.created_at }, ""))
        : o.status === "in_progress" ? fact(t("Time left"), t("Visit under way")) : null,
      fact(t("When"), span, " · ", t("{n} min", { n: o.duration_min })),
      fact(t("Placed"), words.when(o.created_at, zone)),
      ...people,
      fact(t("Address"), o.senior.neighbourhood + " · " + o.senior.address),
      fact(t("Phone"), el("a", { href: "tel:" + o.senior.phone }, phoneText(o.senior.phone))),
      o.senior.emergency_contacts?.length
        ? fact(t("Emergency contact"), o.senior.emergency_contacts.map((c) => c.name + " " + phoneText(c.phone)).join("、"))
        : null,
      o.senior.care_notes ? fact(t("Care notes"), o.senior.care_notes) : null,
      o.notes ? fact(t("Order note"), o.notes) : null,
      o.escalation_reason ? fact(t("Why escalated"), this.whyEscalated(zone)) : null,
    );
    const parts = [summary, this.actions(), this.decisions(), this.history()];
    this.body.replaceChildren(...parts.filter(Boolean));
    this.onRendered?.();
    if (keep) document.getElementById(keep)?.focus();
  }

  // --- actions -----------------------------------------------------------------------------

  actions() {
    const o = this.order;
    const box = el("section", { class: "actions", "aria-labelledby": "actions-title" },
      el("h3", { id: "actions-title" }, t("Actions")));
    if (ASSIGNABLE.has(o.status)) box.append(this.candidateTable());
    if (this.form?.kind === "assign") box.append(this.assignForm());
    if (CANCELLABLE.has(o.status)) {
      if (this.form?.kind === "cancel") box.append(this.cancelForm());
      else {
        box.append(el("p", {}, el("button", {
          type: "button", id: "cancel-open", class: "danger-outline",
          onclick: () => this.openForm({ kind: "cancel" }),
        }, t("Cancel the order…"))));
      }
    }
    if (box.children.length === 1) box.append(el("p", { class: "small" }, t("Nothing to do here: the visit is under way or over.")));
    return box;
  }

  candidateTable() {
    const list = this.candidates?.candidates;
    if (!list) return el("p", { class: "small" }, t("Loading the candidates…"));
    if (!list.length) return el("p", {}, t("The district has no active caregivers to assign."));
    const zone = this.zone();
    const rows = list.map((c) => {
      let action = "";
      if (c.verdict === "feasible") {
        action = el("button", {
          type: "button", class: "primary small-button", "data-assign": c.caregiver_id,
          "aria-label": t("Assign {name}", { name: c.name }),
          onclick: () => this.openForm({ kind: "assign", candidate: c, override: false }),
        }, t("Assign"));
      } else if (c.verdict === "overridable") {
        action = el("button", {
          type: "button", class: "small-button", "data-override": c.caregiver_id,
          "aria-label": t("Assign {name} with an override", { name: c.name }),
          onclick: () => this.openForm({ kind: "assign", candidate: c, override: true }),
        }, t("Override…"));
      }
      const rules = c.rules.map((r) => el("li", { class: r.overridable ? "soft" : "hard" },
        words.rule(r.code), r.overridable ? "" : el("span", { class: "sr-only" }, " (" + t("cannot be overridden") + ")")));
      return el("tr", { class: "v-" + c.verdict, "data-candidate": c.caregiver_id },
        el("td", { class: "num" }, c.rank ?? "–"),
        el("th", { scope: "row" }, el("span", { class: "cand-name" }, c.name),
          el("span", { class: "cand-who" },
            c.phone ? el("a", { href: "tel:" + c.phone, "aria-label": t("Call {name}, {phone}", { name: c.name, phone: phoneText(c.phone) }) }, phoneText(c.phone)) : null,
            c.provider_name ? el("span", { class: "cand-provider" }, c.provider_name) : null)),
        el("td", {}, el("span", { class: "verdict v-" + c.verdict }, words.verdict(c.verdict))),
        el("td", { class: "num" }, words.distance(c.distance_m)),
        el("td", { class: "num" }, c.travel_s === null ? "–" : words.duration(c.travel_s)),
        el("td", { class: "num" }, c.starts_at ? words.hmDay(c.starts_at, zone, Date.parse(this.candidates.as_of)) : "–"),
        el("td", { class: "num" }, c.cost === null ? "–" : Math.round(c.cost)),
        el("td", {}, rules.length ? el("ul", { class: "rules" }, rules) : "–"),
        el("td", {}, action),
      );
    });
    return el("div", { class: "candidates" },
      el("h4", { id: "cand-title" }, t("Candidates, best first")),
      el("table", { class: "cand-table", "aria-labelledby": "cand-title" },
        el("thead", {}, el("tr", {},
          el("th", { scope: "col" }, t("Rank")),
          el("th", { scope: "col" }, t("Caregiver")),
          el("th", { scope: "col" }, t("Verdict")),
          el("th", { scope: "col" }, t("Distance")),
          el("th", { scope: "col" }, t("Travel")),
          el("th", { scope: "col" }, t("Start")),
          el("th", { scope: "col" }, t("Cost")),
          el("th", { scope: "col" }, t("Rules broken")),
          el("th", { scope: "col" }, el("span", { class: "sr-only" }, t("Action"))))),
        el("tbody", {}, rows)));
  }

  openForm(form) {
    this.form = { ...form, opener: document.activeElement?.getAttribute("data-assign") || document.activeElement?.getAttribute("data-override") || document.activeElement?.id };
    this.render();
    document.getElementById(form.kind === "cancel" ? "cancel-reason" : "assign-reason")?.focus();
  }

  closeForm() {
    const opener = this.form?.opener;
    this.form = null;
    this.render();
    const back = opener && (document.querySelector('[data-assign="' + opener + '"], [data-override="' + opener + '"]') || document.getElementById(opener));
    (back || this.panel).focus();
  }

  assignForm() {
    const { candidate: c, override, error } = this.form;
    const soft = c.rules.filter((r) => r.overridable);
    const form = el("form", { class: "subform", id: "assign-form", novalidate: true, "aria-labelledby": "assign-title" },
      el("h4", { id: "assign-title" }, override
        ? t("Assign {name} with an override", { name: c.name })
        : t("Assign {name}", { name: c.name })),
      override ? el("p", {}, t("This sets aside:"), " ", soft.map((r) => words.rule(r.code)).join("、")) : null,
      el("label", { for: "assign-reason" }, override ? t("Reason (required)") : t("Reason (optional)")),
      el("input", {
        id: "assign-reason", name: "reason", maxlength: 500, autocomplete: "off",
        required: override, "aria-invalid": error ? "true" : null,
        "aria-describedby": error ? "assign-error" : null,
      }),
      error ? el("p", { id: "assign-error", class: "error", role: "alert" }, error) : null,
      el("div", { class: "buttons" },
        el("button", { type: "submit", class: "primary", id: "assign-confirm" },
          override ? t("Assign with override") : t("Confirm assignment")),
        el("button", { type: "button", onclick: () => this.closeForm() }, t("Back"))),
    );
    return this.keepReason(form, form.querySelector("input"), (reason) => this.assign(reason));
  }

  // A sub-form's reason: kept while the panel re-renders, sent trimmed on submit.
  keepReason(form, input, submit) {
    if (this.form.reason) input.value = this.form.reason;
    input.addEventListener("input", () => { this.form.reason = input.value; });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      submit(input.value.trim());
    });
    return form;
  }

  async assign(reason) {
    const { candidate: c, override } = this.form;
    this.form.reason = reason;
    if (override && !reason) {
      this.form.error = t("Give a reason for the override: it is recorded with the assignment.");
      this.render();
      document.getElementById("assign-reason")?.focus();
      return;
    }
    await this.submit("assign", { caregiver_id: c.caregiver_id, reason, override }, t("Assigned to {name}.", { name: c.name }));
  }

  // Send the open sub-form (assign or cancel); on success reload the order, else show why.
  async submit(action, body, done) {
    const button = document.getElementById(action + "-confirm");
    if (button) button.disabled = true;
    try {
      await api("POST", "/v1/ops/orders/" + this.id + "/" + action, body);
      this.form = null;
      announce(done);
      await this.load();
      this.panel.focus();
      this.onChanged();
    } catch (err) {
      if (!this.form) return;
      this.form.error = problemText(err);
      this.render();
      document.getElementById(action + "-reason")?.focus();
    }
  }

  cancelForm() {
    const { error } = this.form;
    const form = el("form", { class: "subform", id: "cancel-form", novalidate: true, "aria-labelledby": "cancel-title" },
      el("h4", { id: "cancel-title" }, t("Cancel this order")),
      el("label", { for: "cancel-reason" }, t("Reason (required; the senior is told the order is cancelled)")),
      el("textarea", {
        id: "cancel-reason", name: "reason", maxlength: 500, rows: 2, required: true,
        "aria-invalid": error ? "true" : null, "aria-describedby": error ? "cancel-error" : null,
      }),
      error ? el("p", { id: "cancel-error", class: "error", role: "alert" }, error) : null,
      el("div", { class: "buttons" },
        el("button", { type: "submit", class: "danger", id: "cancel-confirm" }, t("Cancel the order")),
        el("button", { type: "button", onclick: () => this.closeForm() }, t("Keep the order"))),
    );
    return this.keepReason(form, form.querySelector("textarea"), (reason) => this.cancel(reason));
  }

  async cancel(reason) {
    this.form.reason = reason;
    if (!reason) {
      this.form.error = t("Give a reason for cancelling.");
      this.render();
      document.getElementById("cancel-reason")?.focus();
      return;
    }
    await this.submit("cancel", { reason }, t("The order is cancelled."));
  }

  // --- the engine's explanation and the history -------------------------------------------

  /** The latest escalation's reason in the page's language (the order's English reason when
   *  an operator escalated it by hand, without a decision). */
  whyEscalated(zone) {
    const last = (this.order.decisions || []).filter((d) => d.kind === "escalate").at(-1);
    return (last && words.escalation(last, zone)) || this.order.escalation_reason;
  }

  decisions() {
    const list = [...(this.order.decisions || [])].reverse();
    const box = el("section", { class: "decisions", "aria-labelledby": "decisions-title" },
      el("h3", { id: "decisions-title" }, t("Dispatch decisions")));
    if (!list.length) {
      box.append(el("p", { class: "small" }, t("No decision yet.")));
      return box;
    }
    for (const d of list) box.append(this.decision(d));
    return box;
  }

  decision(d) {
    const zone = this.zone();
    const x = d.explanation || {};
    const item = el("article", { class: "decision k-" + d.kind },
      el("h4", {}, words.kind(d.kind), " ", el("span", { class: "small" }, words.when(d.at, zone))));
    const chosen = d.caregiver_ids.map((id) => this.name(id));
    if (d.kind === "manual") {
      item.append(el("p", {}, t("Assigned by the duty desk to {name}.", { name: chosen.join("、") }),
        " ", x.starts_at ? t("Start {time}", { time: words.hm(x.starts_at, zone) }) : "",
        x.travel_s !== undefined ? " · " + t("travel {time}", { time: words.duration(x.travel_s) }) : ""));
      if (x.overridden?.length) {
        item.append(el("p", {}, t("Overrode:"), " ", x.overridden.map((r) => words.rule(r.code)).join("、")));
      }
      if (d.reason) item.append(el("p", { class: "reason" }, t("Reason:"), " ", d.reason));
      return item;
    }
    const candidates = x.candidates || [];
    if (candidates.length) {
      const [first, ...rest] = candidates;
      const chosenIds = new Set(d.caregiver_ids);
      const best = candidates.filter((c) => chosenIds.has(c.caregiver_id));
      const shown = best.length ? best : [first];
      for (const c of shown) {
        item.append(el("p", {}, el("strong", {}, this.name(c.caregiver_id)), " · ",
          t("cost {cost}", { cost: Math.round(c.cost) }), " · ", words.distance(c.distance_m),
          " · ", t("travel {time}", { time: words.duration(c.travel_s) }),
          " · ", t("Start {time}", { time: words.hm(c.starts_at, zone) })));
        item.append(el("table", { class: "parts" },
          el("caption", { class: "sr-only" }, t("Cost parts of {name}", { name: this.name(c.caregiver_id) })),
          el("tbody", {}, Object.entries(c.parts || {}).map(([k, v]) =>
            el("tr", {}, el("th", { scope: "row" }, words.part(k)), el("td", { class: "num" }, v.toFixed(1)))))));
      }
      const others = (best.length ? candidates.filter((c) => !chosenIds.has(c.caregiver_id)) : rest).slice(0, 5);
      if (others.length) {
        item.append(el("p", { class: "sub" }, t("Runners-up")),
          el("ol", { class: "runners" }, others.map((c) =>
            el("li", {}, this.name(c.caregiver_id), " · ", t("cost {cost}", { cost: Math.round(c.cost) }),
              " (+", Math.round(c.cost - shown[0].cost), ") · ", words.distance(c.distance_m)))));
      }
    } else if (chosen.length) {
      item.append(el("p", {}, t("Offered to {names}.", { names: chosen.join("、") })));
    }
    const excluded = Object.entries(x.excluded || {}).filter(([, n]) => n);
    if (excluded.length || x.excluded_scope === "district") {
      const scope = x.excluded_scope === "district"
        ? t("Counted over all {n} caregivers of the district", { n: x.caregivers ?? 0 })
        : x.excluded_scope === "examined"
          ? t("Counted over the {n} caregivers the search examined", { n: x.examined ?? 0 })
          : "";
      // Over the examined caregivers, the search sets aside those asked already (and, for an
      // ordinary offer, those holding another open offer) as if the senior had blocked them.
      const label = (k) => x.excluded_scope === "examined" && k === "blocked"
        ? (d.kind === "emergency" ? t("Asked already or blocked by the senior") : t("Asked already, busy with another offer, or blocked by the senior"))
        : words.rule(k);
      const counts = excluded.map(([k, n]) => el("li", { "data-rule": k }, label(k), ": ", n));
      for (const k of ["busy", "already_asked", "available"]) {
        if (x[k]) counts.push(el("li", { "data-rule": k }, words.rule(k), ": ", x[k]));
      }
      item.append(el("p", { class: "sub" }, t("Exclusions by reason"), scope ? " · " + scope : ""),
        counts.length ? el("ul", { class: "excl" }, counts) : el("p", { class: "small" }, t("None excluded.")));
    }
    const reason = d.kind === "escalate" ? words.escalation(d, zone) : d.reason;
    if (reason) item.append(el("p", { class: "reason" }, t("Reason:"), " ", reason));
    return item;
  }

  history() {
    const zone = this.zone();
    const rows = [...(this.order.history || [])].reverse();
    return el("section", { class: "history", "aria-labelledby": "history-title" },
      el("h3", { id: "history-title" }, t("History")),
      el("ol", { class: "timeline" }, rows.map((h) =>
        el("li", {}, el("time", { datetime: h.at }, words.when(h.at, zone)), " ",
          el("strong", {}, words.event(h.event)), " → ", words.status(h.to_status),
          h.reason ? el("span", { class: "reason" }, " · " + this.historyReason(h, zone)) : ""))));
  }

  /** A dispatch escalation's reason in the page's language: the decision made at that moment
   *  says it from its code (an operator's own words stay as written). */
  historyReason(h, zone) {
    if (h.event !== "escalate") return h.reason;
    const at = Date.parse(h.at);
    const d = (this.order.decisions || []).find((x) => x.kind === "escalate" && Date.parse(x.at) === at);
    return (d && words.escalation(d, zone)) || h.reason;
  }

  // --- keyboard -----------------------------------------------------------------------------

  keydown(e) {
    const typing = e.target.closest("input, textarea, select");
    if (e.key === "Escape") {
      e.preventDefault();
      if (this.form) this.closeForm();
      else this.close();
      return;
    }
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "a") {
      const first = this.body.querySelector("[data-assign], [data-override]");
      if (first) {
        e.preventDefault();
        first.focus();
      }
    } else if (e.key === "c" && this.order && CANCELLABLE.has(this.order.status)) {
      e.preventDefault();
      this.openForm({ kind: "cancel" });
    }
  }
}
