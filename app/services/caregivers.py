"""A caregiver's own state: duty and live position."""

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.deps import Principal
from app.errors import Unprocessable
from app.models import Caregiver
from app.services.accounts import load_caregiver


async def set_duty(session: AsyncSession, principal: Principal, *, on_duty: bool) -> Caregiver:
    caregiver = await load_caregiver(session, principal.id)
    caregiver.on_duty = on_duty
    await session.flush()
    return caregiver


async def report_position(
    session: AsyncSession,
    principal: Principal,
    *,
    lat: float,
    lon: float,
    recorded_at: datetime | None,
    settings: Settings,
    now: datetime,
) -> Caregiver:
    """Keep the newest fix only: a late-arriving older fix never moves the caregiver back."""
    at = recorded_at or now
    if at > now + timedelta(seconds=settings.position_max_future_skew_s):
        raise Unprocessable("recorded_at is in the future.", code="position_in_future")
    caregiver = await load_caregiver(session, principal.id)
    if caregiver.position_at is None or at >= caregiver.position_at:
        caregiver.lat, caregiver.lon, caregiver.position_at = lat, lon, at
        await session.flush()
    return caregiver
