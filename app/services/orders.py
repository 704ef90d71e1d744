"""Orders: placing (idempotent), reading within the caller's scope, cancelling, rating, SOS,
and the senior's view of them (who is coming, when, the status in plain words)."""

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.config import Settings
from app.deps import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    ACTIVE_VISIT_STATUSES,
    PRIORITY_RANK,
    TERMINAL_STATUSES,
    Caregiver,
    Order,
    OrderStatus,
    OrderStatusHistory,
    Priority,
    Role,
    Senior,
    Service,
    Visit,
    VisitStatus,
)
from app.schemas.orders import (
    SENIOR_STATUS_TEXT,
    CaregiverForSenior,
    HistoryOut,
    OrderIn,
    OrderOut,
    SeniorOrderDetail,
    SeniorOrderOut,
    SeniorStatus,
)
from app.services import idempotency, offer_machine
from app.services.order_machine import Event, record_placed, transition
from app.services.paging import Key, PageParams, fetch_page

SOS_SERVICE = "emergency_help"


async def list_services(session: AsyncSession) -> Sequence[Service]:
    return (
        (await session.execute(select(Service).where(Service.active).order_by(Service.code)))
        .scalars()
        .all()
    )


async def _create(
    session: AsyncSession,
    senior: Senior,
    data: OrderIn,
    *,
    actor_id: uuid.UUID,
    settings: Settings,
    now: datetime,
) -> Order:
    service = await session.get(Service, data.service_code)
    if service is None or not service.active:
        raise Unprocessable(f"Unknown service {data.service_code!r}.", code="unknown_service")
    if data.window_end is not None and data.window_end <= now:
        raise Unprocessable("The time window has already ended.", code="window_in_past")
    days = settings.order_max_days_ahead
    if data.window_end is not None and data.window_end > now + timedelta(days=days):
        raise Unprocessable(
            f"Orders can be placed at most {days} days ahead.", code="window_too_far"
        )
    duration = data.duration_min or service.default_duration_min
    if (
        data.window_start
        and data.window_end
        and data.window_end - data.window_start < timedelta(minutes=duration)
    ):
        raise Unprocessable(
            f"The window is shorter than the visit ({duration} min).", code="window_too_short"
        )
    order = Order(
        senior_id=senior.id,
        district_id=senior.district_id,
        service_code=service.code,
        priority=data.priority,
        status=OrderStatus.pending,
        asap=data.window_start is None,
        window_start=data.window_start,
        window_end=data.window_end,
        duration_min=duration,
        price_fen=service.price_fen,
        notes=data.notes,
        lat=senior.lat,
        lon=senior.lon,
        created_by=actor_id,
        created_at=now,
        updated_at=now,
    )
    if order.priority is not Priority.emergency:
        # Only an emergency can clash with a unique index here (one open per senior).
        session.add(order)
        await session.flush()
        await record_placed(session, order, actor_id=actor_id, at=now)
        return order
    try:
        # Inside the savepoint: begin_nested() flushes what is pending before it starts.
        async with session.begin_nested():
            session.add(order)
            await session.flush()
    except IntegrityError as exc:
        if not _is_open_emergency_clash(exc):
            raise
        open_id = await session.scalar(_open_emergency(senior.id).with_only_columns(Order.id))
        raise Conflict(
            "An emergency is already open for this senior.",
            code="emergency_open",
            extra={"order_id": str(open_id)},
        ) from exc
    await record_placed(session, order, actor_id=actor_id, at=now)
    return order


