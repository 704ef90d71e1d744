"""What an operator of the district's care platform does."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.deps import NowDep, OperatorDep, PageDep, SessionDep, SettingsDep
from app.models import OrderStatus, Priority
from app.schemas.common import PROBLEM_RESPONSES, Page, ReasonIn
from app.schemas.console import CandidatesOut, KpisOut, MapOut, OrderView, QueueRow
from app.schemas.offers import DecisionOut
from app.schemas.orders import AssignIn, OrderOut
from app.schemas.people import (
    CaregiverIn,
    CaregiverOut,
    ProviderCreated,
    ProviderIn,
    ProviderOut,
    SeniorIn,
    SeniorProfile,
    SeniorSummary,
    ShiftIn,
)
from app.schemas.visits import OperatorCheckInIn, VisitOut
from app.services import accounts, dispatch, kpis, ops, orders, seniors, visits

router = APIRouter(prefix="/ops", tags=["operators"], responses=PROBLEM_RESPONSES)


@router.get("/queue", summary="The live dispatch queue of my district")
async def queue(
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    page: PageDep,
    now: NowDep,
    status: Annotated[OrderStatus | None, Query()] = None,
    priority: Annotated[Priority | None, Query()] = None,
    service_code: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z_]+$")] = None,
) -> Page[QueueRow]:
    """Every open order: open emergencies first, then escalations and no-shows, then urgent
    and normal; oldest first. Each row has its timers (``response_due_at``, UTC), the offer
    currently out, and the senior, the caregiver and those offered by name."""
    items, next_cursor = await orders.queue(
        session,
        principal,
        status=status,
        priority=priority,
        service_code=service_code,
        page=page,
    )
    return Page(
        items=await ops.queue_items(session, items, settings=settings, now=now),
        limit=page.limit,
        next_cursor=next_cursor,
    )


@router.get("/orders/{order_id}", summary="Order detail with history and the senior's contact")
async def order_detail(
    order_id: uuid.UUID,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> OrderView:
    return await ops.order_detail(session, principal, order_id, settings=settings, now=now)


@router.get("/map", summary="My district now, for a map drawn from coordinates (audited)")
async def district_map(principal: OperatorDep, session: SessionDep, now: NowDep) -> MapOut:
    """Open orders at the seniors' homes, caregivers on duty (last position, state) and lines
    for offers and visits between them. Each senior shown is an audited read of personal data."""
    return await ops.district_map(session, principal, now=now)


@router.get("/kpis", summary="Today's figures for my district, in its time zone")
async def today_kpis(principal: OperatorDep, session: SessionDep, now: NowDep) -> KpisOut:
    return await kpis.today(session, principal, now=now)


@router.get(
    "/orders/{order_id}/candidates",
    summary="Caregivers ranked by the engine for a manual assignment, with the rules they break",
)
async def candidates(
    order_id: uuid.UUID,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> CandidatesOut:
    """Every active caregiver of the district for an open (pending, offered or escalated)
    order: the feasible ones ranked by the engine's cost, then those only soft rules stop
    (assign with ``override`` and a reason), then those a hard rule excludes. 409
    ``not_assignable`` for an order in any other status."""
    return await ops.candidates(
        session, principal, order_id, config=dispatch.engine_config(settings), now=now
    )


@router.get("/orders/{order_id}/decisions", summary="Why dispatch did what it did")
async def decisions(
    order_id: uuid.UUID, principal: OperatorDep, session: SessionDep
) -> list[DecisionOut]:
    """Each decision (offer, emergency broadcast, batch, auto-assignment, escalation, an
    operator's manual assignment) with the engine's candidates, their cost broken into parts,
    the exclusions per hard rule and what they count, and any rule an operator overrode."""
    return await ops.decisions(session, principal, order_id)


@router.post(
    "/orders/{order_id}/assign",
    summary="Assign a caregiver by hand, under the engine's rules",
    description=AssignIn.__doc__,
)
async def assign(
    order_id: uuid.UUID,
    data: AssignIn,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> OrderOut:
    return OrderOut.model_validate(
        await visits.assign(
            session,
            principal,
            order_id,
            caregiver_id=data.caregiver_id,
            reason=data.reason,
            override=data.override,
            config=dispatch.engine_config(settings),
            now=now,
        )
    )


@router.post(
    "/orders/{order_id}/reassign",
    summary="Move an assigned order to another caregiver, under the engine's rules",
    description=AssignIn.__doc__,
)
async def reassign(
    order_id: uuid.UUID,
    data: AssignIn,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> OrderOut:
    return OrderOut.model_validate(
        await visits.reassign(
            session,
            principal,
            order_id,
            caregiver_id=data.caregiver_id,
            reason=data.reason,
            override=data.override,
            config=dispatch.engine_config(settings),
            now=now,
        )
    )


@router.post("/orders/{order_id}/cancel", summary="Cancel an order, with a reason")
async def cancel(
    order_id: uuid.UUID, data: ReasonIn, principal: OperatorDep, session: SessionDep, now: NowDep
) -> OrderOut:
    return OrderOut.model_validate(
        await orders.cancel(session, principal, order_id, reason=data.reason, now=now)
    )


@router.post(
    "/visits/{visit_id}/check-in", summary="Record a check-in for a caregiver, with a reason"
)
async def check_in(
    visit_id: uuid.UUID,
    data: OperatorCheckInIn,
    principal: OperatorDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> VisitOut:
    return await visits.operator_check_in(
        session, principal, visit_id, reason=data.reason, settings=settings, now=now
    )


@router.post("/visits/{visit_id}/check-out", summary="Close a visit for a caregiver, with a reason")
async def check_out(
    visit_id: uuid.UUID, data: ReasonIn, principal: OperatorDep, session: SessionDep, now: NowDep
) -> VisitOut:
    """For when the caregiver cannot (a dead phone): the visit must not stay open for ever."""
    return await visits.check_out(session, principal, visit_id, notes=data.reason, now=now)


@router.post("/seniors", status_code=status.HTTP_201_CREATED, summary="Register a senior")
async def create_senior(
    data: SeniorIn, principal: OperatorDep, session: SessionDep, now: NowDep
) -> SeniorProfile:
    senior = await accounts.create_senior(session, principal, data, now=now)
    return await seniors.profile(session, principal, senior.id, action="senior.register", now=now)


@router.get("/seniors", summary="Seniors of my district (no personal data)")
async def list_seniors(
    principal: OperatorDep,
    session: SessionDep,
    page: PageDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=60,
            pattern=r"^[^\x00]+$",
            description="Name or neighbourhood contains (any case)",
        ),
    ] = None,
) -> Page[SeniorSummary]:
    items, next_cursor = await seniors.list_for_operator(
        session,
        principal,
        q=q,
        page=page,
    )
    return Page(
        items=[SeniorSummary.model_validate(s) for s in items],
        limit=page.limit,
        next_cursor=next_cursor,
    )


@router.get("/seniors/{senior_id}", summary="A senior's full profile (audited)")
async def get_senior(
    senior_id: uuid.UUID, principal: OperatorDep, session: SessionDep, now: NowDep
) -> SeniorProfile:
    return await seniors.profile(session, principal, senior_id, action="senior.profile", now=now)


@router.post(
    "/providers", status_code=status.HTTP_201_CREATED, summary="Register a provider organisation"
)
async def create_provider(
    data: ProviderIn, principal: OperatorDep, session: SessionDep
) -> ProviderCreated:
    """The API key is in this response only; store it in the provider's system."""
    provider, key = await accounts.create_provider(session, principal, data)
    return ProviderCreated(**ProviderOut.model_validate(provider).model_dump(), api_key=key)


@router.post("/caregivers", status_code=status.HTTP_201_CREATED, summary="Register a caregiver")
async def create_caregiver(
    data: CaregiverIn, principal: OperatorDep, session: SessionDep
) -> CaregiverOut:
    return CaregiverOut.model_validate(await accounts.create_caregiver(session, principal, data))


@router.get("/caregivers", summary="Caregivers of my district")
async def list_caregivers(
    principal: OperatorDep, session: SessionDep, page: PageDep
) -> Page[CaregiverOut]:
    assert principal.district_id is not None
    items, next_cursor = await accounts.list_district_caregivers(
        session,
        principal,
        page=page,
    )
    return Page(
        items=[CaregiverOut.model_validate(c) for c in items],
        limit=page.limit,
        next_cursor=next_cursor,
    )


@router.post(
    "/caregivers/{caregiver_id}/shifts", status_code=status.HTTP_201_CREATED, summary="Add a shift"
)
async def add_shift(
    caregiver_id: uuid.UUID, data: ShiftIn, principal: OperatorDep, session: SessionDep
) -> CaregiverOut:
    return CaregiverOut.model_validate(
        await accounts.add_shift(
            session, principal, caregiver_id, starts_at=data.starts_at, ends_at=data.ends_at
        )
    )
