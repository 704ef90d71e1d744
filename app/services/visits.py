"""Visits: assignment (manual for now), check-in at the door, check-out, withdrawal.

Both invariants are enforced by the database, not by a check-then-act in Python: the order
moves by a conditional UPDATE (one winner), the visit row is guarded by a partial unique index
(one active visit per order) and, on PostgreSQL, by an EXCLUDE constraint (no overlapping
visits per caregiver). The overlap query below gives a clear 409 in the ordinary case and is
what enforces invariant 2 on SQLite, where ``BEGIN IMMEDIATE`` serialises writers.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, false, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.dispatch.policy import DispatchConfig
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    ACTIVE_VISIT_STATUSES,
    Account,
    Caregiver,
    DispatchDecision,
    Order,
    Role,
    Senior,
    Visit,
    VisitStatus,
)
from app.schemas.visits import SeniorContact, VisitOut
from app.services import audit, fleet, offer_machine, orders, rules
from app.services.accounts import in_district
from app.services.order_machine import Event, can, transition
from app.services.paging import Key, PageParams, fetch_page

CONTACT_FIELDS = "name,phone,address,care_notes,emergency_contacts"


def _violated(exc: IntegrityError) -> str:
    text = str(exc.orig)
    if "ex_visit_caregiver_overlap" in text:
        return "caregiver_busy"
    if "uq_visit_active_order" in text or "visit.order_id" in text:
        return "already_assigned"
    raise exc


async def _assignable_caregiver(
    session: AsyncSession, caregiver_id: uuid.UUID, district_id: uuid.UUID
) -> Caregiver:
    """An active caregiver of the order's district (a disabled one could never check in),
    locked for this transaction (``lock_caregiver``)."""
    caregiver = await session.scalar(
        select(Caregiver)
        .join(Account, Account.id == Caregiver.id)
        .where(Caregiver.id == caregiver_id, in_district(district_id), Account.is_active)
        .with_for_update(of=Caregiver)
    )
    if caregiver is None:
        raise Unprocessable(
            "Unknown or inactive caregiver in this district.", code="unknown_caregiver"
        )
    return caregiver


async def lock_caregiver(session: AsyncSession, caregiver_id: uuid.UUID) -> None:
    """Hold the caregiver's row until commit: whoever books them next judges their day with
    this booking in it. The EXCLUDE constraint stops overlapping visits, not visits too far
    apart to travel between; two operators (or an operator and an accept) judging the same
    caregiver at once would each pass the travel rule. Lock order: the order row, then the
    caregiver's. (SQLite serialises writers already.)"""
    await session.execute(
        select(Caregiver.id).where(Caregiver.id == caregiver_id).with_for_update()
    )


async def book(
    session: AsyncSession,
    order: Order,
    caregiver_id: uuid.UUID,
    *,
    actor_id: uuid.UUID | None,
    now: datetime,
    start: datetime,
) -> Visit:
    """Insert the active visit for an order already moved to ``assigned``, starting at
    ``start`` (where the engine placed it); 409 on any clash."""
    end = start + timedelta(minutes=order.duration_min)
    await _refuse_clash(session, caregiver_id, start, end, now=now)
    visit = Visit(
        order_id=order.id,
        caregiver_id=caregiver_id,
        status=VisitStatus.assigned,
        starts_at=start,
        ends_at=end,
        assigned_at=now,
        assigned_by=actor_id,
    )
    session.add(visit)
    await _flush_visits(session)
    return visit


BUSY = "The caregiver already has a visit at that time."


