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
    """Keep the newest fix only: a late-arriving older fix never moves the caregiver back.

    ``recorded_at`` (UTC) more than ``position_max_future_skew_s`` seconds ahead of the server's
    clock is refused (422 ``position_in_future``): the fix's time is wrong, so its place is
    suspect too. Within the skew it is clamped to ``now``, so a phone whose clock runs a little
    fast never stamps a fix that later, real fixes would lose to. A fix stored in the future
    before this rule (old data, or a server clock set back) blocks nothing: any fix replaces it.
    """
    at = recorded_at or now
    if at > now + timedelta(seconds=settings.position_max_future_skew_s):
        raise Unprocessable(
            "recorded_at is in the future: more than "
            f"{settings.position_max_future_skew_s} s ahead of the server's clock (UTC).",
            code="position_in_future",
        )
    at = min(at, now)
    caregiver = await load_caregiver(session, principal.id)
    stored = caregiver.position_at
    if stored is None or stored > now or at >= stored:
        caregiver.lat, caregiver.lon, caregiver.position_at = lat, lon, at
        await session.flush()
    return caregiver
