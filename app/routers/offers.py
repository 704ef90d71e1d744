"""Offers to a caregiver: list, accept, decline. A provider's system may answer for its
caregivers with its API key."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import NowDep, PageDep, Principal, SessionDep, require
from app.models import OfferStatus, Role
from app.schemas.common import PROBLEM_RESPONSES, Page
from app.schemas.offers import DeclineIn, OfferOut
from app.services import offers

router = APIRouter(prefix="/offers", tags=["offers"], responses=PROBLEM_RESPONSES)

AnswererDep = Annotated[Principal, require(Role.caregiver, Role.provider)]


@router.get("", summary="My offers (a provider: its caregivers'), open ones first")
async def list_offers(
    principal: AnswererDep,
    session: SessionDep,
    page: PageDep,
    now: NowDep,
    status: Annotated[OfferStatus | None, Query()] = None,
) -> Page[OfferOut]:
    items, next_cursor = await offers.list_offers(
        session, principal, status=status, page=page, now=now
    )
    return Page(items=items, limit=page.limit, next_cursor=next_cursor)


@router.get("/{offer_id}", summary="One offer")
async def get_offer(
    offer_id: uuid.UUID, principal: AnswererDep, session: SessionDep, now: NowDep
) -> OfferOut:
    return await offers.get_view(session, principal, offer_id, now=now)


@router.post(
    "/{offer_id}/accept",
    summary="Accept: the order becomes my visit",
    responses={409: {"description": "Expired, withdrawn, declined or already taken (see code)."}},
)
async def accept(
    offer_id: uuid.UUID, principal: AnswererDep, session: SessionDep, now: NowDep
) -> OfferOut:
    """Exactly one caregiver wins an order; the others' offers are withdrawn. The answer's
    ``code`` says why an accept failed: ``offer_expired``, ``offer_withdrawn``,
    ``offer_declined``, ``offer_accepted``, ``order_taken`` or ``caregiver_busy``."""
    return await offers.accept(session, principal, offer_id, now=now)


@router.post("/{offer_id}/decline", summary="Decline, with a reason")
async def decline(
    offer_id: uuid.UUID, data: DeclineIn, principal: AnswererDep, session: SessionDep, now: NowDep
) -> OfferOut:
    return await offers.decline(session, principal, offer_id, reason=data.reason, now=now)
