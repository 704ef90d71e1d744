"""What a caregiver does: duty, position, visits, check-in and check-out."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.deps import CaregiverDep, NowDep, PageDep, SessionDep, SettingsDep
from app.models import VisitStatus
from app.schemas.common import PROBLEM_RESPONSES, Page, ReasonIn
from app.schemas.people import CaregiverOut, DutyIn, PositionIn
from app.schemas.visits import CheckInIn, CheckOutIn, VisitOut
from app.services import accounts, caregivers, limits, visits

router = APIRouter(tags=["caregivers"], responses=PROBLEM_RESPONSES)

POSITION_HEADER = "Doorstep-Position"


@router.get("/caregivers/me", summary="My profile, skills and shifts")
async def me(principal: CaregiverDep, session: SessionDep) -> CaregiverOut:
    return CaregiverOut.model_validate(await accounts.load_caregiver(session, principal.id))


@router.put("/caregivers/me/duty", summary="Go on or off duty")
async def set_duty(data: DutyIn, principal: CaregiverDep, session: SessionDep) -> CaregiverOut:
    return CaregiverOut.model_validate(
        await caregivers.set_duty(session, principal, on_duty=data.on_duty)
    )


@router.put("/caregivers/me/position", summary="Report my position")
async def report_position(
    data: PositionIn,
    principal: CaregiverDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    response: Response,
) -> CaregiverOut:
    """At most ``position_rate_count`` fixes per ``position_rate_period_s`` are kept; a fix
    beyond is dropped and answered as usual (200, the position on record) with
    ``Doorstep-Position: dropped``, so a phone that reports too often keeps working."""
    if not await limits.count_position(session, settings, principal.id, now=now):
        response.headers[POSITION_HEADER] = "dropped"
        return CaregiverOut.model_validate(await accounts.load_caregiver(session, principal.id))
    return CaregiverOut.model_validate(
        await caregivers.report_position(
            session,
            principal,
            lat=data.lat,
            lon=data.lon,
            recorded_at=data.recorded_at,
            settings=settings,
            now=now,
        )
    )


@router.get("/visits", summary="My visits (no contact details in lists)")
async def list_visits(
    principal: CaregiverDep,
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


@router.get("/visits/{visit_id}", summary="One visit; the senior's contact while it is mine")
async def get_visit(
    visit_id: uuid.UUID, principal: CaregiverDep, session: SessionDep, now: NowDep
) -> VisitOut:
    return await visits.get_view(session, principal, visit_id, now=now)


@router.post("/visits/{visit_id}/check-in", summary="Check in at the senior's door")
async def check_in(
    visit_id: uuid.UUID,
    data: CheckInIn,
    principal: CaregiverDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> VisitOut:
    return await visits.check_in(
        session, principal, visit_id, lat=data.lat, lon=data.lon, settings=settings, now=now
    )


@router.post("/visits/{visit_id}/check-out", summary="Check out when done")
async def check_out(
    visit_id: uuid.UUID, data: CheckOutIn, principal: CaregiverDep, session: SessionDep, now: NowDep
) -> VisitOut:
    return await visits.check_out(session, principal, visit_id, notes=data.notes, now=now)


@router.post("/visits/{visit_id}/withdraw", summary="Withdraw: the order goes back to dispatch")
async def withdraw(
    visit_id: uuid.UUID, data: ReasonIn, principal: CaregiverDep, session: SessionDep, now: NowDep
) -> VisitOut:
    return await visits.withdraw(session, principal, visit_id, reason=data.reason, now=now)
