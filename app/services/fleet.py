"""What the engine needs, read from the database: caregivers and orders as engine values.

The engine (``app.dispatch``) is pure; this module is the one translation from rows to its
inputs. Times become UTC epoch seconds; a certificate is valid through its expiry date (UTC),
as for a manual assignment.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.dispatch import model
from app.dispatch.constraints import DAY_S
from app.dispatch.policy import DispatchConfig
from app.models import (
    Account,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
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


def epoch(at: datetime) -> float:
    return at.timestamp()


def certificate_expiry(expires_on: date | None) -> float | None:
    """Valid through the whole expiry date (UTC): the first instant it is no longer valid."""
    if expires_on is None:
        return None
    return datetime.combine(expires_on + timedelta(days=1), time(), UTC).timestamp()


async def caregivers(
    session: AsyncSession,
    *,
    district_ids: Iterable[uuid.UUID],
    senior_ids: Iterable[uuid.UUID],
    now: datetime,
    config: DispatchConfig,
) -> list[model.Caregiver]:
    """Every active caregiver on duty with a known position in these districts."""
    rows = (
        (
            await session.execute(
                select(Caregiver)
                .join(Account, Account.id == Caregiver.id)
                .join(Provider, Provider.id == Caregiver.provider_id)
                .where(
                    Provider.district_id.in_(list(district_ids)),
                    Account.is_active,
                    Caregiver.on_duty,
                    Caregiver.lat.is_not(None),
                    Caregiver.lon.is_not(None),
                    Caregiver.position_at.is_not(None),
                )
                .order_by(Caregiver.id)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        return []
    ids = [c.id for c in rows]
    skills: dict[uuid.UUID, dict[str, float | None]] = defaultdict(dict)
    for s in (
        await session.execute(select(CaregiverSkill).where(CaregiverSkill.caregiver_id.in_(ids)))
    ).scalars():
        skills[s.caregiver_id][s.skill] = certificate_expiry(s.certificate_expires_on)
    shifts: dict[uuid.UUID, list[tuple[float, float]]] = defaultdict(list)
    for sh in (
        await session.execute(
            select(Shift).where(
                Shift.caregiver_id.in_(ids), Shift.ends_at > now, Shift.starts_at < now + HORIZON
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
            Visit.caregiver_id.in_(ids),
            Visit.status.in_((VisitStatus.assigned, VisitStatus.in_progress)),
            Visit.starts_at < now + HORIZON,
        )
        .order_by(Visit.starts_at)
    )
    for cid, status, starts, ends, lat, lon in booked:
        end = epoch(ends)
        if status is VisitStatus.in_progress:
            end = max(end, epoch(now))  # an open visit holds the caregiver until check-out
        if end <= epoch(now) - DAY_S:
            continue
        bookings[cid].append(model.Booking(epoch(starts), end, lat, lon))
    # Completed today (local day), for the daily cap and the workload term.
    day_start = (epoch(now) + config.utc_offset_s) // DAY_S * DAY_S - config.utc_offset_s
    today = datetime.fromtimestamp(day_start, UTC)
    done_today = dict(
        (
            await session.execute(
                select(Visit.caregiver_id, func.count())
                .where(
                    Visit.caregiver_id.in_(ids),
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
                    Visit.caregiver_id.in_(ids),
                    Visit.status == VisitStatus.completed,
                    Order.senior_id.in_(seniors),
                )
                .group_by(Visit.caregiver_id, Order.senior_id)
            )
        ).all():
            served[cid][sid] = count
    out = []
    for c in rows:
        assert c.lat is not None
        assert c.lon is not None
        assert c.position_at is not None
        out.append(
            model.Caregiver(
                id=c.id,
                lat=c.lat,
                lon=c.lon,
                position_at=epoch(c.position_at),
                on_duty=True,
                skills=skills[c.id],
                shifts=tuple(sorted(shifts[c.id])),
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
    return out


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
