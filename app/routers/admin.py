"""Platform administration: districts and their operators."""

import uuid

from fastapi import APIRouter, status

from app.deps import AdminDep, SessionDep
from app.schemas.common import PROBLEM_RESPONSES
from app.schemas.people import AccountOut, DistrictIn, DistrictOut, DistrictPatch, OperatorIn
from app.services import accounts

router = APIRouter(prefix="/admin", tags=["admin"], responses=PROBLEM_RESPONSES)


@router.post("/districts", status_code=status.HTTP_201_CREATED, summary="Create a district")
async def create_district(data: DistrictIn, _: AdminDep, session: SessionDep) -> DistrictOut:
    return DistrictOut.model_validate(await accounts.create_district(session, data))


@router.patch("/districts/{district_id}", summary="Change a district (name, city, time zone)")
async def update_district(
    district_id: uuid.UUID, data: DistrictPatch, _: AdminDep, session: SessionDep
) -> DistrictOut:
    return DistrictOut.model_validate(await accounts.update_district(session, district_id, data))


@router.get("/districts", summary="All districts")
async def list_districts(_: AdminDep, session: SessionDep) -> list[DistrictOut]:
    return [DistrictOut.model_validate(d) for d in await accounts.list_districts(session)]


@router.post(
    "/operators", status_code=status.HTTP_201_CREATED, summary="Create an operator account"
)
async def create_operator(data: OperatorIn, _: AdminDep, session: SessionDep) -> AccountOut:
    return AccountOut.model_validate(await accounts.create_operator(session, data))
