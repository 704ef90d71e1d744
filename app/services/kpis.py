"""Today's figures for an operator's district, in the district's own day.

*Today* is the district's local date at ``now`` (``District.time_zone``): the UTC instants from
its local midnight to the next (``app.localtime``; 23 or 25 hours across a DST change).

Three queries, whatever the size of the day: one row per order placed today (with its first
offer and first check-in from correlated ``min()`` sub-queries on the indexed ``order_id``
columns), one ``GROUP BY`` over today's status history, and a count of today's no-shows. Medians and percentiles are taken
in Python from the first query's rows, so both databases give the same figures (SQLite has no
``percentile_cont``).
"""

import math
import statistics
import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Principal
from app.localtime import end_of_day, local_date, start_of_day
from app.models import Offer, Order, OrderStatus, OrderStatusHistory, Priority, Visit
from app.schemas.console import KpisOut
from app.services import fleet
from app.services.order_machine import Event

FILLED = frozenset({OrderStatus.assigned, OrderStatus.in_progress, OrderStatus.completed})
_COUNTED = (Event.escalate, Event.check_out)


def p95(values: list[float]) -> float | None:
    """The 95th percentile by nearest rank: the smallest value with at least 95 % of the
    values at or below it (of 20 values, the 19th smallest); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


async def today(session: AsyncSession, principal: Principal, *, now: datetime) -> KpisOut:
    """The district's figures for its local date at ``now`` (see ``KpisOut`` for each one).

    - ``fill_rate`` = ``filled`` / ``asap_placed``: of the orders placed today to be served
      as soon as possible (SOS included), the share whose status is now assigned, in progress
      or completed; cancelled, pending, offered and escalated ones are not filled. Orders
      booked for a later window are left out: they are offered only as their window nears.
      Null when no such order was placed.
    - ``first_offer_median_s``: median of (first offer's ``created_at`` - order's
      ``created_at``) in seconds over today's ASAP orders that received an offer.
    - ``sos_first_offer_p95_s`` and ``sos_arrival_p95_s``: over today's emergencies, nearest-
      rank 95th percentile of seconds to the first offer, and to the first check-in of a
      visit for the order.
    - ``escalations``, ``completed``: status changes recorded today (events ``escalate``,
      ``check_out``) on the district's orders, placed on any day; ``no_shows``: the district's
      orders whose caregiver was flagged today for not checking in (``Order.no_show_at``, set
      whether the order is re-dispatched or only flagged, ``no_show_redispatch``).
    """
    district_id = principal.district_id
    assert district_id is not None
    tz = await fleet.district_zone(session, district_id)
    day = local_date(now, tz)
    start, end = start_of_day(day, tz), end_of_day(day, tz)
    first_offer = (
        select(func.min(Offer.created_at)).where(Offer.order_id == Order.id).scalar_subquery()
    )
    first_check_in = (
        select(func.min(Visit.checked_in_at)).where(Visit.order_id == Order.id).scalar_subquery()
    )
    placed = (
        await session.execute(
            select(
                Order.priority,
                Order.status,
                Order.asap,
                Order.created_at,
                first_offer,
                first_check_in,
            ).where(
                Order.district_id == district_id,
                Order.created_at >= start,
                Order.created_at < end,
            )
        )
    ).all()
    to_offer: list[float] = []
    sos_to_offer: list[float] = []
    sos_to_arrival: list[float] = []
    for priority, _status, asap, created_at, offered_at, checked_in_at in placed:
        sos = priority is Priority.emergency
        # An order booked for a later window is offered when its window nears, by design:
        # its wait says nothing about how fast help comes.
        if offered_at is not None and asap:
            seconds = (offered_at - created_at).total_seconds()
            to_offer.append(seconds)
            if sos:
                sos_to_offer.append(seconds)
        if sos and checked_in_at is not None:
            sos_to_arrival.append((checked_in_at - created_at).total_seconds())
    happened = dict(
        (
            await session.execute(
                select(OrderStatusHistory.event, func.count())
                .join(Order, Order.id == OrderStatusHistory.order_id)
                .where(
                    Order.district_id == district_id,
                    OrderStatusHistory.at >= start,
                    OrderStatusHistory.at < end,
                    OrderStatusHistory.event.in_([e.value for e in _COUNTED]),
                )
                .group_by(OrderStatusHistory.event)
            )
        ).all()
    )
    asap_placed = [status for _p, status, asap, *_ in placed if asap]
    filled = sum(1 for status in asap_placed if status in FILLED)
    no_shows = await session.scalar(
        select(func.count(Order.id)).where(
            Order.district_id == district_id,
            Order.no_show_at >= start,
            Order.no_show_at < end,
        )
    )
    return KpisOut(
        district_id=uuid.UUID(str(district_id)),
        date=day,
        time_zone=tz.key,
        day_start=start,
        day_end=end,
        as_of=now,
        orders_placed=len(placed),
        asap_placed=len(asap_placed),
        filled=filled,
        fill_rate=round(filled / len(asap_placed), 4) if asap_placed else None,
        first_offer_median_s=statistics.median(to_offer) if to_offer else None,
        offered=len(to_offer),
        sos_placed=sum(1 for p, *_ in placed if p is Priority.emergency),
        sos_first_offer_p95_s=p95(sos_to_offer),
        sos_arrival_p95_s=p95(sos_to_arrival),
        sos_arrived=len(sos_to_arrival),
        escalations=happened.get(Event.escalate.value, 0),
        no_shows=no_shows or 0,
        completed=happened.get(Event.check_out.value, 0),
    )
