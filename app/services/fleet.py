"""What the engine needs, read from the database: caregivers and orders as engine values.

The engine (``app.dispatch``) is pure; this module is the one translation from rows to its
inputs, used alike by the dispatcher and by an operator's manual assignment. Times become UTC
epoch seconds. A *day* is a date in the district's time zone (DESIGN.md, Time):

- a certificate "valid through D" is valid until local midnight after D; that instant is the
  certificate's expiry for the engine, which requires the whole visit to end by then;
- "completed today" counts visits since the district's local midnight;
- the engine's daily caps cut days at the zone's UTC offset at ``now`` (``district_config``).
"""

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.dispatch import model
from app.dispatch.constraints import DAY_S
from app.dispatch.policy import DispatchConfig
from app.localtime import end_of_day, local_date, start_of_day, utc_offset_s, zone
from app.models import (
    Account,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
    District,
    Order,
    PreferenceKind,
    Provider,
    Senior,
    Service,
    Shift,
    Visit,
    VisitStatus,
)

# Bookings and shifts further ahead than this do not matter to what is dispatched now.
HORIZON = timedelta(days=3)
# A visit in progress past its booked end (she has not checked out) holds its caregiver this much
# longer from now: when she will leave is unknown, and a plan that sends her on at once would
# promise the next senior an arrival that cannot happen. The engine's bookings and the booking
# guard (``visits._refuse_clash``) use the same figure.
OVERRUN_HOLD = timedelta(minutes=15)


def held_until(ends_at: datetime, *, in_progress: bool, now: datetime) -> datetime:
    """When a visit stops occupying its caregiver: its booked end, or for an open visit that has
    run past it, ``now + OVERRUN_HOLD`` (UTC)."""
    if in_progress and ends_at <= now:
        return now + OVERRUN_HOLD
    return ends_at


# Where a caregiver is whose position is unknown: never fresh (an ASAP order's rule), so the
# place given is only a stand-in the caller chooses (``Roster.unlocated`` names them).
NEVER = -math.inf


def epoch(at: datetime) -> float:
    return at.timestamp()


async def district_zone(session: AsyncSession, district_id: uuid.UUID) -> ZoneInfo:
    """The district's time zone."""
    name = await session.scalar(select(District.time_zone).where(District.id == district_id))
    if name is None:
        raise LookupError(f"no district {district_id}")
    return zone(name)


def district_config(config: DispatchConfig, tz: ZoneInfo, now: datetime) -> DispatchConfig:
    """``config`` for a district: its days start at the zone's UTC offset in force at ``now``."""
    return replace(config, utc_offset_s=utc_offset_s(tz, now))


def certificate_expiry(expires_on: date | None, tz: ZoneInfo) -> float | None:
    """Valid through the whole expiry date in the district's zone: the first instant (epoch
    seconds) it is no longer valid, local midnight after ``expires_on``."""
    if expires_on is None:
        return None
    return epoch(end_of_day(expires_on, tz))


@dataclass(frozen=True, slots=True)
class Roster:
    """Caregivers as engine values. Those in ``unlocated`` have no known position: their value
    stands at the caller's stand-in place with a position that is never fresh."""

    caregivers: list[model.Caregiver]
    unlocated: frozenset[uuid.UUID] = frozenset()


