"""Offers: a caregiver (or their provider's system) accepts or declines; the dispatcher makes,
expires and withdraws them.

Every change to an order's offers first locks the order row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the ``BEGIN IMMEDIATE`` transaction already holds the one write lock), then
re-reads the offers: racing accepts queue on that lock and each sees what the one before it
committed, so exactly one wins and every other gets a 409 that says why. Taking the order's
lock before any offer's keeps the lock order the same everywhere (no deadlocks). The order's
conditional UPDATE and the partial unique indexes back this up (DESIGN.md invariants 1-2).
"""

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, case, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Principal
from app.dispatch.policy import DispatchConfig
from app.errors import Conflict, NotFound
from app.models import (
    Account,
    Caregiver,
    Offer,
    OfferStatus,
    Order,
    OrderStatus,
    Role,
    Senior,
    Visit,
    VisitStatus,
)
from app.schemas.offers import OfferOut
from app.services import offer_machine, rules, visits
from app.services.order_machine import Event, transition
from app.services.paging import Key, PageParams, fetch_page

# The engine's rules as the dispatcher applies them (travel model, local day).
ENGINE = DispatchConfig()

CLOSED = {
    OfferStatus.accepted: "You have already accepted this offer.",
    OfferStatus.declined: "You declined this offer.",
    OfferStatus.expired: "This offer has expired.",
    OfferStatus.withdrawn: "This offer was withdrawn",
    OfferStatus.released: "You accepted this offer; its visit has since been released",
}


def _scope(principal: Principal) -> Select[Offer]:
    stmt = select(Offer)
    if principal.role is Role.caregiver:
        return stmt.where(Offer.caregiver_id == principal.id)
    if principal.role is Role.provider:
        return stmt.where(
            Offer.caregiver_id.in_(
                select(Caregiver.id).where(Caregiver.provider_id == principal.provider_id)
            )
        )
    return stmt.where(false())


async def _reload(session: AsyncSession, offer_id: uuid.UUID) -> Offer:
    offer = await session.scalar(
        select(Offer).where(Offer.id == offer_id).execution_options(populate_existing=True)
    )
    assert offer is not None
    return offer


async def _get(session: AsyncSession, principal: Principal, offer_id: uuid.UUID) -> Offer:
    offer = await session.scalar(_scope(principal).where(Offer.id == offer_id))
    if offer is None:
        raise NotFound("No such offer.")
    return offer


