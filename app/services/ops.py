"""Operator views that combine orders, visits and seniors."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import Principal
from app.models import DispatchDecision, Offer, OfferStatus, Order, OrderStatus
from app.schemas.offers import DecisionOut
from app.schemas.orders import HistoryOut, OrderDetail, OrderQueueItem, VisitBrief
from app.services import dispatch, orders, seniors, visits


async def queue_items(
    session: AsyncSession, orders: Sequence[Order], *, settings: Settings, now: datetime
) -> list[OrderQueueItem]:
    """Queue rows with their timers and the offers currently out."""
    open_offers: dict[uuid.UUID, list[Offer]] = defaultdict(list)
    if orders:
        for offer in await session.scalars(
            select(Offer)
            .where(Offer.order_id.in_([o.id for o in orders]), Offer.status == OfferStatus.open)
            .order_by(Offer.created_at)
        ):
            open_offers[offer.order_id].append(offer)
    config = dispatch.engine_config(settings)
    items = []
    for order in orders:
        item = OrderQueueItem.model_validate(order, from_attributes=True, context=None)
        item.waiting_s = max(0, int((now - order.created_at).total_seconds()))
        if order.status in (OrderStatus.pending, OrderStatus.offered, OrderStatus.escalated):
            item.response_due_at = dispatch.response_due(order, settings, config)
            item.time_left_s = int((item.response_due_at - now).total_seconds())
        offers = open_offers.get(order.id, [])
        item.offered_to = [o.caregiver_id for o in offers]
        item.offer_deadline = min((o.deadline for o in offers), default=None)
        items.append(item)
    return items


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
) -> OrderDetail:
    """Everything an operator needs to step in, including the senior's contact (audited)."""
    order = await orders.get(session, principal, order_id, history=True)
    senior = await seniors.profile(
        session, principal, order.senior_id, action="order.detail", now=now
    )
    [item] = await queue_items(session, [order], settings=settings, now=now)
    return OrderDetail(
        **item.model_dump(),
        history=[HistoryOut.model_validate(h) for h in order.history],
        visits=[VisitBrief.model_validate(v) for v in await visits.order_visits(session, order.id)],
        decisions=await decisions(session, principal, order.id),
        senior=senior,
    )
