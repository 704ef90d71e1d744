"""Orders: placing (idempotent), reading within the caller's scope, cancelling, rating, SOS."""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, case, false, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.config import Settings
from app.deps import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    PRIORITY_RANK,
    TERMINAL_STATUSES,
    Caregiver,
    Order,
    OrderStatus,
    Priority,
    Role,
    Senior,
    Service,
    Visit,
    VisitStatus,
)
from app.schemas.orders import OrderIn, OrderOut
from app.services import idempotency, offer_machine
from app.services.order_machine import Event, record_placed, transition
from app.services.paging import fetch_page

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
) -> tuple[OrderOut, bool]:
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
            return OrderOut.model_validate(replay), True
    senior = await _senior(session, principal.id)
    order = await _create(session, senior, data, actor_id=principal.id, settings=settings, now=now)
    out = OrderOut.model_validate(order)
    if idempotency_key is not None:
        await idempotency.store_response(
            session,
            account_id=principal.id,
            key=idempotency_key,
            status=201,
            body=out.model_dump(mode="json"),
        )
    return out, False


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
    limit: int,
    offset: int,
) -> tuple[Sequence[Order], int | None]:
    stmt = _scoped(principal).order_by(Order.created_at.desc(), Order.id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return await fetch_page(session, stmt, limit=limit, offset=offset)


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
    # An emergency is never below anything; then escalations, then priority, oldest first.
    emergency_first = case((Order.priority == Priority.emergency, 0), else_=1)
    escalated_next = case(
        (Order.status == OrderStatus.escalated, 0),
        ((Order.status == OrderStatus.assigned) & Order.no_show_at.is_not(None), 0),
        else_=1,
    )
    by_priority = case(*((Order.priority == p, rank) for p, rank in PRIORITY_RANK.items()), else_=9)
    return stmt.order_by(emergency_first, escalated_next, by_priority, Order.created_at, Order.id)


async def queue(
    session: AsyncSession,
    principal: Principal,
    *,
    status: OrderStatus | None,
    priority: Priority | None,
    service_code: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Order], int | None]:
    stmt = queue_query(principal, status=status, priority=priority, service_code=service_code)
    return await fetch_page(session, stmt, limit=limit, offset=offset)
