"""Browser sessions behind the pages' cookie: log-in, sliding renewal, refresh, log-out.

The cookie carries a random token (``secrets.token_urlsafe(32)``, 256 bits); the table keeps its
SHA-256. The CSRF token the pages send back in ``X-CSRF-Token`` is an HMAC of the session's id
under the signing secret: nothing to store, and it survives a refresh of the cookie token, so a
second tab of the same session keeps working.
"""

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import phones
from app.config import Settings
from app.errors import Unauthorized
from app.models import Account, Role, WebSession
from app.security import verify_password

COOKIE_NAME = "doorstep_session"
CSRF_HEADER = "X-CSRF-Token"
# A session in use is written back at most this often (not on every request).
_TOUCH_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Opened:
    """A session just opened or rotated: the cookie's token and what the page needs."""

    token: str
    csrf_token: str
    expires_at: datetime
    account: Account


def cookie_options(settings: Settings, *, clearing: bool = False) -> dict[str, Any]:
    """How the session cookie is set (or cleared): HttpOnly, SameSite=Lax, Secure outside local
    development, kept by the browser for ``web_session_max_days`` (the server decides when it
    is idle)."""
    return {
        **({} if clearing else {"max_age": settings.web_session_max_days * 86_400}),
        "path": "/",
        "secure": settings.secure_cookies,
        "httponly": True,
        "samesite": "lax",
    }


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(settings: Settings, session_id: uuid.UUID, key: str | None = None) -> str:
    """The CSRF token of a session (hex HMAC-SHA256 of its id, under the signing key unless
    ``key`` names another)."""
    secret = (settings.jwt_signing_key if key is None else key).encode()
    return hmac.new(secret, b"csrf\x00" + session_id.bytes, hashlib.sha256).hexdigest()


def csrf_ok(settings: Settings, session_id: uuid.UUID, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token under the current key or a previous one (a
    page rendered before a key rotation still submits)."""
    return sent is not None and any(
        hmac.compare_digest(csrf_for(settings, session_id, key), sent)
        for key in settings.jwt_verification_keys
    )


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a state-changing browser request comes from our own pages: the browser's
    ``Sec-Fetch-Site`` says so (every current browser sends it); without it, an ``Origin``, if
    any, must name this host. A request with neither is not a browser's cross-site one."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and origin.split("://", 1)[-1] == headers.get("host", "")


BAD_CREDENTIALS = "Wrong login or password, or the account cannot log in."


async def check_password(read: AsyncSession, *, login: str, password: str) -> Account:
    """The active account for this login and password (on a read-only session: Argon2 runs
    outside any write lock). A phone number may be written in any form (it is looked up in
    E.164). Raises ``Unauthorized`` (``bad_credentials``) for an unknown login, a wrong
    password and a disabled account alike: the same one query, one Argon2 verification and
    answer, so neither the answer nor its time tells a stranger who is registered or whether
    a disabled account's password was right."""
    # A NUL cannot be in any login (PostgreSQL refuses it in a query): look up one that
    # matches nothing, so this answer too costs the query and the hash.
    key = "" if "\x00" in login else phones.login_key(login)
    account = await read.scalar(select(Account).where(Account.login == key))
    stored = None if account is None else account.password_hash
    verified = await verify_password(password, stored)
    if account is None or not verified or not account.is_active:
        raise Unauthorized(BAD_CREDENTIALS, code="bad_credentials")
    return account


def _expiry(settings: Settings, now: datetime, absolute: datetime) -> datetime:
    return min(now + timedelta(days=settings.web_session_idle_days), absolute)


async def open_session(
    session: AsyncSession, settings: Settings, account: Account, *, now: datetime
) -> Opened:
    """Start a session for ``account``; the caller sets the cookie."""
    token = secrets.token_urlsafe(32)
    absolute = now + timedelta(days=settings.web_session_max_days)
    row = WebSession(
        account_id=account.id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=_expiry(settings, now, absolute),
        absolute_expires_at=absolute,
    )
    session.add(row)
    await session.flush()
    return Opened(token, csrf_for(settings, row.id), row.expires_at, account)


@dataclass(frozen=True)
class Resolved:
    """Who a live session cookie belongs to."""

    session_id: uuid.UUID
    account_id: uuid.UUID
    role: Role


async def resolve(
    session: AsyncSession, settings: Settings, token: str, *, now: datetime
) -> Resolved:
    """The live session behind a cookie token, renewed if it was last seen a while ago.
    Raises ``Unauthorized`` (``session_expired``) for an unknown, revoked or expired one and
    for a disabled account."""
    found = (
        await session.execute(
            select(WebSession, Account.role, Account.is_active)
            .join(Account, Account.id == WebSession.account_id)
            .where(WebSession.token_hash == hash_token(token))
        )
    ).one_or_none()
    if found is None:
        raise Unauthorized("Please log in again.", code="session_expired")
    row, role, active = found
    if row.revoked_at is not None or row.expires_at <= now or not active:
        raise Unauthorized("Please log in again.", code="session_expired")
    if now - row.last_seen_at >= _TOUCH_EVERY:
        await session.execute(
            update(WebSession)
            .where(WebSession.id == row.id)
            .values(last_seen_at=now, expires_at=_expiry(settings, now, row.absolute_expires_at))
        )
    return Resolved(row.id, row.account_id, role)


async def rotate(session: AsyncSession, settings: Settings, token: str, *, now: datetime) -> Opened:
    """Replace a live session's cookie token and slide its expiry. The old token stops working
    at once; of two refreshes racing with one token, the second is refused (401
    ``session_expired``) rather than leaving the browser with a dead cookie."""
    resolved = await resolve(session, settings, token, now=now)
    row = await session.get_one(WebSession, resolved.session_id)
    account = await session.get_one(Account, resolved.account_id)
    new = secrets.token_urlsafe(32)
    expires = _expiry(settings, now, row.absolute_expires_at)
    swapped = await session.execute(
        update(WebSession)
        .where(WebSession.id == row.id, WebSession.token_hash == hash_token(token))
        .values(token_hash=hash_token(new), last_seen_at=now, expires_at=expires)
    )
    if swapped.rowcount != 1:  # type: ignore[attr-defined]
        raise Unauthorized("Please log in again.", code="session_expired")
    return Opened(new, csrf_for(settings, row.id), expires, account)


async def close(session: AsyncSession, token: str, *, now: datetime) -> None:
    """Log out: the session's cookie stops working at once (an unknown token is a no-op)."""
    await session.execute(
        update(WebSession)
        .where(WebSession.token_hash == hash_token(token), WebSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def account_of(
    read: AsyncSession, token: str | None, *, now: datetime
) -> tuple[Account, uuid.UUID] | None:
    """The active account and session id behind a live session cookie, or None (pages: show
    the log-in form). Read-only: the renewal happens on the page's first API call."""
    if not token:
        return None
    found = (
        await read.execute(
            select(Account, WebSession.id)
            .join(WebSession, WebSession.account_id == Account.id)
            .where(
                WebSession.token_hash == hash_token(token),
                WebSession.revoked_at.is_(None),
                WebSession.expires_at > now,
                Account.is_active,
            )
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1])
