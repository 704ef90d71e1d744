"""One pass of the dispatcher: expire offers, offer pending orders, batch the scheduled ones,
escalate what dispatch cannot place in time, and flag no-shows.

Everything it knows it reads from the database at the start of the pass, and every decision
is its own short transaction that locks the order and re-checks its status: a pass can be
killed at any point and the next one (in this process or another) carries on from what was
committed (DESIGN.md invariant 3). ``now`` is an argument, so tests drive it step by step.
"""

import asyncio
import dataclasses
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import ColumnElement, case, func, literal, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.config import Settings
from app.db import reader_of
from app.dispatch import batch
from app.dispatch import model as engine
from app.dispatch.assign import Candidate, Ranking
from app.dispatch.constraints import Exclusion, Placement, place
from app.dispatch.index import FleetIndex
from app.dispatch.policy import DispatchConfig
from app.errors import Conflict
from app.models import (
    Caregiver,
    DispatchDecision,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    Priority,
    Provider,
    Visit,
    VisitStatus,
)
from app.models.types import UUID, UTCDateTime
from app.services import events, offer_machine, visits
from app.services.fleet import Roster, district_config, district_zone
from app.services.fleet import caregivers as load_caregivers
from app.services.fleet import orders as load_orders
from app.services.order_machine import Event, transition

log = logging.getLogger("doorstep.dispatch")

OFFER_KINDS = ("offer", "emergency", "batch")
# Re-dispatch after a no-show raises the priority one step (an emergency stays one).
RAISED = {Priority.normal: Priority.urgent, Priority.urgent: Priority.urgent}


OFFER_BATCH = 100  # offers carried out per transaction


@dataclass(frozen=True, slots=True)
class Queued:
    """An offer decided by the planner, waiting to be carried out with others."""

    order_id: uuid.UUID
    kind: str
    chosen: Sequence[Candidate]
    explanation: dict[str, Any]
    planned_at: datetime  # the ``now`` of the snapshot and the ranking it came from
    first: bool = False  # the order's first offer (for the order-to-first-offer figures)