def _is_open_emergency_clash(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    return "uq_care_order_open_emergency" in text or "care_order.senior_id" in text


def _open_emergency(senior_id: uuid.UUID) -> Select[Order]:
    return select(Order).where(
        Order.senior_id == senior_id,
        Order.priority == Priority.emergency,
        Order.status.not_in(TERMINAL_STATUSES),
    )


async def _senior(session: AsyncSession, senior_id: uuid.UUID) -> Senior:
    senior = await session.get(Senior, senior_id)
    if senior is None:
        raise NotFound("No such senior.")
    return senior


async def place(
    session: AsyncSession,
    principal: Principal,
    data: OrderIn,
    *,
    settings: Settings,
    idempotency_key: str | None,
    now: datetime,
) -> tuple[SeniorOrderOut, bool]:
    """Place an order for the calling senior; returns it and whether it is a replay."""
    if idempotency_key is not None:
        fingerprint = idempotency.request_fingerprint(data.model_dump(mode="json"))
        replay = await idempotency.claim(
            session,
            account_id=principal.id,
            key=idempotency_key,
            fingerprint=fingerprint,
            now=now,
            ttl=timedelta(hours=settings.idempotency_ttl_hours),
        )
        if replay is not None:
            return _replayed(replay), True
    senior = await _senior(session, principal.id)
    order = await _create(session, senior, data, actor_id=principal.id, settings=settings, now=now)
    out = await senior_view(session, order)
    if idempotency_key is not None:
        await idempotency.store_response(
            session,
            account_id=principal.id,
            key=idempotency_key,
            status=201,
            body=out.model_dump(mode="json"),
        )
    return out, False


def _replayed(body: Mapping[str, Any]) -> SeniorOrderOut:
    """The first response again. One stored before the senior's fields existed gets them as
    they were then: a new order is pending, with nobody assigned."""
    if "status_code" not in body:
        code = SeniorStatus.finding_caregiver
        body = {
            **body,
            "caregiver": None,
            "planned_start": None,
            "eta": None,
            "status_code": code,
            "status_text": SENIOR_STATUS_TEXT[code],
        }
    return SeniorOrderOut.model_validate(body)


async def sos(
    session: AsyncSession, principal: Principal, *, settings: Settings, now: datetime
) -> tuple[Order, bool]:
    """Help now: an emergency order at home. Pressing again returns the open one (no duplicate).

    A partial unique index (one open emergency per senior) makes this hold for racing presses
    too: the loser's insert fails inside a savepoint and it answers with the winner's order.
    """
    senior = await _senior(session, principal.id)
    existing = await session.scalar(_open_emergency(senior.id))
    if existing is not None:
        return existing, False
    data = OrderIn(service_code=SOS_SERVICE, priority=Priority.emergency, notes="SOS")
    try:
        order = await _create(
            session, senior, data, actor_id=principal.id, settings=settings, now=now
        )
    except Conflict as exc:
        if exc.code != "emergency_open":
            raise
        existing = await session.scalar(_open_emergency(senior.id))
        assert existing is not None
        return existing, False
    return order, True


def _scoped(principal: Principal) -> Select[Order]:
    """Orders the caller may see; anything else is a 404."""
    stmt = select(Order)
    if principal.role is Role.senior:
        return stmt.where(Order.senior_id == principal.id)
    if principal.role is Role.operator:
        return stmt.where(Order.district_id == principal.district_id)
    return stmt.where(false())


async def get(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID, *, history: bool = False
) -> Order:
    stmt = _scoped(principal).where(Order.id == order_id)
    if history:
        stmt = stmt.options(selectinload(Order.history))
    order = await session.scalar(stmt)
    if order is None:
        raise NotFound("No such order.")
    return order


async def list_for_senior(
    session: AsyncSession,
    principal: Principal,
    *,
    status: OrderStatus | None,
    page: PageParams,
) -> tuple[list[Order], str | None]:
    """The senior's orders, newest first; an order placed meanwhile goes before the first page."""
    stmt = _scoped(principal)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return await fetch_page(session, stmt, [Key(Order.created_at, desc=True), Key(Order.id)], page)


_SENIOR_STATUS = {
    OrderStatus.pending: SeniorStatus.finding_caregiver,
    OrderStatus.offered: SeniorStatus.asking_caregiver,
    OrderStatus.assigned: SeniorStatus.caregiver_coming,
    OrderStatus.in_progress: SeniorStatus.caregiver_here,
    OrderStatus.completed: SeniorStatus.visit_done,
    OrderStatus.escalated: SeniorStatus.duty_desk_arranging,
    OrderStatus.cancelled: SeniorStatus.cancelled,
}


def _senior_status(order: Order, visit: Visit | None) -> SeniorStatus:
    """Only the state, never an operator's or the engine's reason: an escalated SOS says that
    a person has the call; a caregiver flagged as not at the door says the desk knows."""
    if order.status is OrderStatus.escalated and order.priority is Priority.emergency:
        return SeniorStatus.duty_desk_on_it
    if (
        order.status is OrderStatus.assigned
        and visit is not None
        and order.no_show_at is not None
        and order.no_show_at >= visit.assigned_at  # flagged for this visit, not an earlier one
    ):
        return SeniorStatus.caregiver_late
    return _SENIOR_STATUS[order.status]


def _senior_view(
    order: Order, visit: Visit | None, name: str | None, *, own_cancel: bool
) -> SeniorOrderOut:
    caregiver = None
    if visit is not None and name is not None:
        caregiver = CaregiverForSenior(
            id=visit.caregiver_id, display_name=name, initial=name.strip()[:1].upper()
        )
    code = _senior_status(order, visit)
    # An ETA is for "as soon as possible": a booked window's visit has its planned start.
    awaited = order.status is OrderStatus.assigned and visit is not None and order.asap
    base = OrderOut.model_validate(order).model_dump()
    base["cancel_reason"] = order.cancel_reason if own_cancel else None
    return SeniorOrderOut(
        **base,
        caregiver=caregiver,
        planned_start=visit.starts_at if visit is not None else None,
        eta=visit.starts_at if awaited and visit is not None else None,
        status_code=code,
        status_text=SENIOR_STATUS_TEXT[code],
    )


async def senior_views(session: AsyncSession, orders: Sequence[Order]) -> list[SeniorOrderOut]:
    """The senior's view of each order, in the given order: the caregiver (name and initial)
    from assignment to completion, planned start and ETA (UTC), and the status as a stable
    code with an English sentence. Two queries whatever the number of orders."""
    ids = [o.id for o in orders]
    # Sessions do not autoflush: what this unit of work changed (a cancel's history row, a new
    # visit) must be in the database before it is read back.
    await session.flush()
    visits: dict[uuid.UUID, tuple[Visit, str]] = {}
    if ids:
        # An active visit (assigned, in progress or completed) is unique per order; an open
        # offer has none, so an offered order shows nobody.
        rows = await session.execute(
            select(Visit, Caregiver.name)
            .join(Caregiver, Caregiver.id == Visit.caregiver_id)
            .where(Visit.order_id.in_(ids), Visit.status.in_(ACTIVE_VISIT_STATUSES))
        )
        visits = {visit.order_id: (visit, name) for visit, name in rows}
    # Invariant 6: a senior reads a cancel reason only when she cancelled herself.
    with_reason = [o.id for o in orders if o.cancel_reason is not None]
    own_cancels: set[uuid.UUID] = set()
    if with_reason:
        own_cancels = set(
            await session.scalars(
                select(OrderStatusHistory.order_id)
                .join(Order, Order.id == OrderStatusHistory.order_id)
                .where(
                    OrderStatusHistory.order_id.in_(with_reason),
                    OrderStatusHistory.event == Event.cancel.value,
                    OrderStatusHistory.actor_id == Order.senior_id,
                )
            )
        )
    out = []
    for order in orders:
        visit, name = visits.get(order.id, (None, None))
        out.append(_senior_view(order, visit, name, own_cancel=order.id in own_cancels))
    return out


async def senior_view(session: AsyncSession, order: Order) -> SeniorOrderOut:
    """``senior_views`` for one order."""
    return (await senior_views(session, [order]))[0]


async def senior_detail(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID
) -> SeniorOrderDetail:
    """One of the caller's orders with its history; reasons only on the senior's own steps
    (what caregivers, operators and the engine wrote stays with them)."""
    order = await get(session, principal, order_id, history=True)
    history = [HistoryOut.model_validate(h) for h in order.history]
    for step in history:
        if step.actor_id != principal.id:
            step.reason = None
    view = await senior_view(session, order)
    return SeniorOrderDetail(**view.model_dump(), history=history)


async def cancel(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID, *, reason: str, now: datetime
) -> Order:
    """Cancel before the caregiver is at the door; open offers are withdrawn and an assigned
    visit is released."""
    order = await get(session, principal, order_id)
    released = order.caregiver_id
    await transition(
        session,
        order,
        Event.cancel,
        actor_id=principal.id,
        at=now,
        reason=reason,
        caregiver_id=released,
        values={"cancel_reason": reason, "caregiver_id": None},
    )
    await offer_machine.withdraw_open(session, order, now=now, reason="the order was cancelled")
    await offer_machine.release_accepted(session, order, reason="the order was cancelled")
    await end_active_visit(session, order.id, status=VisitStatus.cancelled, reason=reason)
    return order


async def end_active_visit(
    session: AsyncSession, order_id: uuid.UUID, *, status: VisitStatus, reason: str | None
) -> Visit | None:
    """Release the order's assigned (not yet started) visit, if any."""
    visit = await session.scalar(
        select(Visit).where(Visit.order_id == order_id, Visit.status == VisitStatus.assigned)
    )
    if visit is not None:
        visit.status = status
        visit.end_reason = reason
        await session.flush()
    return visit


async def rate(
    session: AsyncSession,
    principal: Principal,
    order_id: uuid.UUID,
    *,
    score: int,
    comment: str,
    now: datetime,
) -> Order:
    """Rate once: a conditional UPDATE, so two racing ratings cannot both count."""
    order = await get(session, principal, order_id)
    if order.status is not OrderStatus.completed:
        raise Conflict("Only a completed order can be rated.", code="not_completed")
    rated = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.rating.is_(None))
        .values(rating=score, rating_comment=comment, rated_at=now)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    if rated.first() is None:
        raise Conflict("This order has already been rated.", code="already_rated")
    await session.refresh(order)
    caregiver_id = await session.scalar(
        select(Visit.caregiver_id).where(
            Visit.order_id == order.id, Visit.status == VisitStatus.completed
        )
    )
    if caregiver_id is not None:
        await session.execute(
            update(Caregiver)
            .where(Caregiver.id == caregiver_id)
            .values(
                rating_sum=Caregiver.rating_sum + score,
                rating_count=Caregiver.rating_count + 1,
            )
            .execution_options(synchronize_session=False)
        )
    return order


