"""A provider organisation's system (API key): its caregivers and their work."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.deps import NowDep, PageDep, ProviderDep, SessionDep, SettingsDep
from app.models import VisitStatus
from app.schemas.common import PROBLEM_RESPONSES, RATE_LIMITED, Page
from app.schemas.people import CaregiverOut
from app.schemas.visits import VisitOut
from app.services import limits, providers, visits


async def _rate(
    principal: ProviderDep, session: SessionDep, settings: SettingsDep, now: NowDep
) -> None:
    """Every provider request counts against ``provider_rate_*`` (429 beyond)."""
    await limits.count_provider_request(session, settings, principal.id, now=now)


router = APIRouter(
    prefix="/provider",
    tags=["providers"],
    responses={**PROBLEM_RESPONSES, **RATE_LIMITED},
    dependencies=[Depends(_rate)],
)


@router.get("/caregivers", summary="Our caregivers")
async def list_caregivers(
    principal: ProviderDep, session: SessionDep, page: PageDep
) -> Page[CaregiverOut]:
    items, next_cursor = await providers.list_caregivers(
        session,
        principal,
        page=page,
    )
    return Page(
        items=[CaregiverOut.model_validate(c) for c in items],
        limit=page.limit,
        next_cursor=next_cursor,
    )


@router.get("/visits", summary="Our caregivers' visits")
async def list_visits(
    principal: ProviderDep,
    session: SessionDep,
    page: PageDep,
    status: Annotated[VisitStatus | None, Query()] = None,
) -> Page[VisitOut]:
    items, next_cursor = await visits.list_views(
        session,
        principal,
        status=status,
        page=page,
    )
    return Page(items=items, limit=page.limit, next_cursor=next_cursor)


@router.get("/visits/{visit_id}", summary="One of our caregivers' visits (no senior contact)")
async def get_visit(
    visit_id: uuid.UUID, principal: ProviderDep, session: SessionDep, now: NowDep
) -> VisitOut:
    return await visits.get_view(session, principal, visit_id, now=now)