async def _refuse_clash(
    session: AsyncSession,
    caregiver_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    ignore: uuid.UUID | None = None,
) -> None:
    """409 if the caregiver is booked in [start, end).

    A visit in progress occupies the caregiver until check-out even when it runs past its
    booked end, so nothing can start now while one is open, and once it has run past its end
    nothing may start within ``fleet.OVERRUN_HOLD`` of now (the engine plans with the same
    hold). On SQLite this query is what keeps invariant 2 (writers are serialised); on
    PostgreSQL the EXCLUDE constraint backs it up.
    """
    overlapping = Visit.ends_at > start
    if start <= now:
        overlapping = overlapping | (Visit.status == VisitStatus.in_progress)
    elif start < now + fleet.OVERRUN_HOLD:
        overlapping = overlapping | (
            (Visit.status == VisitStatus.in_progress) & (Visit.ends_at <= now)
        )
    stmt = select(Visit.id).where(
        Visit.caregiver_id == caregiver_id,
        Visit.status.in_(ACTIVE_VISIT_STATUSES),
        Visit.starts_at < end,
        overlapping,
    )
    if ignore is not None:
        stmt = stmt.where(Visit.id != ignore)
    if await session.scalar(stmt.limit(1)) is not None:
        raise Conflict(BUSY, code="caregiver_busy")


async def _flush_visits(session: AsyncSession) -> None:
    """Flush visit changes; the database's own guards become 409s, never 500s."""
    try:
        await session.flush()
    except IntegrityError as exc:
        code = _violated(exc)
        detail = BUSY if code == "caregiver_busy" else "The order already has a caregiver."
        raise Conflict(detail, code=code) from exc


async def _judged(
    session: AsyncSession,
    order: Order,
    caregiver_id: uuid.UUID,
    event: Event,
    *,
    override: bool,
    config: DispatchConfig,
    now: datetime,
) -> tuple[Caregiver, rules.Verdict]:
    """The caregiver, checked by the engine's rules for this order (``rules.check``). The
    order's state is checked first: an order that cannot move says so, whoever is chosen."""
    if not can(event, order.status):
        verb = event.value.replace("_", " ")
        raise Conflict(
            f"Cannot {verb} an order that is {order.status.value}.",
            code="illegal_transition",
            extra={"order_status": order.status.value, "event": event.value},
        )
    await offer_machine.lock_order(session, order.id)  # the order first, then the caregiver
    caregiver = await _assignable_caregiver(session, caregiver_id, order.district_id)
    verdict = await rules.check(
        session, order, caregiver.id, now=now, config=config, override=override
    )
    return caregiver, verdict


def _record(
    session: AsyncSession,
    principal: Principal,
    order: Order,
    caregiver_id: uuid.UUID,
    verdict: rules.Verdict,
    *,
    event: Event,
    reason: str,
    now: datetime,
) -> str | None:
    """The operator's decision beside the dispatcher's (``kind="manual"``): who chose whom,
    where the engine placed the visit, and any rule the operator overrode, with the reason.
    Returns the history's reason (the operator's words, and what they overrode)."""
    overridden = [b.as_json() for b in verdict.overridden]
    session.add(
        DispatchDecision(
            order_id=order.id,
            kind="manual",
            caregiver_ids=[str(caregiver_id)],
            reason=reason or None,
            explanation={
                "event": event.value,
                "by": str(principal.id),
                "starts_at": verdict.start.isoformat(),
                "travel_s": round(verdict.travel_s),
                "distance_m": None if verdict.distance_m is None else round(verdict.distance_m),
                "time_zone": verdict.time_zone,
                "overridden": overridden,
            },
            at=now,
        )
    )
    if not overridden:
        return reason or None
    codes = ", ".join(b["code"] for b in overridden)
    return f"Overrode {codes}: {reason}"