@dataclass
class Tally:
    """What one pass did (for logs, tests and the bench)."""

    expired: int = 0
    offered: int = 0
    assigned: int = 0
    escalated: int = 0
    no_shows: int = 0
    waiting: int = 0  # scheduled orders left pending for a later batch
    replanned: int = 0  # offers whose plan had gone stale before they were written
    seen: int = 0  # pending orders looked at
    errors: list[str] = field(default_factory=list)

    def __iadd__(self, other: "Tally") -> "Tally":
        for name in (
            "expired",
            "offered",
            "assigned",
            "escalated",
            "no_shows",
            "waiting",
            "replanned",
            "seen",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors
        return self


def engine_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(emergency_offers=settings.emergency_offers)


def response_due(order: Order, settings: Settings, config: DispatchConfig) -> datetime:
    """When the visit must have started: the emergency target to arrival, an ASAP order's
    longest wait, or the last start that still fits the window."""
    if order.priority is Priority.emergency:
        return order.created_at + timedelta(minutes=settings.emergency_response_target_min)
    if order.asap or order.window_end is None:
        wait = config.asap_max_wait_s[engine.Priority(order.priority.value)]
        return order.created_at + timedelta(seconds=wait)
    return order.window_end - timedelta(minutes=order.duration_min)


def explain(
    ranking: Ranking | None, candidates: Sequence[Candidate], **extra: Any
) -> dict[str, Any]:
    """The engine's reasons in plain JSON: candidates best first with their cost parts (they
    add up to the cost), and how many of the caregivers the search examined each hard
    constraint excluded (``excluded_scope: "examined"``: the spatial search looks at the
    caregivers near the order, not at the whole district; ``"none"`` without a ranking, when
    nobody was counted)."""
    return {
        "candidates": [
            {
                "caregiver_id": str(c.caregiver_id),
                "cost": round(c.cost, 1),
                "parts": {k: round(v, 1) + 0.0 for k, v in c.parts.items()},  # no -0.0
                "starts_at": datetime.fromtimestamp(c.start, UTC).isoformat(),
                "travel_s": round(c.travel_s),
                "distance_m": round(c.distance_m),
            }
            for c in candidates
        ],
        "excluded": {k.value: v for k, v in (ranking.excluded if ranking else {}).items()},
        "excluded_scope": "examined" if ranking else "none",
        "examined": ranking.examined if ranking else 0,
        **extra,
    }


# Not exclusions: caregivers the rules let through, and why they were not offered the order.
BUSY = "busy"  # holds an open offer for another order, or was given one in this pass
ASKED = "already_asked"  # offered this order before (declined, or let the offer expire)
AVAILABLE = "available"
NO_POSITION = "no_position"  # on duty without a known position (the engine cannot place them)
NOT_EXCLUDED = (BUSY, ASKED, AVAILABLE)

# How a district count reads in an escalation reason: "{n} {label}".
_LABELS = {
    Exclusion.off_duty.value: "off duty",
    NO_POSITION: "without a known position",
    Exclusion.blocked.value: "blocked by the senior",
    Exclusion.gender.value: "not of the gender the senior requires",
    Exclusion.skill.value: "without the skill {skills}",
    Exclusion.certificate.value: "with a certificate that lapses before the visit ends",
    Exclusion.radius.value: "outside their service radius",
    Exclusion.stale_position.value: "with an out-of-date position",
    Exclusion.shift.value: "not in shift then",
    Exclusion.reachable.value: "unable to fit the visit in their day in time",
    Exclusion.daily_cap.value: "at their daily visit cap",
    BUSY: "busy with other offers",
    ASKED: "asked already",
}


def explain_district(counts: Mapping[str, int], **extra: Any) -> dict[str, Any]:
    """An escalation's explanation: every caregiver of the district counted once, by the first
    rule that excludes them (``excluded``), or as busy, already asked or available."""
    return {
        "candidates": [],
        "excluded": {k: v for k, v in sorted(counts.items()) if v and k not in NOT_EXCLUDED},
        "excluded_scope": "district",
        "caregivers": sum(counts.values()),
        **{k: counts.get(k, 0) for k in NOT_EXCLUDED},
        **extra,
    }


def _skills(skills: Collection[str]) -> str:
    names = sorted(skills)
    return names[0] if len(names) == 1 else " and ".join([", ".join(names[:-1]), names[-1]])


def no_candidate(counts: Mapping[str, int], *, skills: Collection[str] = ()) -> tuple[str, str]:
    """Why nobody can be offered the order, from the district-wide counts
    (``district_counts``): a reason code (``metrics.ESCALATION_REASONS``) and the reason in
    plain words. Never "nobody on duty" when someone is."""
    total = sum(counts.values())
    on_duty = total - counts.get(Exclusion.off_duty.value, 0)
    if total == 0:
        return "nobody_on_duty", "The district has no active caregivers."
    if on_duty == 0:
        return "nobody_on_duty", f"None of the district's {total} caregivers is on duty."
    if counts.get(NO_POSITION, 0) == on_duty:
        return (
            "no_position",
            f"None of the {on_duty} caregivers on duty has reported a position.",
        )
    if counts.get(Exclusion.skill.value, 0) == on_duty:
        what = "skill" if len(skills) == 1 else "skills"
        return (
            "skill",
            f"None of the {on_duty} caregivers on duty has the {what} {_skills(skills)}.",
        )
    if counts.get(BUSY, 0) and not counts.get(ASKED, 0):
        return (
            "busy",
            f"All {counts[BUSY]} caregivers who could take it are busy with other offers.",
        )
    if counts.get(ASKED, 0) and not counts.get(BUSY, 0):
        return "all_asked", f"All {counts[ASKED]} caregivers who could take it were asked already."
    parts = [
        f"{n} {_LABELS.get(why, why.replace('_', ' ')).format(skills=_skills(skills))}"
        for why, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if n and why != Exclusion.off_duty.value
    ]
    rules = [why for why, n in counts.items() if n and why != Exclusion.off_duty.value]
    code = rules[0] if len(rules) == 1 else "no_candidate"
    off = counts.get(Exclusion.off_duty.value, 0)
    tail = f"; {off} more off duty" if off else ""
    return code, f"None of the {on_duty} caregivers on duty can take it: {', '.join(parts)}{tail}."


class Pass:
    """One dispatch pass over everything pending (see the module docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        now: datetime | Callable[[], datetime],
        *,
        batch_due: bool = True,
        districts: Collection[uuid.UUID] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # Snapshots are read without a write lock (SQLite: BEGIN, not BEGIN IMMEDIATE), so a
        # pass reading a large district never holds up the API's writes.
        self.reader = reader_of(sessionmaker)
        # Only these districts' orders (the ones this dispatcher holds); None: every district.
        self.districts = list(districts) if districts is not None else None
        self.settings = settings
        # A clock is read again at each step of a long pass: an offer made late in a pass
        # must carry the time it was made, and its full time to answer.
        self.clock = now if callable(now) else (lambda: now)
        self.now = self.clock()
        self.batch_due = batch_due
        self.config = engine_config(settings)
        self.tally = Tally()
        self.queued: list[Queued] = []
        self.stale: list[uuid.UUID] = []  # orders whose plan went stale before it was written
        self.snapshot_at = self.now  # when the snapshot being planned from was read
        self._replanning = False
        self.providers: dict[uuid.UUID, uuid.UUID | None] = {}

    async def run(self) -> Tally:
        self.now = self.clock()
        await self.expire_offers()
        self.now = self.clock()
        await self.flag_no_shows()
        await self.dispatch_pending()
        return self.tally

    def _in_districts(self) -> ColumnElement[bool]:
        return true() if self.districts is None else Order.district_id.in_(self.districts)

    # -- offers past their deadline ------------------------------------------------------
    async def expire_offers(self) -> None:
        async with self.reader() as session:
            stmt = select(Offer.order_id).where(
                Offer.status == OfferStatus.open, Offer.deadline <= self.now
            )
            if self.districts is not None:
                stmt = stmt.join(Order, Order.id == Offer.order_id).where(
                    Order.district_id.in_(self.districts)
                )
            due = (await session.scalars(stmt.distinct())).all()
        for order_id in due:
            async with self.sessionmaker() as session, session.begin():
                order = await offer_machine.lock_order(session, order_id)
                self.tally.expired += await offer_machine.expire_due(session, order, now=self.now)

    # -- no-shows ------------------------------------------------------------------------
    async def flag_no_shows(self) -> None:
        late = self.now - timedelta(minutes=self.settings.no_show_grace_min)
        async with self.reader() as session:
            rows = (
                await session.execute(
                    select(Visit.id, Visit.order_id)
                    .join(Order, Order.id == Visit.order_id)
                    .where(
                        Visit.status == VisitStatus.assigned,
                        Visit.starts_at <= late,
                        Order.status == OrderStatus.assigned,
                        # Flagged already, for this visit (a re-dispatched order may be late again).
                        Order.no_show_at.is_(None) | (Order.no_show_at < Visit.assigned_at),
                        self._in_districts(),
                    )
                )
            ).all()
        for visit_id, order_id in rows:
            async with self.sessionmaker() as session, session.begin():
                await self._no_show(session, visit_id, order_id)

    async def _no_show(
        self, session: AsyncSession, visit_id: uuid.UUID, order_id: uuid.UUID
    ) -> None:
        order = await offer_machine.lock_order(session, order_id)
        visit = await session.get(Visit, visit_id, populate_existing=True)
        assert visit is not None
        flagged = order.no_show_at is not None and order.no_show_at >= visit.assigned_at
        if visit.status is not VisitStatus.assigned or flagged:
            return
        self.tally.no_shows += 1
        reason = (
            f"The caregiver had not checked in {self.settings.no_show_grace_min} min after the "
            f"visit's start ({visit.starts_at.isoformat()})."
        )
        if not self.settings.no_show_redispatch:
            order.no_show_at = self.now
            await events.record(
                session,
                type="order.no_show_flagged",
                order=order,
                at=self.now,
                caregiver_id=visit.caregiver_id,
            )
            return
        await transition(
            session,
            order,
            Event.no_show,
            actor_id=None,
            at=self.now,
            reason=reason,
            caregiver_id=visit.caregiver_id,
            values={
                "caregiver_id": None,
                "no_show_at": self.now,
                "redispatch_count": order.redispatch_count + 1,
                "priority": RAISED.get(order.priority, order.priority),
            },
        )
        await offer_machine.release_accepted(session, order, reason="no-show")
        visit.status = VisitStatus.no_show
        visit.end_reason = reason

    # -- pending orders ------------------------------------------------------------------
    async def dispatch_pending(self) -> None:
        """Every pending order that is due, in pages of ``dispatch_pass_limit``, most urgent
        first; an emergency placed while the pass runs goes before the next page."""
        seen: set[uuid.UUID] = set()
        after: tuple[int, datetime, uuid.UUID] | None = None
        while True:
            fresh = [o for o in await self._pending(emergencies=True) if o.id not in seen]
            if fresh:
                seen.update(o.id for o in fresh)
                await self._dispatch(fresh)
            page = await self._pending(after=after)
            if not page:
                return
            last = page[-1]
            after = (PRIORITY_ORDER[last.priority], last.created_at, last.id)
            page = [o for o in page if o.id not in seen]
            seen.update(o.id for o in page)
            await self._dispatch(page)

    async def dispatch_emergencies(self) -> Tally:
        """Only the pending emergencies: the dispatcher runs this on every wake-up, beside the
        full pass, so an SOS never waits for a long pass to end."""
        await self._dispatch(await self._pending(emergencies=True))
        return self.tally

    async def _pending(
        self,
        *,
        emergencies: bool = False,
        after: tuple[int, datetime, uuid.UUID] | None = None,
    ) -> list[Order]:
        horizon = self.now + timedelta(hours=self.settings.scheduled_horizon_h)
        stmt = select(Order).where(
            Order.status == OrderStatus.pending,
            Order.asap | (Order.window_start <= horizon),
            self._in_districts(),
        )
        if emergencies:
            stmt = stmt.where(Order.priority == Priority.emergency)
        if after is not None:
            rank, created, order_id = after
            key = tuple_(literal(rank), literal(created, UTCDateTime()), literal(order_id, UUID))
            stmt = stmt.where(tuple_(URGENCY, Order.created_at, Order.id) > key)
        stmt = stmt.order_by(URGENCY, Order.created_at, Order.id).limit(
            self.settings.dispatch_pass_limit
        )
        async with self.reader() as session:
            return list((await session.scalars(stmt)).all())

    async def _dispatch(self, pending: list[Order]) -> None:
        if not pending:
            return
        self.tally.seen += len(pending)
        self.now = self.clock()
        # Every plan made from what is read here is as old as this read (``_fresh``).
        self.snapshot_at = self.now
        async with self.reader() as session:
            rounds = dict(
                (
                    await session.execute(
                        select(DispatchDecision.order_id, func.count())
                        .where(
                            DispatchDecision.order_id.in_([o.id for o in pending]),
                            DispatchDecision.kind.in_(OFFER_KINDS),
                        )
                        .group_by(DispatchDecision.order_id)
                    )
                ).all()
            )
            offered_before: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
            for oid, cid in (
                await session.execute(
                    select(Offer.order_id, Offer.caregiver_id).where(
                        Offer.order_id.in_([o.id for o in pending])
                    )
                )
            ).all():
                offered_before[oid].add(cid)
            busy_offers = set(
                (
                    await session.scalars(
                        select(Offer.caregiver_id).where(Offer.status == OfferStatus.open)
                    )
                ).all()
            )
            by_district: dict[uuid.UUID, list[Order]] = defaultdict(list)
            for o in pending:
                by_district[o.district_id].append(o)
            wanted = await load_orders(session, pending)
            zones = {d: await district_zone(session, d) for d in by_district}
            fleets = {
                d: (
                    await load_caregivers(
                        session,
                        district_id=d,
                        senior_ids={o.senior_id for o in orders},
                        now=self.now,
                        tz=zones[d],
                    )
                ).caregivers
                for d, orders in by_district.items()
            }
            employer = (
                await session.execute(
                    select(Caregiver.id, Caregiver.provider_id, Provider.auto_accept)
                    .join(Provider, Provider.id == Caregiver.provider_id)
                    .where(Provider.district_id.in_(list(by_district)))
                )
            ).all()
        self.providers = {cid: pid for cid, pid, _ in employer}
        auto = {cid for cid, _, auto_accept in employer if auto_accept}
        as_engine = {o.id: w for o, w in zip(pending, wanted, strict=True)}
        for district, orders in by_district.items():
            planner = Planner(self, district, zones[district], fleets[district], busy_offers, auto)
            # Emergencies first, then urgent, then normal; oldest first within each.
            ordered = sorted(orders, key=lambda o: (PRIORITY_ORDER[o.priority], o.created_at))
            single, scheduled = [], []
            for o in ordered:
                if (
                    o.asap
                    or offered_before[o.id]
                    or o.priority is Priority.emergency
                    or self.at_risk(o)
                ):
                    single.append(o)
                else:
                    scheduled.append(o)
            for o in single:
                await asyncio.sleep(0)  # let this worker's requests in between orders
                try:
                    await planner.single(
                        o, as_engine[o.id], rounds.get(o.id, 0), offered_before[o.id]
                    )
                except Exception:
                    await self._failed(o)
                # Emergencies go out at once; the rest in batches (one transaction each).
                if o.priority is Priority.emergency or len(self.queued) >= OFFER_BATCH:
                    await self.send_offers()
            await self.send_offers()
            if scheduled and self.batch_due:
                try:
                    await planner.batch(scheduled, [as_engine[o.id] for o in scheduled])
                except Exception:
                    # Scheduled orders have hours: they wait for the next batch (and escalate
                    # on time through the single path if this keeps failing).
                    log.exception("the scheduled batch failed; the next one tries again")
            elif scheduled:
                self.tally.waiting += len(scheduled)
        if self.stale:
            await self._replan()

    async def _failed(self, order: Order) -> None:
        """Planning this one order failed (a bug, bad data): it goes to the operators at once
        with the reason, instead of failing the pass for everyone (or an SOS silently)."""
        log.exception("dispatch could not plan an order", extra={"order_id": str(order.id)})
        await self.decide(
            order.id,
            "escalate",
            [],
            explain(None, [], error=True),
            reason="Dispatch could not plan this order (an internal error): place it by hand.",
            code="engine_error",
        )

    async def _replan(self) -> None:
        """Plan again, from a fresh snapshot, the orders whose plan went stale before it was
        written (once: that plan is written even if it goes stale too, see ``_fresh``)."""
        ids, self.stale = self.stale, []
        if self._replanning:
            self.tally.waiting += len(ids)
            return
        async with self.reader() as session:
            orders = list(
                (
                    await session.scalars(
                        select(Order).where(Order.id.in_(ids), Order.status == OrderStatus.pending)
                    )
                ).all()
            )
        self._replanning = True
        try:
            await self._dispatch(orders)
        finally:
            self._replanning = False

    def at_risk(self, order: Order) -> bool:
        """Another offer's timeout would pass the last moment the visit can start."""
        if order.priority is Priority.emergency:
            return False
        timeout = timedelta(seconds=self.settings.offer_timeout_s)
        return self.now + timeout > response_due(order, self.settings, self.config)

    async def send_offers(self) -> None:
        """Carry out the queued offers in one transaction: lock the orders still pending, then
        one insert each for decisions, offers, history and events, and one UPDATE for the
        orders. If anything in the batch fails, each offer is retried on its own."""
        batch, self.queued = self.queued, []
        if not batch:
            return
        self.now = self.clock()
        batch = self._fresh(batch)
        if not batch:
            return
        try:
            async with self.sessionmaker() as session, session.begin():
                session.info["providers"] = dict(self.providers)
                locked = {
                    o.id: o
                    for o in await session.scalars(
                        select(Order)
                        .where(
                            Order.id.in_([q.order_id for q in batch]),
                            Order.status == OrderStatus.pending,
                        )
                        .with_for_update(skip_locked=True)
                        .execution_options(populate_existing=True)
                    )
                }
                todo = [q for q in batch if q.order_id in locked]
                decisions = [
                    DispatchDecision(
                        order_id=q.order_id,
                        kind=q.kind,
                        caregiver_ids=[str(c.caregiver_id) for c in q.chosen],
                        explanation=q.explanation,
                        at=self.now,
                    )
                    for q in todo
                ]
                session.add_all(decisions)
                await session.flush()
                await offer_machine.make_all(
                    session,
                    [
                        (locked[q.order_id], q.chosen, d, self._deadline(locked[q.order_id]))
                        for q, d in zip(todo, decisions, strict=True)
                    ],
                    now=self.now,
                )
            self.tally.offered += len(todo)
            for q in todo:
                if q.first:
                    self._observe_first_offer(locked[q.order_id])
        except Exception:
            log.exception("a batch of %d offers failed; sending them one by one", len(batch))
            for q in batch:
                await self.decide(q.order_id, q.kind, q.chosen, q.explanation)

    def _fresh(self, batch: list[Queued]) -> list[Queued]:
        """The offers whose plan is at most ``plan_max_age_s`` old, each start moved on by the
        plan's age if it would otherwise be in the past (the engine's earliest start counts
        from its ``now``: the same plan a moment later starts that much later). The rest are
        set aside to be planned again (``_replan``): a caregiver's position, an offer or a
        booking may have changed meanwhile. A plan made by that second look is written
        whatever its age: on a machine too slow to write any plan within ``plan_max_age_s``,
        an offer from a plan a few seconds old beats no offer at all (an SOS would wait for
        ever); the offer's write still locks and re-checks the caregiver."""
        fresh = []
        for q in batch:
            age = (self.now - q.planned_at).total_seconds()
            if age > self.settings.plan_max_age_s and self._replanning:
                log.warning(
                    "the second plan went stale too; writing it anyway",
                    extra={"order_id": str(q.order_id), "age_s": round(age, 2)},
                )
            elif age > self.settings.plan_max_age_s:
                self.stale.append(q.order_id)
                self.tally.replanned += 1
                log.warning(
                    "plan went stale before its offer was written; planning again",
                    extra={"order_id": str(q.order_id), "age_s": round(age, 2)},
                )
                continue
            now = self.now.timestamp()
            chosen = [
                dataclasses.replace(c, start=c.start + age) if c.start < now else c
                for c in q.chosen
            ]
            fresh.append(dataclasses.replace(q, chosen=chosen))
        return fresh

    def _deadline(self, order: Order) -> datetime:
        timeout = (
            self.settings.emergency_offer_timeout_s
            if order.priority is Priority.emergency
            else self.settings.offer_timeout_s
        )
        return self.now + timedelta(seconds=timeout)

    async def decide(
        self,
        order_id: uuid.UUID,
        kind: str,
        chosen: Sequence[Candidate],
        explanation: dict[str, Any],
        *,
        reason: str | None = None,
        code: str = "other",
        auto_assign: bool = False,
    ) -> bool:
        """Record the decision and carry it out in one transaction, if the order is still
        pending; False when someone else moved it first (a cancellation, an operator).
        ``code``: an escalation's reason code (``metrics.ESCALATION_REASONS``) for the
        metrics and the log; ``reason`` is the operator's plain words (English). An
        escalation's explanation carries the code too, so a page can say the reason in its own
        language from the code and the explanation's figures."""
        escalated = first = None
        if not chosen:
            explanation = {**explanation, "code": code}
        try:
            async with self.sessionmaker() as session, session.begin():
                order = await offer_machine.lock_order(session, order_id)
                if order.status is not OrderStatus.pending:
                    return False
                decision = DispatchDecision(
                    order_id=order.id,
                    kind="auto_assign" if auto_assign else kind,
                    caregiver_ids=[str(c.caregiver_id) for c in chosen],
                    reason=reason,
                    explanation=explanation,
                    at=self.now,
                )
                session.add(decision)
                await session.flush()
                if not chosen:
                    await self._escalate(session, order, reason or "escalated", code)
                    escalated = order
                elif auto_assign:
                    await self._assign(session, order, chosen[0])
                else:
                    first = order if await self._first_offer(session, order) else None
                    await offer_machine.make_all(
                        session, [(order, chosen, decision, self._deadline(order))], now=self.now
                    )
                    self.tally.offered += 1
            # Committed: only now does it count.
            if escalated is not None:
                metrics.count_escalation(code)
            if first is not None:
                self._observe_first_offer(first)
            return True
        except Conflict as exc:
            # A caregiver booked in the meantime (auto-assign): the next pass decides again.
            self.tally.errors.append(f"{order_id}: {exc.code}")
            log.info("dispatch of %s deferred: %s", order_id, exc.code)
            return False

    async def _first_offer(self, session: AsyncSession, order: Order) -> bool:
        """No offer was made for this order before (for the order-to-first-offer figures)."""
        before = await session.scalar(select(Offer.id).where(Offer.order_id == order.id).limit(1))
        return before is None

    def _observe_first_offer(self, order: Order) -> None:
        # Scheduled orders are offered hours ahead by design: only ASAP orders count.
        if order.asap:
            metrics.observe_first_offer(
                order.created_at, self.now, emergency=order.priority is Priority.emergency
            )

    async def _escalate(
        self, session: AsyncSession, order: Order, reason: str, code: str = "other"
    ) -> None:
        await transition(
            session,
            order,
            Event.escalate,
            actor_id=None,
            at=self.now,
            reason=reason,
            values={"escalation_reason": reason, "escalated_at": self.now},
        )
        self.tally.escalated += 1
        # The reason is the engine's (counts, rules, skills), never anyone's free text.
        log.info(
            "escalated",
            extra={
                "order_id": str(order.id),
                "priority": order.priority.value,
                "code": code,
                "reason": reason,
            },
        )

    async def _assign(self, session: AsyncSession, order: Order, chosen: Candidate) -> None:
        assert isinstance(chosen.caregiver_id, uuid.UUID)
        await transition(
            session,
            order,
            Event.assign,
            actor_id=None,
            at=self.now,
            reason="auto-accepted by the provider",
            caregiver_id=chosen.caregiver_id,
            values={"caregiver_id": chosen.caregiver_id},
        )
        await visits.book(
            session,
            order,
            chosen.caregiver_id,
            actor_id=None,
            now=self.now,
            start=datetime.fromtimestamp(chosen.start, UTC),
        )
        self.tally.assigned += 1


PRIORITY_ORDER = {Priority.emergency: 0, Priority.urgent: 1, Priority.normal: 2}
URGENCY = case(*((Order.priority == p, rank) for p, rank in PRIORITY_ORDER.items()), else_=9)


class Planner:
    """Decisions for one district's pending orders over one snapshot of its caregivers."""

    def __init__(
        self,
        run: Pass,
        district_id: uuid.UUID,
        tz: ZoneInfo,
        fleet: list[engine.Caregiver],
        busy_offers: set[uuid.UUID],
        auto_accept: set[uuid.UUID],
    ) -> None:
        self.run = run
        self.district_id = district_id
        self.tz = tz
        # The district's days (daily caps) start at its own local midnight.
        self.config = district_config(run.config, tz, run.now)
        self.fleet = fleet
        self.index = FleetIndex(fleet, self.config) if fleet else None
        # Caregivers holding an open offer are not offered a second order at once (an
        # emergency may still ask them).
        self.busy = set(busy_offers)
        self.auto_accept = auto_accept
        self._everyone: Roster | None = None

    def _rows(self, ids: set[uuid.UUID]) -> np.ndarray:
        assert self.index is not None
        known = self.index.fleet.row
        return np.array(sorted(known[i] for i in ids if i in known), np.int64)

    async def single(
        self, order: Order, want: engine.Order, rounds: int, before: set[uuid.UUID]
    ) -> None:
        settings, now = self.run.settings, self.run.now
        emergency = order.priority is Priority.emergency
        due = response_due(order, settings, self.config)
        # These two escalations say why without counting anyone: their explanation stays
        # cheap (a backlog can put many orders at risk in one pass).
        if rounds >= settings.max_offer_rounds:
            await self.run.decide(
                order.id,
                "escalate",
                [],
                explain(None, [], offers_made=len(before), rounds=rounds),
                reason=f"No caregiver accepted after {rounds} rounds of offers.",
                code="rounds_exhausted",
            )
            return
        if self.run.at_risk(order):
            await self.run.decide(
                order.id,
                "escalate",
                [],
                explain(None, [], due=due.isoformat()),
                reason=f"The time window is at risk: the visit must start by {due.isoformat()}.",
                code="window_at_risk",
            )
            return
        ranking = None
        chosen: list[Candidate] = []
        if self.index is not None:
            skip = before if emergency else before | self.busy
            ranking = self.index.rank(
                want,
                now.timestamp(),
                limit=self.config.candidates if not emergency else None,
                taken=self._rows(skip) if skip else None,
            )
            count = settings.emergency_offers if emergency else 1
            chosen = list(ranking.candidates[:count])
        extra = {"already_offered": len(before)}
        if not chosen:
            await self._nobody(order, want, before, extra)
            return
        kind = "emergency" if emergency else "offer"
        self.run.queued.append(
            Queued(
                order.id,
                kind,
                chosen,
                explain(ranking, ranking.candidates if ranking else [], **extra),
                planned_at=self.run.snapshot_at,
                first=not before,
            )
        )
        self.busy.update(c.caregiver_id for c in chosen if isinstance(c.caregiver_id, uuid.UUID))

    def _busy_could(self, want: engine.Order, before: set[uuid.UUID]) -> bool:
        """Someone busy with another offer (not asked before) could take it: their offer is
        answered or expires within a minute, so the order waits for them."""
        now = self.run.now.timestamp()
        return any(
            isinstance(place(want, c, now, self.config), Placement)
            for c in self.fleet
            if c.id in self.busy and c.id not in before
        )

    async def _nobody(
        self, order: Order, want: engine.Order, before: set[uuid.UUID], extra: dict[str, Any]
    ) -> None:
        """No one to offer it to now. Wait while whoever could take it is only busy with
        another offer (or, for a scheduled order, while there is time for someone to come on
        duty); otherwise escalate, saying why nobody could."""
        if self._busy_could(want, before) or (not order.asap and not self._close(order)):
            self.run.tally.waiting += 1
            return
        counts = await self.district_counts(want, before)
        if counts.get(AVAILABLE) and order.priority is not Priority.emergency:
            # Someone could take it after all (came on duty after the snapshot): the next
            # pass offers it to them (an emergency does not wait on that: operators now).
            self.run.tally.waiting += 1
            return
        code, reason = no_candidate(counts, skills=want.skills)
        await self.run.decide(
            order.id,
            "escalate",
            [],
            explain_district(counts, skills=sorted(want.skills), **extra),
            reason=reason,
            code=code,
        )

    def _close(self, order: Order) -> bool:
        """A scheduled order close enough to its window that waiting for a caregiver to
        appear is no longer an option."""
        lead = timedelta(minutes=self.run.settings.scheduled_escalate_lead_min)
        return order.window_start is not None and order.window_start - self.run.now <= lead

    async def district_counts(
        self, want: engine.Order, before: Collection[uuid.UUID]
    ) -> Counter[str]:
        """Every active caregiver of the district, on duty or not, counted once: by the first
        rule of the engine's reference ``place`` that excludes them, else as busy (an open
        offer), already asked, or available. Only an escalation for want of a candidate needs
        it (its reason is read from it): the caregivers are read on first use in a pass, and
        judging them is about 6 us each (11 ms for 2,000), which an escalation can afford."""
        if self._everyone is None:
            async with self.run.reader() as session:
                self._everyone = await load_caregivers(
                    session,
                    district_id=self.district_id,
                    senior_ids=(),
                    now=self.run.now,
                    tz=self.tz,
                    everyone=True,
                )
        now = self.run.now.timestamp()
        counts: Counter[str] = Counter()
        for c in self._everyone.caregivers:
            unlocated = c.id in self._everyone.unlocated
            if unlocated:
                # Where they are is unknown: judge them as if at the senior's door. A rule
                # that excludes them even there excludes them; otherwise the position is why.
                c = replace(c, lat=want.lat, lon=want.lon)
            verdict = place(want, c, now, self.config)
            if isinstance(verdict, Exclusion) and not (
                unlocated and verdict is Exclusion.stale_position
            ):
                counts[verdict.value] += 1
            elif unlocated:
                counts[NO_POSITION] += 1
            elif c.id in before:
                counts[ASKED] += 1
            elif c.id in self.busy:
                counts[BUSY] += 1
            else:
                counts[AVAILABLE] += 1
        return counts

    async def batch(self, orders: list[Order], wants: list[engine.Order]) -> None:
        """Scheduled orders together: minimum total cost, each caregiver taking one. An order
        that only caregivers busy with offers could take waits for them; one nobody can take
        waits for someone to come on duty until it is close to its window."""
        free = [c for c in self.fleet if c.id not in self.busy]
        result = batch.solve(wants, free, self.run.now.timestamp(), self.config)
        run = self.run
        for i, (order, want) in enumerate(zip(orders, wants, strict=True)):
            # Each decision is written at its own time (its offer's full time to answer), and
            # never from a snapshot older than plan_max_age_s: the rest are planned again.
            run.now = run.clock()
            if (run.now - run.snapshot_at).total_seconds() > run.settings.plan_max_age_s:
                run.stale.extend(o.id for o in orders[i:])
                run.tally.replanned += len(orders) - i
                log.warning(
                    "the batch's plan went stale; planning the rest again",
                    extra={"left": len(orders) - i},
                )
                return
            chosen = result.assigned.get(want.id)
            if chosen is not None:
                auto = chosen.caregiver_id in self.auto_accept
                explanation = explain(None, [chosen], batch_size=len(orders))
                await self.run.decide(order.id, "batch", [chosen], explanation, auto_assign=auto)
                if isinstance(chosen.caregiver_id, uuid.UUID):
                    self.busy.add(chosen.caregiver_id)
            elif self._busy_could(want, set()) or not self._close(order):
                self.run.tally.waiting += 1
            else:
                outbid = result.outbid.get(want.id, 0)
                counts = await self.district_counts(want, ())
                code, reason = (
                    (
                        "outbid",
                        f"All {outbid} caregivers who could take it were given other orders.",
                    )
                    if outbid
                    else no_candidate(counts, skills=want.skills)
                )
                await self.run.decide(
                    order.id,
                    "escalate",
                    [],
                    explain_district(counts, outbid=outbid, skills=sorted(want.skills)),
                    reason=reason,
                    code=code,
                )


async def run_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | Callable[[], datetime],
    *,
    batch_due: bool = True,
    districts: Collection[uuid.UUID] | None = None,
) -> Tally:
    """One full pass over ``districts`` (None: all); the dispatcher loop calls this, tests
    call it with their own clock."""
    return await Pass(sessionmaker, settings, now, batch_due=batch_due, districts=districts).run()
