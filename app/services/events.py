"""The outbox: every committed transition leaves exactly one event (DESIGN.md invariant 4)."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Caregiver, Order, OutboxEvent


async def record(
    session: AsyncSession,
    *,
    type: str,
    order: Order,
    at: datetime,
    caregiver_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
    senior_sees: bool = True,
) -> OutboxEvent:
    """Add an event about ``order`` in the caller's transaction; it commits or vanishes with it."""
    caregiver_id = caregiver_id or order.caregiver_id
    provider_id = None
    if caregiver_id is not None:
        # A caregiver's provider never changes: looked up once per unit of work (the
        # dispatcher fills this in for a whole batch of offers).
        providers: dict[uuid.UUID, uuid.UUID | None] = session.info.setdefault("providers", {})
        if caregiver_id not in providers:
            providers[caregiver_id] = await session.scalar(
                select(Caregiver.provider_id).where(Caregiver.id == caregiver_id)
            )
        provider_id = providers[caregiver_id]
    event = OutboxEvent(
        type=type,
        order_id=order.id,
        senior_id=order.senior_id if senior_sees else None,
        caregiver_id=caregiver_id,
        provider_id=provider_id,
        district_id=order.district_id,
        payload={
            "order_id": str(order.id),
            "status": order.status.value,
            "priority": order.priority.value,
            "service_code": order.service_code,
            "at": at.isoformat(),
            **(payload or {}),
        },
        created_at=at,
    )
    session.add(event)
    # After commit, wake this process's dispatcher and relay (app.dispatcher.loop).
    session.info["outbox"] = True
    return event
