"""A provider's view of its own caregivers."""

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.deps import Principal
from app.models import Caregiver
from app.services.paging import fetch_page


async def list_caregivers(
    session: AsyncSession, principal: Principal, *, limit: int, offset: int
) -> tuple[Sequence[Caregiver], int | None]:
    stmt = (
        select(Caregiver)
        .where(Caregiver.provider_id == principal.provider_id)
        .options(selectinload(Caregiver.skills), selectinload(Caregiver.shifts))
        .order_by(Caregiver.name, Caregiver.id)
    )
    return await fetch_page(session, stmt, limit=limit, offset=offset)
