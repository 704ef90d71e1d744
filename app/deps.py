"""Request dependencies: the database session and who is calling.

``SessionDep`` commits after the handler returns and *before* the response is sent
(``scope="function"``), so a client never sees success for a transaction that failed to commit.
"""

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import logs
from app.config import Settings
from app.db import session_scope
from app.errors import Forbidden, Unauthorized, Unprocessable
from app.models import Account, Caregiver, Provider, RefreshToken, Role
from app.security import decode_access_token, hash_api_key
from app.services import sessions
from app.services.paging import PageParams, decode_cursor


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessionmaker):
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.read_sessionmaker):
        yield session


# For requests that only read and never authenticate through SessionDep (log-in).
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="A provider's API key."
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, with what scopes its queries."""

    id: uuid.UUID
    role: Role
    district_id: uuid.UUID | None
    # A caregiver's employer, or the provider itself.
    provider_id: uuid.UUID | None = None


def get_now() -> datetime:
    """The request's clock (a dependency so tests can move time)."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _principal(
    session: AsyncSession,
    account_id: uuid.UUID,
    role: Role | None = None,
    version: int | None = None,
    family: uuid.UUID | None = None,
) -> Principal:
    """The caller behind an account id (one query), if the account is active and (for a token)
    still has the role and the ``token_version`` the token names. Else 401: ``invalid_token``
    (no such account, another role), ``token_revoked`` (a token of a disabled account, or one
    issued before a password change or log-out everywhere)."""
    found = (
        await session.execute(
            select(
                Account.role,
                Account.district_id,
                Account.is_active,
                Account.token_version,
                Caregiver.provider_id,
            )
            .outerjoin(Caregiver, Caregiver.id == Account.id)
            .where(Account.id == account_id)
        )
    ).one_or_none()
    if found is None or (role is not None and found.role != role):
        raise Unauthorized("The account is not active.", code="invalid_token")
    if version is not None and (not found.is_active or found.token_version != version):
        raise Unauthorized(
            "This token was revoked (password changed, logged out or account disabled); "
            "please log in again.",
            code="token_revoked",
        )
    if not found.is_active:
        raise Unauthorized("The account is not active.", code="invalid_token")
    if family is not None and not await session.scalar(
        select(exists().where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None)))
    ):
        raise Unauthorized("This log-in has ended; please log in again.", code="token_revoked")
    logs.set_principal(found.role.value, str(account_id))
    return Principal(
        id=account_id,
        role=found.role,
        district_id=found.district_id,
        provider_id=account_id if found.role is Role.provider else found.provider_id,
    )


async def _from_cookie(
    request: Request, session: AsyncSession, settings: Settings, cookie: str, now: datetime
) -> Principal:
    found = await sessions.resolve(session, settings, cookie, now=now)
    # Cookies ride along on any request a browser makes, so a state change must prove it comes
    # from our own page: the browser says it is same-origin, and it carries the page's token.
    if request.method not in _SAFE_METHODS and (
        not sessions.same_origin(request.headers)
        or not sessions.csrf_ok(
            settings, found.session_id, request.headers.get(sessions.CSRF_HEADER)
        )
    ):
        raise Forbidden(
            "This request lacks the page's CSRF token; reload the page.", code="csrf_failed"
        )
    return await _principal(session, found.account_id)


async def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """API key, then bearer token, then the pages' session cookie."""
    if api_key:
        return await _from_api_key(session, api_key)
    if not token:
        cookie = request.cookies.get(sessions.COOKIE_NAME)
        if cookie:
            return await _from_cookie(request, session, settings, cookie, now)
        raise Unauthorized("Authentication required.", code="not_authenticated")
    claims = decode_access_token(settings, token)
    return await _principal(session, claims.account_id, claims.role, claims.version, claims.family)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def _from_api_key(session: AsyncSession, api_key: str) -> Principal:
    row = (
        await session.execute(
            select(Account.id, Account.district_id)
            .join(Provider, Provider.id == Account.id)
            .where(Provider.api_key_hash == hash_api_key(api_key), Account.is_active)
        )
    ).one_or_none()
    if row is None:
        raise Unauthorized("The API key is invalid.", code="invalid_api_key")
    logs.set_principal(Role.provider.value, str(row.id))
    return Principal(id=row.id, role=Role.provider, district_id=row.district_id, provider_id=row.id)


@dataclass(frozen=True)
class Credential:
    """What a request authenticated with (the same precedence as ``get_principal``)."""

    kind: Literal["api_key", "token", "cookie"]
    value: str


def get_credential(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Credential | None:
    if api_key:
        return Credential("api_key", api_key)
    if token:
        return Credential("token", token)
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    return Credential("cookie", cookie) if cookie else None


CredentialDep = Annotated[Credential | None, Depends(get_credential)]


async def recheck(
    read: AsyncSession, settings: Settings, credential: Credential, *, now: datetime
) -> str | None:
    """Whether a credential that authenticated a long-lived request (an event stream) still
    does, on a read-only session: None if so, else the error code a new request with it would
    get (``token_expired``, ``token_revoked``, ``invalid_token``, ``session_expired``,
    ``invalid_api_key``)."""
    try:
        if credential.kind == "token":
            claims = decode_access_token(settings, credential.value)
            await _principal(read, claims.account_id, claims.role, claims.version, claims.family)
        elif credential.kind == "api_key":
            await _from_api_key(read, credential.value)
        elif await sessions.account_of(read, credential.value, now=now) is None:
            return "session_expired"
    except Unauthorized as exc:
        return exc.code
    return None


def require(*roles: Role) -> object:
    """A dependency that admits only the given roles (403 for the others)."""

    async def dependency(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"This action is for: {allowed}.", code="wrong_role")
        return principal

    return Depends(dependency)


SeniorDep = Annotated[Principal, require(Role.senior)]
CaregiverDep = Annotated[Principal, require(Role.caregiver)]
ProviderDep = Annotated[Principal, require(Role.provider)]
OperatorDep = Annotated[Principal, require(Role.operator)]
AdminDep = Annotated[Principal, require(Role.admin)]


def cursor_secret(settings: Settings) -> bytes:
    """The key that signs list cursors (derived from the token key: one secret to rotate)."""
    return hashlib.sha256(b"doorstep-page-cursor\0" + settings.jwt_signing_key.encode()).digest()


def get_page(
    request: Request,
    settings: SettingsDep,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size (at most 100 by default).")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1000,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="`next_cursor` of the previous page, unchanged; omit for the first page.",
        ),
    ] = None,
    offset: Annotated[
        str | None,
        Query(
            deprecated=True,
            description="Not supported: lists page by `cursor` (an offset repeats or skips "
            "items when orders are placed between pages).",
        ),
    ] = None,
) -> PageParams:
    if offset is not None:
        raise Unprocessable(
            "offset is not supported: follow next_cursor from the previous page as `cursor` "
            "(offsets repeat or skip items while the list changes).",
            code="offset_not_supported",
        )
    size = settings.page_size_default if limit is None else limit
    if size > settings.page_size_max:
        raise Unprocessable(
            f"limit must be at most {settings.page_size_max}.", code="page_too_large"
        )
    secret = cursor_secret(settings)
    scope = request.url.path
    after = None if cursor is None else decode_cursor(cursor, scope=scope, secret=secret)
    return PageParams(limit=size, after=after, scope=scope, secret=secret)


PageDep = Annotated[PageParams, Depends(get_page)]
