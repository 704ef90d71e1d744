"""Rotating refresh tokens for bearer clients (SHA-256 stored, families revoked on reuse)."""

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Unauthorized
from app.models import Account, RefreshToken
from app.schemas.auth import Token
from app.security import create_access_token
from app.services.sessions import hash_token


def _bad() -> Unauthorized:
    return Unauthorized(
        "The refresh token is invalid, used or expired; please log in again.",
        code="invalid_refresh_token",
    )


async def issue(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    *,
    now: datetime,
    family: uuid.UUID | None = None,
) -> Token:
    """A new access token and refresh token for ``account``, in ``family`` (None: a new log-in,
    a new family). The refresh token is 256 random bits; only its SHA-256 is stored."""
    family = family or uuid.uuid4()
    ttl = timedelta(days=settings.refresh_token_ttl_days)
    raw = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            account_id=account.id,
            family_id=family,
            token_hash=hash_token(raw),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    access, access_ttl = create_access_token(
        settings,
        account_id=account.id,
        role=account.role,
        version=account.token_version,
        family=family,
    )
    return Token(
        access_token=access,
        expires_in=access_ttl,
        role=account.role,
        account_id=account.id,
        refresh_token=raw,
        refresh_expires_in=int(ttl.total_seconds()),
    )


async def end_family(session: AsyncSession, family: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def end_account(session: AsyncSession, account_id: uuid.UUID, *, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def rotate(
    session: AsyncSession, settings: Settings, raw: str, *, now: datetime
) -> Token | uuid.UUID:
    """Trade a live refresh token for a new pair (the old one is retired at once). A retired
    one presented again returns its family's id, which the caller revokes (and commits) before
    answering 401: the token was copied. Raises 401 ``invalid_refresh_token`` for an unknown,
    revoked or expired token and a disabled account."""
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(raw))
    )
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise _bad()
    retired = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if retired.rowcount != 1:  # type: ignore[attr-defined]
        return row.family_id
    account = await session.get_one(Account, row.account_id)
    if not account.is_active:
        raise _bad()
    return await issue(session, settings, account, now=now, family=row.family_id)


async def family_of(session: AsyncSession, raw: str) -> uuid.UUID | None:
    return await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == hash_token(raw))
    )