async def assign(
    session: AsyncSession,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    caregiver_id: uuid.UUID,
    reason: str,
    now: datetime,
    override: bool = False,
    config: DispatchConfig | None = None,
) -> Order:
    """An operator places an order with a caregiver (from pending, offered or escalated).

    The engine's rules judge the choice (``rules.check``): 409 naming the broken rule; a soft
    one only with ``override`` (and a reason, which the schema requires). The visit starts
    where the engine places it."""
    order = await orders.get(session, principal, order_id)
    caregiver, verdict = await _judged(
        session,
        order,
        caregiver_id,
        Event.assign,
        override=override,
        config=config or DispatchConfig(),
        now=now,
    )
    said = _record(
        session, principal, order, caregiver.id, verdict, event=Event.assign, reason=reason, now=now
    )
    await transition(
        session,
        order,
        Event.assign,
        actor_id=principal.id,
        at=now,
        reason=said,
        caregiver_id=caregiver.id,
        values={"caregiver_id": caregiver.id},
    )
    await offer_machine.withdraw_open(
        session, order, now=now, reason="an operator assigned the order by hand"
    )
    await book(session, order, caregiver.id, actor_id=principal.id, now=now, start=verdict.start)
    return order


async def reassign(
    session: AsyncSession,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    caregiver_id: uuid.UUID,
    reason: str,
    now: datetime,
    override: bool = False,
    config: DispatchConfig | None = None,
) -> Order:
    """Move an assigned order to another caregiver; the first visit is released. The new
    caregiver is judged as for ``assign``."""
    order = await orders.get(session, principal, order_id)
    if order.caregiver_id == caregiver_id:
        raise Conflict("The order is already with this caregiver.", code="same_caregiver")
    caregiver, verdict = await _judged(
        session,
        order,
        caregiver_id,
        Event.reassign,
        override=override,
        config=config or DispatchConfig(),
        now=now,
    )
    said = _record(
        session,
        principal,
        order,
        caregiver.id,
        verdict,
        event=Event.reassign,
        reason=reason,
        now=now,
    )
    await transition(
        session,
        order,
        Event.reassign,
        actor_id=principal.id,
        at=now,
        reason=said,
        caregiver_id=caregiver.id,
        values={"caregiver_id": caregiver.id},
    )
    await orders.end_active_visit(
        session, order.id, status=VisitStatus.reassigned, reason=reason or "reassigned"
    )
    await offer_machine.release_accepted(session, order, reason="reassigned by an operator")
    await book(session, order, caregiver.id, actor_id=principal.id, now=now, start=verdict.start)
    return order


def _visit_scope(principal: Principal) -> Select[Visit, Order]:
    stmt = select(Visit, Order).join(Order, Order.id == Visit.order_id)
    if principal.role is Role.caregiver:
        return stmt.where(Visit.caregiver_id == principal.id)
    if principal.role is Role.provider:
        return stmt.join(Caregiver, Caregiver.id == Visit.caregiver_id).where(
            Caregiver.provider_id == principal.provider_id
        )
    if principal.role is Role.operator:
        return stmt.where(Order.district_id == principal.district_id)
    return stmt.where(false())


async def _get(
    session: AsyncSession, principal: Principal, visit_id: uuid.UUID
) -> tuple[Visit, Order]:
    row = (await session.execute(_visit_scope(principal).where(Visit.id == visit_id))).one_or_none()
    if row is None:
        raise NotFound("No such visit.")
    return row[0], row[1]


def contact_visible(visit: Visit, principal: Principal) -> bool:
    """A caregiver sees the senior's contact from assignment to check-out, and only then."""
    return principal.role is Role.caregiver and visit.status in (
        VisitStatus.assigned,
        VisitStatus.in_progress,
    )


async def _view(
    session: AsyncSession, principal: Principal, visit: Visit, order: Order, *, now: datetime
) -> VisitOut:
    senior = await session.get(Senior, order.senior_id)
    assert senior is not None
    distance = None
    contact = None
    # Distance is location data too: an exact distance from several positions pins the home
    # down, so it goes only to the caregiver who may see the address anyway.
    if contact_visible(visit, principal):
        caregiver = await session.get(Caregiver, visit.caregiver_id)
        if caregiver is not None and caregiver.lat is not None and caregiver.lon is not None:
            distance = round(haversine_m(caregiver.lat, caregiver.lon, order.lat, order.lon), 1)
        contact = SeniorContact.model_validate(senior)
        audit.record_read(
            session,
            principal,
            senior_id=senior.id,
            action="visit.contact",
            fields=CONTACT_FIELDS,
            object_id=visit.id,
            at=now,
        )
    return _out(visit, order, senior, distance, contact)


