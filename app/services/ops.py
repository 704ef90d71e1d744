"""Operator views that combine orders, visits, seniors and caregivers: the queue, order
detail, the district map and a manual assignment's candidates (KPIs: ``app.services.kpis``)."""

import math
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.dispatch.policy import DispatchConfig
from app.dispatch.scoring import cost_parts, total
from app.errors import Conflict
from app.models import (
    TERMINAL_STATUSES,
    Account,
    Caregiver,
    DispatchDecision,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    Provider,
    Senior,
    Visit,
    VisitStatus,
)
from app.schemas.console import (
    BrokenRule,
    CandidateOut,
    CandidatesOut,
    CaregiverName,
    CaregiverState,
    MapCaregiver,
    MapLine,
    MapOrder,
    MapOut,
    OrderView,
    QueueRow,
)
from app.schemas.offers import DecisionOut
from app.schemas.orders import HistoryOut, VisitBrief
from app.services import audit, dispatch, orders, rules, seniors, visits


async def queue_items(
    session: AsyncSession, orders: Sequence[Order], *, settings: Settings, now: datetime
) -> list[QueueRow]:
    """Queue rows with their timers, the offers currently out, and people by name."""
    open_offers: dict[uuid.UUID, list[Offer]] = defaultdict(list)
    if orders:
        for offer in await session.scalars(
            select(Offer)
            .where(Offer.order_id.in_([o.id for o in orders]), Offer.status == OfferStatus.open)
            .order_by(Offer.created_at)
        ):
            open_offers[offer.order_id].append(offer)
    seniors = await _senior_names(session, {o.senior_id for o in orders})
    caregivers = await _caregiver_names(
        session,
        {o.caregiver_id for o in orders if o.caregiver_id is not None}
        | {offer.caregiver_id for offers in open_offers.values() for offer in offers},
    )
    config = dispatch.engine_config(settings)
    items = []
    for order in orders:
        item = QueueRow.model_validate(order, from_attributes=True, context=None)
        item.waiting_s = max(0, int((now - order.created_at).total_seconds()))
        if order.status in _BEFORE_CHECK_IN:
            item.response_due_at = dispatch.response_due(order, settings, config)
            item.time_left_s = int((item.response_due_at - now).total_seconds())
        offers = open_offers.get(order.id, [])
        item.offered_to = [o.caregiver_id for o in offers]
        item.offer_deadline = min((o.deadline for o in offers), default=None)
        item.senior_name, item.senior_neighbourhood = seniors.get(order.senior_id, ("", ""))
        if order.caregiver_id is not None:
            item.caregiver_name = caregivers.get(order.caregiver_id)
        item.offered = [
            CaregiverName(id=o.caregiver_id, name=caregivers.get(o.caregiver_id, ""))
            for o in offers
        ]
        items.append(item)
    return items


# The response target runs until the caregiver is at the door (check-in).
_BEFORE_CHECK_IN = frozenset(
    {OrderStatus.pending, OrderStatus.offered, OrderStatus.escalated, OrderStatus.assigned}
)


