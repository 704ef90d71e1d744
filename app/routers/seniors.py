"""What a senior (or the family helping with the phone) does."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status

from app.deps import NowDep, PageDep, SeniorDep, SessionDep, SettingsDep
from app.models import OrderStatus
from app.schemas.common import PROBLEM_RESPONSES, RATE_LIMITED, Page, ReasonIn
from app.schemas.orders import OrderIn, RatingIn, SeniorOrderDetail, SeniorOrderOut
from app.schemas.people import SeniorProfile
from app.services import limits, orders, seniors

router = APIRouter(tags=["seniors"], responses=PROBLEM_RESPONSES)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Retry safely: the same key and body return the first response (kept 24 h).",
    ),
]


@router.get("/seniors/me", summary="My profile")
async def my_profile(principal: SeniorDep, session: SessionDep, now: NowDep) -> SeniorProfile:
    return await seniors.profile(session, principal, principal.id, action="senior.self", now=now)


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order",
    responses=RATE_LIMITED,
)
async def place_order(
    data: OrderIn,
    principal: SeniorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> SeniorOrderOut:
    await limits.count_order(session, settings, principal.id, now=now)
    out, replayed = await orders.place(
        session, principal, data, settings=settings, idempotency_key=idempotency_key, now=now
    )
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return out


@router.post(
    "/sos",
    status_code=status.HTTP_201_CREATED,
    summary="SOS: help now",
    responses={200: {"model": SeniorOrderOut, "description": "An emergency is already open"}},
)
async def sos(
    principal: SeniorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    response: Response,
) -> SeniorOrderOut:
    """One press, no body: an emergency order at home. Pressing again returns the open one
    (with whoever is coming, or ``status_code: duty_desk_on_it`` once the duty desk has it)."""
    order, created = await orders.sos(session, principal, settings=settings, now=now)
    if not created:
        response.status_code = status.HTTP_200_OK
    return await orders.senior_view(session, order)


@router.get("/orders", summary="My orders")
async def list_orders(
    principal: SeniorDep,
    session: SessionDep,
    page: PageDep,
    status: Annotated[OrderStatus | None, Query()] = None,
) -> Page[SeniorOrderOut]:
    items, next_cursor = await orders.list_for_senior(
        session,
        principal,
        status=status,
        page=page,
    )
    return Page(
        items=await orders.senior_views(session, items),
        limit=page.limit,
        next_cursor=next_cursor,
    )


@router.get("/orders/{order_id}", summary="One of my orders, with its history")
async def get_order(
    order_id: uuid.UUID, principal: SeniorDep, session: SessionDep
) -> SeniorOrderDetail:
    """Each step of the order; reasons only where they are the senior's own (what caregivers
    and operators wrote stays with them)."""
    return await orders.senior_detail(session, principal, order_id)


@router.post("/orders/{order_id}/cancel", summary="Cancel my order")
async def cancel_order(
    order_id: uuid.UUID, data: ReasonIn, principal: SeniorDep, session: SessionDep, now: NowDep
) -> SeniorOrderOut:
    order = await orders.cancel(session, principal, order_id, reason=data.reason, now=now)
    return await orders.senior_view(session, order)


@router.post("/orders/{order_id}/rating", summary="Rate a completed order")
async def rate_order(
    order_id: uuid.UUID, data: RatingIn, principal: SeniorDep, session: SessionDep, now: NowDep
) -> SeniorOrderOut:
    order = await orders.rate(
        session, principal, order_id, score=data.score, comment=data.comment, now=now
    )
    return await orders.senior_view(session, order)
