"""A provider's view of its own caregivers."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.deps import Principal
from app.models import Caregiver
from app.services.paging import Key, PageParams, fetch_page


async def list_caregivers(
    session: AsyncSession, principal: Principal, *, page: PageParams
) -> tuple[list[Caregiver], str | None]:
    stmt = (
        select(Caregiver)
        .where(Caregiver.provider_id == principal.provider_id)
        .options(selectinload(Caregiver.skills), selectinload(Caregiver.shifts))
    )
    return await fetch_page(session, stmt, [Key(Caregiver.name), Key(Caregiver.id)], page)