def _out(
    visit: Visit,
    order: Order,
    senior: Senior,
    distance: float | None,
    contact: SeniorContact | None,
) -> VisitOut:
    return VisitOut(
        id=visit.id,
        order_id=order.id,
        caregiver_id=visit.caregiver_id,
        status=visit.status.value,
        order_status=order.status,
        service_code=order.service_code,
        priority=order.priority,
        starts_at=visit.starts_at,
        ends_at=visit.ends_at,
        checked_in_at=visit.checked_in_at,
        checked_out_at=visit.checked_out_at,
        actual_duration_min=visit.actual_duration_min,
        neighbourhood=senior.neighbourhood,
        distance_m=distance,
        senior=contact,
    )


async def get_view(
    session: AsyncSession, principal: Principal, visit_id: uuid.UUID, *, now: datetime
) -> VisitOut:
    visit, order = await _get(session, principal, visit_id)
    return await _view(session, principal, visit, order, now=now)


async def list_views(
    session: AsyncSession,
    principal: Principal,
    *,
    status: VisitStatus | None,
    page: PageParams,
) -> tuple[list[VisitOut], str | None]:
    """Lists never carry contact details: open a visit to see them (and be audited)."""
    stmt = _visit_scope(principal)
    if status is not None:
        stmt = stmt.where(Visit.status == status)
    rows, next_cursor = await fetch_page(
        session, stmt, [Key(Visit.starts_at, desc=True), Key(Visit.id)], page, entities=2
    )
    seniors = {
        s.id: s
        for s in (
            await session.execute(
                select(Senior).where(Senior.id.in_({r[1].senior_id for r in rows}))
            )
        ).scalars()
    }
    views = [_out(visit, order, seniors[order.senior_id], None, None) for visit, order in rows]
    return views, next_cursor


async def check_in(
    session: AsyncSession,
    principal: Principal,
    visit_id: uuid.UUID,
    *,
    lat: float,
    lon: float,
    settings: Settings,
    now: datetime,
) -> VisitOut:
    """The caregiver is at the door: accepted only within the geofence around the home."""
    visit, order = await _get(session, principal, visit_id)
    distance = haversine_m(lat, lon, order.lat, order.lon)
    if visit.status is VisitStatus.assigned and distance > settings.checkin_radius_m:
        raise Unprocessable(
            f"You are {distance:.0f} m from the senior's home; check-in is accepted within "
            f"{settings.checkin_radius_m:.0f} m.",
            code="too_far",
            extra={"distance_m": round(distance, 1), "radius_m": settings.checkin_radius_m},
        )
    return await _start(
        session,
        principal,
        visit,
        order,
        settings=settings,
        now=now,
        lat=lat,
        lon=lon,
        distance=distance,
        reason=None,
    )


async def operator_check_in(
    session: AsyncSession,
    principal: Principal,
    visit_id: uuid.UUID,
    *,
    reason: str,
    settings: Settings,
    now: datetime,
) -> VisitOut:
    """An operator records a check-in the geofence could not (no GPS, wrong pin), with a reason."""
    visit, order = await _get(session, principal, visit_id)
    return await _start(
        session,
        principal,
        visit,
        order,
        settings=settings,
        now=now,
        lat=None,
        lon=None,
        distance=None,
        reason=reason,
    )


# The visit moves in step with its order: event -> (visit status it needs, visit status after).
VISIT_STEPS = {
    Event.check_in: (VisitStatus.assigned, VisitStatus.in_progress),
    Event.check_out: (VisitStatus.in_progress, VisitStatus.completed),
    Event.withdraw: (VisitStatus.assigned, VisitStatus.withdrawn),
}