async def caregivers(
    session: AsyncSession,
    *,
    district_id: uuid.UUID,
    senior_ids: Iterable[uuid.UUID],
    now: datetime,
    tz: ZoneInfo,
    everyone: bool = False,
    ids: Collection[uuid.UUID] | None = None,
    until: datetime | None = None,
    stand_in: tuple[float, float] = (0.0, 0.0),
) -> Roster:
    """The district's active caregivers as the engine sees them at ``now``.

    By default only those on duty with a known position (whom the dispatcher may ask);
    ``everyone`` adds the rest (off duty: ``on_duty=False``; no position: at ``stand_in``).
    ``ids`` narrows to those caregivers; shifts and bookings are read up to ``until`` when it
    lies beyond the usual horizon (a visit booked days ahead).
    """
    stmt = (
        select(Caregiver)
        .join(Account, Account.id == Caregiver.id)
        .join(Provider, Provider.id == Caregiver.provider_id)
        .where(Provider.district_id == district_id, Account.is_active)
        .order_by(Caregiver.id)
    )
    if not everyone:
        stmt = stmt.where(
            Caregiver.on_duty,
            Caregiver.lat.is_not(None),
            Caregiver.lon.is_not(None),
            Caregiver.position_at.is_not(None),
        )
    if ids is not None:
        stmt = stmt.where(Caregiver.id.in_(list(ids)))
    rows = (await session.execute(stmt)).scalars().all()
    if not rows:
        return Roster([])
    horizon = max(now + HORIZON, until or now)
    found = [c.id for c in rows]
    skills: dict[uuid.UUID, dict[str, float | None]] = defaultdict(dict)
    for s in (
        await session.execute(select(CaregiverSkill).where(CaregiverSkill.caregiver_id.in_(found)))
    ).scalars():
        skills[s.caregiver_id][s.skill] = certificate_expiry(s.certificate_expires_on, tz)
    shifts: dict[uuid.UUID, list[tuple[float, float]]] = defaultdict(list)
    for sh in (
        await session.execute(
            select(Shift).where(
                Shift.caregiver_id.in_(found), Shift.ends_at > now, Shift.starts_at < horizon
            )
        )
    ).scalars():
        shifts[sh.caregiver_id].append((epoch(sh.starts_at), epoch(sh.ends_at)))
    bookings: dict[uuid.UUID, list[model.Booking]] = defaultdict(list)
    booked = await session.execute(
        select(
            Visit.caregiver_id, Visit.status, Visit.starts_at, Visit.ends_at, Order.lat, Order.lon
        )
        .join(Order, Order.id == Visit.order_id)
        .where(
            Visit.caregiver_id.in_(found),
            Visit.status.in_((VisitStatus.assigned, VisitStatus.in_progress)),
            Visit.starts_at < horizon,
        )
        .order_by(Visit.starts_at)
    )
    for cid, status, starts, ends, lat, lon in booked:
        end = epoch(held_until(ends, in_progress=status is VisitStatus.in_progress, now=now))
        if end <= epoch(now) - DAY_S:
            continue
        bookings[cid].append(model.Booking(epoch(starts), end, lat, lon))
    # Completed today (the district's local day), for the daily cap and the workload term.
    today = start_of_day(local_date(now, tz), tz)
    done_today = dict(
        (
            await session.execute(
                select(Visit.caregiver_id, func.count())
                .where(
                    Visit.caregiver_id.in_(found),
                    Visit.status == VisitStatus.completed,
                    Visit.starts_at >= today,
                )
                .group_by(Visit.caregiver_id)
            )
        ).all()
    )
    served: dict[uuid.UUID, dict[model.Id, int]] = defaultdict(dict)
    seniors = list(set(senior_ids))
    if seniors:
        for cid, sid, count in (
            await session.execute(
                select(Visit.caregiver_id, Order.senior_id, func.count())
                .join(Order, Order.id == Visit.order_id)
                .where(
                    Visit.caregiver_id.in_(found),
                    Visit.status == VisitStatus.completed,
                    Order.senior_id.in_(seniors),
                )
                .group_by(Visit.caregiver_id, Order.senior_id)
            )
        ).all():
            served[cid][sid] = count
    out = []
    unlocated = set()
    for c in rows:
        if c.lat is None or c.lon is None or c.position_at is None:
            unlocated.add(c.id)
            (lat, lon), seen = stand_in, NEVER
        else:
            lat, lon, seen = c.lat, c.lon, epoch(c.position_at)
        out.append(
            model.Caregiver(
                id=c.id,
                lat=lat,
                lon=lon,
                position_at=seen,
                on_duty=c.on_duty,
                skills=skills[c.id],
                shifts=_worked(shifts[c.id]),
                bookings=_disjoint(bookings[c.id]),
                languages=frozenset(c.languages),
                gender=c.gender.value,
                radius_m=float(c.service_radius_m),
                served=served[c.id],
                visits_today=done_today.get(c.id, 0),
                daily_cap=c.daily_visit_cap,
                rating=c.rating_sum / c.rating_count if c.rating_count else None,
            )
        )
    return Roster(out, frozenset(unlocated))


def _worked(shifts: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """The caregiver's shifts as the stretches they work: one shift ending when the next begins
    is one stretch (a visit may run across the handover of a caregiver on call around the
    clock; the engine fits a visit inside one shift)."""
    out: list[tuple[float, float]] = []
    for start, end in sorted(shifts):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _disjoint(bookings: Sequence[model.Booking]) -> tuple[model.Booking, ...]:
    """Sorted and never overlapping, as the engine requires (an open visit running over its
    booked end can overlap the next booking: the later one then starts when it ends)."""
    out: list[model.Booking] = []
    for b in sorted(bookings, key=lambda b: b.start):
        if out and b.start < out[-1].end:
            start = out[-1].end
            b = model.Booking(start, max(start, b.end), b.lat, b.lon)
        out.append(b)
    return tuple(out)


async def orders(session: AsyncSession, rows: Sequence[Order]) -> list[model.Order]:
    """The engine's view of these orders: skills, the senior's wishes, preferred and blocked."""
    if not rows:
        return []
    services = {
        s.code: s
        for s in (
            await session.execute(
                select(Service).where(Service.code.in_({o.service_code for o in rows}))
            )
        ).scalars()
    }
    senior_ids = {o.senior_id for o in rows}
    seniors = {
        s.id: s
        for s in (await session.execute(select(Senior).where(Senior.id.in_(senior_ids)))).scalars()
    }
    preferred: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    blocked: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for p in (
        await session.execute(
            select(CaregiverPreference).where(CaregiverPreference.senior_id.in_(senior_ids))
        )
    ).scalars():
        (preferred if p.kind is PreferenceKind.preferred else blocked)[p.senior_id].add(
            p.caregiver_id
        )
    out = []
    for o in rows:
        senior = seniors[o.senior_id]
        out.append(
            model.Order(
                id=o.id,
                senior_id=o.senior_id,
                lat=o.lat,
                lon=o.lon,
                duration_s=o.duration_min * 60.0,
                skills=frozenset(services[o.service_code].required_skills),
                priority=model.Priority(o.priority.value),
                window_start=None if o.asap or o.window_start is None else epoch(o.window_start),
                window_end=None if o.asap or o.window_end is None else epoch(o.window_end),
                preferred=frozenset(preferred[o.senior_id]),
                blocked=frozenset(blocked[o.senior_id]),
                gender=senior.preferred_gender.value if senior.preferred_gender else None,
                gender_strict=senior.gender_strict,
                languages=frozenset(senior.languages),
            )
        )
    return out
