"""Seniors' profiles: personal data, read only within scope and always audit-logged."""

import uuid
from datetime import datetime

from sqlalchemy import Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Principal
from app.errors import NotFound
from app.models import CaregiverPreference, PreferenceKind, Role, Senior
from app.schemas.people import SeniorProfile
from app.services import audit
from app.services.paging import Key, PageParams, fetch_page

PROFILE_FIELDS = "phone,address,lat,lon,care_notes,emergency_contacts"


def _scoped(principal: Principal) -> Select[Senior]:
    stmt = select(Senior)
    if principal.role is Role.senior:
        return stmt.where(Senior.id == principal.id)
    if principal.role is Role.operator:
        return stmt.where(Senior.district_id == principal.district_id)
    return stmt.where(false())


async def profile(
    session: AsyncSession, principal: Principal, senior_id: uuid.UUID, *, action: str, now: datetime
) -> SeniorProfile:
    """The full profile, with one audit row for the read."""
    senior = await session.scalar(_scoped(principal).where(Senior.id == senior_id))
    if senior is None:
        raise NotFound("No such senior.")
    prefs = (
        await session.execute(
            select(CaregiverPreference.caregiver_id, CaregiverPreference.kind).where(
                CaregiverPreference.senior_id == senior.id
            )
        )
    ).all()
    audit.record_read(
        session,
        principal,
        senior_id=senior.id,
        action=action,
        fields=PROFILE_FIELDS,
        object_id=senior.id,
        at=now,
    )
    out = SeniorProfile.model_validate(senior)
    out.preferred_caregivers = [c for c, k in prefs if k is PreferenceKind.preferred]
    out.blocked_caregivers = [c for c, k in prefs if k is PreferenceKind.blocked]
    return out


async def list_for_operator(
    session: AsyncSession, principal: Principal, *, q: str | None, page: PageParams
) -> tuple[list[Senior], str | None]:
    stmt = _scoped(principal)
    if q:
        stmt = stmt.where(
            Senior.name.icontains(q, autoescape=True)
            | Senior.neighbourhood.icontains(q, autoescape=True)
        )
    return await fetch_page(session, stmt, [Key(Senior.name), Key(Senior.id)], page)