async def _step(
    session: AsyncSession,
    principal: Principal,
    visit: Visit,
    order: Order,
    event: Event,
    *,
    now: datetime,
    reason: str | None,
    values: dict[str, object] | None = None,
) -> None:
    """Move the visit and its order together; the order's conditional UPDATE picks one winner."""
    needs, becomes = VISIT_STEPS[event]
    if visit.status is not needs:
        raise Conflict(
            f"Cannot {event.value.replace('_', ' ')} a visit that is {visit.status.value}.",
            code="illegal_transition",
        )
    await transition(
        session,
        order,
        event,
        actor_id=principal.id,
        at=now,
        reason=reason,
        caregiver_id=visit.caregiver_id,
        values=values,
    )
    visit.status = becomes


async def _start(
    session: AsyncSession,
    principal: Principal,
    visit: Visit,
    order: Order,
    *,
    settings: Settings,
    now: datetime,
    lat: float | None,
    lon: float | None,
    distance: float | None,
    reason: str | None,
) -> VisitOut:
    opens = visit.starts_at - timedelta(minutes=settings.checkin_early_minutes)
    if visit.status is VisitStatus.assigned and now < opens:
        raise Conflict(
            f"This visit starts at {visit.starts_at.isoformat()}; check-in opens "
            f"{settings.checkin_early_minutes} min before.",
            code="too_early",
            extra={"opens_at": opens.isoformat()},
        )
    # Starting early books the caregiver from now: no other visit may be open or booked then.
    start = min(visit.starts_at, now)
    await _refuse_clash(session, visit.caregiver_id, start, visit.ends_at, now=now, ignore=visit.id)
    await _step(session, principal, visit, order, Event.check_in, now=now, reason=reason)
    visit.starts_at = start
    visit.checked_in_at = now
    visit.checked_in_by = principal.id
    visit.check_in_lat, visit.check_in_lon = lat, lon
    visit.check_in_distance_m = round(distance, 1) if distance is not None else None
    visit.check_in_override_reason = reason
    await _flush_visits(session)
    return await _view(session, principal, visit, order, now=now)


async def check_out(
    session: AsyncSession, principal: Principal, visit_id: uuid.UUID, *, notes: str, now: datetime
) -> VisitOut:
    """Done: record how long it took; the booked slot shrinks to the real end, never grows."""
    visit, order = await _get(session, principal, visit_id)
    await _step(session, principal, visit, order, Event.check_out, now=now, reason=notes or None)
    assert visit.checked_in_at is not None
    visit.checked_out_at = now
    visit.actual_duration_min = max(0, round((now - visit.checked_in_at).total_seconds() / 60))
    visit.ends_at = max(visit.starts_at, min(visit.ends_at, now))
    visit.end_reason = notes or None
    await session.flush()
    return await _view(session, principal, visit, order, now=now)


async def withdraw(
    session: AsyncSession, principal: Principal, visit_id: uuid.UUID, *, reason: str, now: datetime
) -> VisitOut:
    """The caregiver cannot go after all: the order returns to dispatch with priority up."""
    visit, order = await _get(session, principal, visit_id)
    await _step(
        session,
        principal,
        visit,
        order,
        Event.withdraw,
        now=now,
        reason=reason,
        values={"caregiver_id": None, "redispatch_count": order.redispatch_count + 1},
    )
    await offer_machine.release_accepted(session, order, reason="the caregiver withdrew")
    visit.end_reason = reason
    await session.flush()
    return await _view(session, principal, visit, order, now=now)


async def order_visits(session: AsyncSession, order_id: uuid.UUID) -> Sequence[Visit]:
    """Every visit an order has had, oldest first (operators' history view)."""
    stmt = select(Visit).where(Visit.order_id == order_id).order_by(Visit.assigned_at)
    return (await session.execute(stmt)).scalars().all()