async def _senior_names(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """Senior id -> (name, neighbourhood): what the operator's lists show, no personal data."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Senior.id, Senior.name, Senior.neighbourhood).where(Senior.id.in_(list(ids)))
    )
    return {sid: (name, neighbourhood) for sid, name, neighbourhood in rows}


async def _caregiver_names(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Caregiver.id, Caregiver.name).where(Caregiver.id.in_(list(ids)))
    )
    return {cid: name for cid, name in rows}


async def decisions(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID
) -> list[DecisionOut]:
    """Every dispatch decision about the order, oldest first, with the engine's reasons."""
    order = await orders.get(session, principal, order_id)
    rows = await session.scalars(
        select(DispatchDecision)
        .where(DispatchDecision.order_id == order.id)
        .order_by(DispatchDecision.id)
    )
    return [DecisionOut.model_validate(d) for d in rows]


async def order_detail(
    session: AsyncSession,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    settings: Settings,
    now: datetime,
) -> OrderView:
    """Everything an operator needs to step in, including the senior's contact (audited)."""
    order = await orders.get(session, principal, order_id, history=True)
    senior = await seniors.profile(
        session, principal, order.senior_id, action="order.detail", now=now
    )
    [item] = await queue_items(session, [order], settings=settings, now=now)
    return OrderView(
        **item.model_dump(),
        history=[HistoryOut.model_validate(h) for h in order.history],
        visits=[VisitBrief.model_validate(v) for v in await visits.order_visits(session, order.id)],
        decisions=await decisions(session, principal, order.id),
        senior=senior,
    )


# A senior's home on the map is rounded to this many decimals of a degree (3: ~110 m north-south,
# ~90 m east-west in Xi'an): enough to see where help is needed, never enough to find a door.
MAP_DECIMALS = 3


async def district_map(session: AsyncSession, principal: Principal, *, now: datetime) -> MapOut:
    """The district now: open orders at the seniors' homes, caregivers on duty with their last
    position and state, and a line for every open offer and active visit between the two.

    Seniors' homes are shown rounded (``MAP_DECIMALS``), not exactly: the map is read every few
    seconds all day, so it carries no personal data and writes no audit row; the exact address
    is in the order's detail, whose read is audited."""
    district_id = principal.district_id
    assert district_id is not None
    open_orders = (
        await session.execute(
            select(
                Order.id,
                Order.senior_id,
                Senior.name,
                Order.lat,
                Order.lon,
                Order.status,
                Order.priority,
            )
            .join(Senior, Senior.id == Order.senior_id)
            .where(Order.district_id == district_id, Order.status.not_in(TERMINAL_STATUSES))
            .order_by(Order.created_at, Order.id)
        )
    ).all()
    on_duty = (
        await session.execute(
            select(
                Caregiver.id, Caregiver.name, Caregiver.lat, Caregiver.lon, Caregiver.position_at
            )
            .join(Provider, Provider.id == Caregiver.provider_id)
            .join(Account, Account.id == Caregiver.id)
            .where(Provider.district_id == district_id, Account.is_active, Caregiver.on_duty)
            .order_by(Caregiver.name, Caregiver.id)
        )
    ).all()
    ids = [c.id for c in on_duty]
    links: list[tuple[uuid.UUID, uuid.UUID, str]] = []  # (caregiver, order, kind)
    if ids:
        links.extend(
            (cid, oid, status.value)
            for cid, oid, status in await session.execute(
                select(Visit.caregiver_id, Visit.order_id, Visit.status).where(
                    Visit.caregiver_id.in_(ids),
                    Visit.status.in_((VisitStatus.assigned, VisitStatus.in_progress)),
                )
            )
        )
        links.extend(
            (cid, oid, "offered")
            for cid, oid in await session.execute(
                select(Offer.caregiver_id, Offer.order_id).where(
                    Offer.caregiver_id.in_(ids), Offer.status == OfferStatus.open
                )
            )
        )
    engaged = {"in_progress": 3, "assigned": 2, "offered": 1}
    state: dict[uuid.UUID, CaregiverState] = {}
    for cid, _oid, kind in links:
        if engaged[kind] > engaged.get(state.get(cid, CaregiverState.idle), 0):
            state[cid] = CaregiverState(kind)
    shown = {o.id for o in open_orders}
    return MapOut(
        district_id=district_id,
        as_of=now,
        orders=[
            MapOrder(
                order_id=o.id,
                senior_id=o.senior_id,
                senior_name=o.name,
                lat=round(o.lat, MAP_DECIMALS),
                lon=round(o.lon, MAP_DECIMALS),
                status=o.status,
                priority=o.priority,
            )
            for o in open_orders
        ],
        caregivers=[
            MapCaregiver(
                id=c.id,
                name=c.name,
                lat=c.lat,
                lon=c.lon,
                position_at=c.position_at,
                state=state.get(c.id, CaregiverState.idle),
            )
            for c in on_duty
        ],
        lines=[
            MapLine(order_id=oid, caregiver_id=cid, kind=kind)
            for cid, oid, kind in sorted(links, key=lambda link: (str(link[1]), str(link[0])))
            if oid in shown
        ],
    )


async def _caregiver_contacts(
    session: AsyncSession, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str, str]]:
    """Caregiver id -> (name, phone, provider's name): what tells two namesakes apart and lets
    the duty desk call them (operators see their district's caregivers' phones anyway)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Caregiver.id, Caregiver.name, Caregiver.phone, Provider.name)
        .join(Provider, Provider.id == Caregiver.provider_id)
        .where(Caregiver.id.in_(list(ids)))
    )
    return {cid: (name, phone, provider) for cid, name, phone, provider in rows}


def _id(engine_id: object) -> uuid.UUID:
    """The caregiver's id back from the engine's value (``fleet`` builds them from UUIDs)."""
    assert isinstance(engine_id, uuid.UUID)
    return engine_id


_OPEN_FOR_ASSIGNMENT = frozenset({OrderStatus.pending, OrderStatus.offered, OrderStatus.escalated})


async def candidates(
    session: AsyncSession,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    config: DispatchConfig,
    now: datetime,
) -> CandidatesOut:
    """Every active caregiver of the district judged for a manual assignment of the open order.

    This is the engine's own judgement, not a second copy of the rules: each caregiver goes
    through ``rules.judge`` (the reference ``place`` that ``POST .../assign`` runs, which sets
    soft rules aside one by one to list them all), and the feasible ones are ranked by the
    engine's cost (``scoring.cost_parts``, ties by caregiver id as in ``assign.rank``). It is
    plain Python over the district's roster (no compiled kernels, no dispatch pass), so an API
    worker can afford it for a district's caregivers. Unlike the dispatcher, it judges
    everyone, including those off duty or without a position, so the operator sees why each one
    is out. A caregiver with no reported position whom no rule excludes (a visit booked for
    later) is ranked after those with one: the engine cannot tell their travel.

    Reading this list is audited (``order.candidates``, ``distance_m``): distances from known
    positions locate the senior's home."""
    order = await orders.get(session, principal, order_id)
    if order.status not in _OPEN_FOR_ASSIGNMENT:
        raise Conflict(
            f"Only a pending, offered or escalated order can be assigned; this one is "
            f"{order.status.value}.",
            code="not_assignable",
            extra={"order_status": order.status.value},
        )
    judging = await rules.judge(session, order, now=now, config=config)
    people = await _caregiver_contacts(session, [_id(j.caregiver.id) for j in judging.judged])
    want, cfg, t = judging.order, judging.config, now.timestamp()
    ranked: list[tuple[tuple[int, float, int], CandidateOut]] = []
    for position, j in enumerate(judging.judged):
        c = j.caregiver
        distance = None if j.unlocated else round(haversine_m(c.lat, c.lon, want.lat, want.lon))
        name, phone, provider_name = people.get(_id(c.id), ("", "", ""))
        out = CandidateOut(
            caregiver_id=_id(c.id),
            name=name,
            phone=phone,
            provider_name=provider_name,
            verdict="feasible",
            rank=None,
            distance_m=distance,
            travel_s=None,
            starts_at=None,
            cost=None,
            parts=None,
            rules=[BrokenRule(code=b.code, detail=b.detail, overridable=b.soft) for b in j.broken],
        )
        p = j.placement
        if p is not None:
            out.starts_at = datetime.fromtimestamp(p.start, UTC)
            out.travel_s = None if j.unlocated else round(p.travel_s)
        far = float(distance) if distance is not None else math.inf
        if j.hard:
            out.verdict = "excluded"
            key = (3, far, position)
        elif j.broken:
            out.verdict = "overridable"
            key = (2, far, position)
        elif j.unlocated:
            key = (1, far, position)
        else:
            assert p is not None
            parts = cost_parts(want, c, p, t, cfg)
            out.cost = round(total(parts), 1)
            out.parts = {k: round(v, 1) + 0.0 for k, v in parts.items()}  # no -0.0
            key = (0, total(parts), position)
        ranked.append((key, out))
    ranked.sort(key=lambda item: item[0])
    result = [out for _, out in ranked]
    for i, out in enumerate(o for o in result if o.verdict == "feasible"):
        out.rank = i + 1
    audit.record_read(
        session,
        principal,
        senior_id=order.senior_id,
        action="order.candidates",
        fields="distance_m",
        object_id=order.id,
        at=now,
    )
    return CandidatesOut(
        order_id=order.id, as_of=now, time_zone=judging.time_zone.key, candidates=result
    )