# The queue's order: an emergency is never below anything; then escalations (and caregivers
# flagged as not at the door), then priority, oldest first; the id makes every place unique.
QUEUE_KEYS = (
    Key(case((Order.priority == Priority.emergency, 0), else_=1)),
    Key(
        case(
            (Order.status == OrderStatus.escalated, 0),
            ((Order.status == OrderStatus.assigned) & Order.no_show_at.is_not(None), 0),
            else_=1,
        )
    ),
    Key(case(*((Order.priority == p, rank) for p, rank in PRIORITY_RANK.items()), else_=9)),
    Key(Order.created_at),
    Key(Order.id),
)


def queue_query(
    principal: Principal,
    *,
    status: OrderStatus | None,
    priority: Priority | None,
    service_code: str | None,
) -> Select[Order]:
    """The district's live queue, most urgent first."""
    stmt = _scoped(principal).where(Order.status.not_in(TERMINAL_STATUSES))
    if status is not None:
        stmt = stmt.where(Order.status == status)
    if priority is not None:
        stmt = stmt.where(Order.priority == priority)
    if service_code is not None:
        stmt = stmt.where(Order.service_code == service_code)
    return stmt.order_by(*(key.expr for key in QUEUE_KEYS))


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    status: OrderStatus | None,
    priority: Priority | None,
    service_code: str | None,
    page: PageParams,
) -> tuple[list[Order], str | None]:
    stmt = queue_query(principal, status=status, priority=priority, service_code=service_code)
    return await fetch_page(session, stmt, QUEUE_KEYS, page)
