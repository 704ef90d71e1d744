"""The order state machine: the only place an order's status changes.

Each transition is a conditional ``UPDATE ... WHERE id = :id AND status = :expected AND
version = :loaded``: of two racing transactions exactly one matches, the other gets a 409 — even
when the winner left the status as it was (a reassignment is assigned -> assigned). Every transition writes one
history row and one outbox event in the same transaction (DESIGN.md invariants 1 and 4).
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import Conflict
from app.models import Order, OrderStatus, OrderStatusHistory
from app.services import events

S = OrderStatus


class Event(StrEnum):
    place = "place"
    offer = "offer"
    decline = "decline"
    expire = "expire"
    accept = "accept"
    assign = "assign"
    reassign = "reassign"
    escalate = "escalate"
    check_in = "check_in"
    check_out = "check_out"
    withdraw = "withdraw"
    no_show = "no_show"
    cancel = "cancel"


# event -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[Event, tuple[frozenset[OrderStatus], OrderStatus]] = {
    Event.offer: (frozenset({S.pending}), S.offered),
    Event.decline: (frozenset({S.offered}), S.pending),
    Event.expire: (frozenset({S.offered}), S.pending),
    Event.accept: (frozenset({S.offered}), S.assigned),
    Event.assign: (frozenset({S.pending, S.offered, S.escalated}), S.assigned),
    Event.reassign: (frozenset({S.assigned}), S.assigned),
    Event.escalate: (frozenset({S.pending, S.offered}), S.escalated),
    Event.check_in: (frozenset({S.assigned}), S.in_progress),
    Event.check_out: (frozenset({S.in_progress}), S.completed),
    Event.withdraw: (frozenset({S.assigned}), S.pending),
    Event.no_show: (frozenset({S.assigned}), S.pending),
    Event.cancel: (frozenset({S.pending, S.offered, S.assigned, S.escalated}), S.cancelled),
}


def can(event: Event, status: OrderStatus) -> bool:
    return status in TRANSITIONS[event][0]


async def record_placed(
    session: AsyncSession, order: Order, *, actor_id: uuid.UUID, at: datetime
) -> None:
    """History and event for a new order (the machine's entry point)."""
    session.add(
        OrderStatusHistory(
            order_id=order.id,
            from_status=None,
            to_status=order.status.value,
            event=Event.place.value,
            actor_id=actor_id,
            at=at,
        )
    )
    await events.record(session, type="order.placed", order=order, at=at)


async def transition(
    session: AsyncSession,
    order: Order,
    event: Event,
    *,
    actor_id: uuid.UUID | None,
    at: datetime,
    reason: str | None = None,
    caregiver_id: uuid.UUID | None = None,
    values: dict[str, Any] | None = None,
) -> Order:
    """Move ``order`` by ``event`` or raise 409; ``values`` are set in the same UPDATE."""
    sources, target = TRANSITIONS[event]
    current = order.status
    if current not in sources:
        raise Conflict(
            f"Cannot {event.value.replace('_', ' ')} an order that is {current.value}.",
            code="illegal_transition",
            extra={"order_status": current.value, "event": event.value},
        )
    changes = {"status": target, "updated_at": at, "version": order.version + 1, **(values or {})}
    changed = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == current, Order.version == order.version)
        .values(**changes)
        .returning(Order.id)
        .execution_options(synchronize_session=False)
    )
    if changed.first() is None:
        raise Conflict(
            "The order was changed by someone else; reload it and try again.",
            code="concurrent_change",
        )
    await _moved(session, order, current, event, changes, at, actor_id, reason, caregiver_id)
    return order


async def _moved(
    session: AsyncSession,
    order: Order,
    current: OrderStatus,
    event: Event,
    changes: dict[str, Any],
    at: datetime,
    actor_id: uuid.UUID | None,
    reason: str | None,
    caregiver_id: uuid.UUID | None,
) -> None:
    """After the UPDATE: mirror it on the loaded object (without marking it dirty: no second
    write), and add the history row and the outbox event."""
    for key, value in changes.items():
        set_committed_value(order, key, value)
    session.add(
        OrderStatusHistory(
            order_id=order.id,
            from_status=current.value,
            to_status=order.status.value,
            event=event.value,
            actor_id=actor_id,
            reason=reason,
            at=at,
        )
    )
    await events.record(
        session,
        type=f"order.{event.value}",
        order=order,
        at=at,
        caregiver_id=caregiver_id,
        # No free text: reasons and check-out notes can hold health details, and events reach
        # audiences (providers, streams) that may not see them; the history keeps them.
        payload={"from": current.value, "event": event.value},
    )


async def transition_all(
    session: AsyncSession,
    orders: list[Order],
    event: Event,
    *,
    at: datetime,
    caregiver_ids: dict[uuid.UUID, uuid.UUID | None],
) -> None:
    """``transition`` for many orders the caller has locked, in one UPDATE (the dispatcher's
    batches of offers). Every order must be in a status ``event`` starts from."""
    if not orders:
        return
    sources, target = TRANSITIONS[event]
    for order in orders:
        if order.status not in sources:
            raise Conflict(f"Cannot {event.value} an order that is {order.status.value}.")
    # Locked by the caller, so what it read is current: one UPDATE for all of them.
    changed = (
        await session.execute(
            update(Order)
            .where(Order.id.in_([o.id for o in orders]), Order.status.in_(sources))
            .values(status=target, updated_at=at, version=Order.version + 1)
            .returning(Order.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if len(changed) != len(orders):
        raise Conflict(
            "The order was changed by someone else; reload it and try again.",
            code="concurrent_change",
        )
    for order in orders:
        changes = {"status": target, "updated_at": at, "version": order.version + 1}
        caregiver_id = caregiver_ids.get(order.id)
        await _moved(session, order, order.status, event, changes, at, None, None, caregiver_id)
