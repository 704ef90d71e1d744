from fastapi import APIRouter

from app.deps import PrincipalDep, SessionDep
from app.schemas.catalogue import ServiceOut
from app.services import orders

router = APIRouter(prefix="/services", tags=["catalogue"])


@router.get("", summary="The service catalogue")
async def list_services(_: PrincipalDep, session: SessionDep) -> list[ServiceOut]:
    return [ServiceOut.model_validate(s) for s in await orders.list_services(session)]
