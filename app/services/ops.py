"""Operator views that combine orders, visits and seniors."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Principal
from app.models import Order
from app.schemas.orders import HistoryOut, OrderDetail, OrderQueueItem, VisitBrief
from app.services import orders, seniors, visits


def queue_item(order: Order, now: datetime) -> OrderQueueItem:
    item = OrderQueueItem.model_validate(order, from_attributes=True, context=None)
    item.waiting_s = max(0, int((now - order.created_at).total_seconds()))
    return item


async def order_detail(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID, *, now: datetime
) -> OrderDetail:
    """Everything an operator needs to step in, including the senior's contact (audited)."""
    order = await orders.get(session, principal, order_id, history=True)
    senior = await seniors.profile(
        session, principal, order.senior_id, action="order.detail", now=now
    )
    return OrderDetail(
        **queue_item(order, now).model_dump(),
        history=[HistoryOut.model_validate(h) for h in order.history],
        visits=[VisitBrief.model_validate(v) for v in await visits.order_visits(session, order.id)],
        senior=senior,
    )