async def _views(session: AsyncSession, offers: Sequence[Offer], now: datetime) -> list[OfferOut]:
    if not offers:
        return []
    by_id = {
        o.id: o
        for o in (
            await session.execute(select(Order).where(Order.id.in_({x.order_id for x in offers})))
        ).scalars()
    }
    places = dict(
        (
            await session.execute(
                select(Senior.id, Senior.neighbourhood).where(
                    Senior.id.in_({o.senior_id for o in by_id.values()})
                )
            )
        ).all()
    )
    accepted = [x.id for x in offers if x.status is OfferStatus.accepted]
    visit_of = {}
    if accepted:
        visit_of = dict(
            (
                await session.execute(
                    select(Visit.order_id, Visit.id).where(
                        Visit.order_id.in_({x.order_id for x in offers}),
                        Visit.status.in_((VisitStatus.assigned, VisitStatus.in_progress)),
                    )
                )
            ).all()
        )
    out = []
    for x in offers:
        order = by_id[x.order_id]
        out.append(
            OfferOut(
                id=x.id,
                order_id=order.id,
                caregiver_id=x.caregiver_id,
                status=x.status,
                service_code=order.service_code,
                priority=order.priority,
                asap=order.asap,
                window_start=order.window_start,
                window_end=order.window_end,
                duration_min=order.duration_min,
                neighbourhood=places.get(order.senior_id, ""),
                # Rounded: exact figures from several known positions would pin the home
                # down for a caregiver who is never assigned to it.
                starts_at=_minute_up(x.starts_at),
                travel_s=-(-x.travel_s // 60) * 60,  # whole minutes, rounded up
                distance_m=round(x.distance_m, -2),
                created_at=x.created_at,
                deadline=x.deadline,
                expires_in_s=max(0, int((x.deadline - now).total_seconds()))
                if x.status is OfferStatus.open
                else 0,
                responded_at=x.responded_at,
                visit_id=visit_of.get(order.id)
                if x.status is OfferStatus.accepted and order.caregiver_id == x.caregiver_id
                else None,
            )
        )
    return out


def _minute_up(at: datetime) -> datetime:
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(minutes=1)


async def list_offers(
    session: AsyncSession,
    principal: Principal,
    *,
    status: OfferStatus | None,
    page: PageParams,
    now: datetime,
) -> tuple[list[OfferOut], str | None]:
    """Open offers first (soonest deadline first), then the rest, newest first."""
    stmt = _scope(principal)
    if status is not None:
        stmt = stmt.where(Offer.status == status)
    keys = [
        Key(case((Offer.status == OfferStatus.open, 0), else_=1)),
        Key(Offer.deadline),
        Key(Offer.created_at, desc=True),
        Key(Offer.id),
    ]
    rows, next_cursor = await fetch_page(session, stmt, keys, page)
    return await _views(session, rows, now), next_cursor


async def get_view(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, *, now: datetime
) -> OfferOut:
    return (await _views(session, [await _get(session, principal, offer_id)], now))[0]


def _refuse_closed(offer: Offer, now: datetime) -> None:
    if offer.status is not OfferStatus.open:
        detail = CLOSED[offer.status]
        if offer.status in (OfferStatus.withdrawn, OfferStatus.released):
            detail = f"{detail}: {offer.reason}." if offer.reason else f"{detail}."
        raise Conflict(
            detail,
            code=f"offer_{offer.status.value}",
            extra={"offer_status": offer.status.value},
        )
    if offer.deadline <= now:
        raise Conflict(
            f"This offer expired at {offer.deadline.isoformat()}.",
            code="offer_expired",
            extra={"offer_status": OfferStatus.expired.value},
        )


async def accept(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, *, now: datetime
) -> OfferOut:
    """Take the order: it becomes this caregiver's visit, and every other offer is withdrawn."""
    offer = await _get(session, principal, offer_id)
    order = await offer_machine.lock_order(session, offer.order_id)
    offer = await _reload(session, offer.id)
    _refuse_closed(offer, now)
    active = await session.scalar(select(Account.is_active).where(Account.id == offer.caregiver_id))
    if not active:  # a provider answering for a caregiver whose account was closed
        raise Conflict("This caregiver's account is not active.", code="caregiver_inactive")
    if order.status is not OrderStatus.offered:
        raise Conflict(
            f"The order is {order.status.value}; it can no longer be accepted.",
            code="order_taken",
            extra={"order_status": order.status.value},
        )
    # The caregiver's day may have changed since the offer (an operator booked them, a
    # certificate ran out at local midnight): the engine's hard rules judge the accept too,
    # with the caregiver locked so that nobody books them meanwhile. Soft rules (shift,
    # duty, radius) were weighed when the offer was made.
    await visits.lock_caregiver(session, offer.caregiver_id)
    await rules.check(session, order, offer.caregiver_id, now=now, config=ENGINE, override=True)
    await transition(
        session,
        order,
        Event.accept,
        actor_id=principal.id,
        at=now,
        caregiver_id=offer.caregiver_id,
        values={"caregiver_id": offer.caregiver_id},
    )
    offer.status = OfferStatus.accepted
    offer.responded_at = now
    await session.flush()
    await offer_machine.withdraw_open(
        session, order, now=now, reason="another caregiver took the order"
    )
    # The visit starts when the engine said, shifted by however long the answer took when
    # the caregiver sets out only now (ASAP).
    start = offer.starts_at
    if order.asap:
        start = max(start, now + timedelta(seconds=offer.travel_s))
    await visits.book(
        session, order, offer.caregiver_id, actor_id=principal.id, now=now, start=start
    )
    await offer_machine.event(session, "offer.accepted", order, offer, now)
    return (await _views(session, [offer], now))[0]


async def decline(
    session: AsyncSession,
    principal: Principal,
    offer_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
) -> OfferOut:
    """Say no (with a reason); when no other offer is open, the order goes back to dispatch."""
    offer = await _get(session, principal, offer_id)
    order = await offer_machine.lock_order(session, offer.order_id)
    offer = await _reload(session, offer.id)
    _refuse_closed(offer, now)
    offer.status = OfferStatus.declined
    offer.responded_at = now
    offer.reason = reason
    await session.flush()
    await offer_machine.event(session, "offer.declined", order, offer, now)
    # The caregiver's own words stay on the offer: the order's history (which its senior
    # reads) says only that it was declined.
    await offer_machine.release_if_none_open(
        session, order, Event.decline, now=now, reason="declined by the caregiver"
    )
    return (await _views(session, [offer], now))[0]
