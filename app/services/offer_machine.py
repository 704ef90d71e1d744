"""Offer state changes shared by the caregivers' answers, the dispatcher and cancellation.

Each one runs with the order's row locked by the caller (``lock_order``, or the order's own
conditional UPDATE): the order's lock is always taken before any of its offers'.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.dispatch.assign import Candidate
from app.errors import NotFound
from app.models import DispatchDecision, Offer, OfferStatus, Order, OrderStatus
from app.services import events
from app.services.order_machine import Event, transition, transition_all


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> Order:
    """The order, locked for this transaction and freshly read (whatever a transaction that held
    the lock before us committed is what we see)."""
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise NotFound("No such order.")
    return order


async def release_if_none_open(
    session: AsyncSession, order: Order, event: Event, *, now: datetime, reason: str
) -> None:
    still_open = await session.scalar(
        select(Offer.id).where(Offer.order_id == order.id, Offer.status == OfferStatus.open)
    )
    if still_open is None and order.status is OrderStatus.offered:
        await transition(session, order, event, actor_id=None, at=now, reason=reason)


async def event(
    session: AsyncSession, type: str, order: Order, offer: Offer, now: datetime
) -> None:
    await events.record(
        session,
        type=type,
        order=order,
        at=now,
        caregiver_id=offer.caregiver_id,
        # Who was asked is between dispatch, the caregiver, their provider and operators.
        senior_sees=False,
        payload={
            "offer_id": str(offer.id),
            "offer_status": offer.status.value,
            "deadline": offer.deadline.isoformat(),
        },
    )


async def withdraw_open(
    session: AsyncSession, order: Order, *, now: datetime, reason: str
) -> list[Offer]:
    """Withdraw the order's open offers (the caller holds the order's lock)."""
    withdrawn = (
        (
            await session.execute(
                update(Offer)
                .where(Offer.order_id == order.id, Offer.status == OfferStatus.open)
                .values(status=OfferStatus.withdrawn, responded_at=now, reason=reason)
                .returning(Offer)
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    for offer in withdrawn:
        await event(session, "offer.withdrawn", order, offer, now)
    return list(withdrawn)


async def release_accepted(session: AsyncSession, order: Order, *, reason: str) -> None:
    """The order's accepted offer no longer holds it (its visit ended undone): mark it so, and
    the order can be accepted again (one accepted offer per order at a time)."""
    await session.execute(
        update(Offer)
        .where(Offer.order_id == order.id, Offer.status == OfferStatus.accepted)
        .values(status=OfferStatus.released, reason=reason)
        .execution_options(synchronize_session=False)
    )


async def expire_due(session: AsyncSession, order: Order, *, now: datetime) -> int:
    """Expire the order's open offers past their deadline (the caller holds the order's lock);
    with none left open the order returns to dispatch."""
    expired = (
        (
            await session.execute(
                update(Offer)
                .where(
                    Offer.order_id == order.id,
                    Offer.status == OfferStatus.open,
                    Offer.deadline <= now,
                )
                .values(status=OfferStatus.expired)
                .returning(Offer)
                .execution_options(synchronize_session=False)
            )
        )
        .scalars()
        .all()
    )
    for offer in expired:
        await event(session, "offer.expired", order, offer, now)
    if expired:
        await release_if_none_open(session, order, Event.expire, now=now, reason="offer expired")
    return len(expired)


async def make_all(
    session: AsyncSession,
    offers: Sequence[tuple[Order, Sequence[Candidate], DispatchDecision, datetime]],
    *,
    now: datetime,
) -> list[Offer]:
    """Offer each pending order (locked by the caller) to its chosen caregivers at once, with
    its deadline: one insert for the offers and one UPDATE for the orders."""
    made: list[Offer] = []
    single: dict[uuid.UUID, uuid.UUID | None] = {}
    for order, chosen, decision, deadline in offers:
        mine = []
        for candidate in chosen:
            assert isinstance(candidate.caregiver_id, uuid.UUID)
            mine.append(
                Offer(
                    order_id=order.id,
                    caregiver_id=candidate.caregiver_id,
                    status=OfferStatus.open,
                    decision_id=decision.id,
                    starts_at=datetime.fromtimestamp(candidate.start, now.tzinfo),
                    travel_s=round(candidate.travel_s),
                    distance_m=round(candidate.distance_m),
                    created_at=now,
                    deadline=deadline,
                )
            )
        single[order.id] = mine[0].caregiver_id if len(mine) == 1 else None
        made += mine
    session.add_all(made)
    await session.flush()
    orders = [order for order, *_ in offers]
    await transition_all(session, orders, Event.offer, at=now, caregiver_ids=single)
    by_id = {o.id: o for o in orders}
    for offer in made:
        await event(session, "offer.created", by_id[offer.order_id], offer, now)
    return made
