"""Request dependencies: the database session and who is calling.

``SessionDep`` commits after the handler returns and *before* the response is sent
(``scope="function"``), so a client never sees success for a transaction that failed to commit.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import logs
from app.config import Settings
from app.db import session_scope
from app.errors import Forbidden, Unauthorized, Unprocessable
from app.models import Account, Caregiver, Provider, Role
from app.security import decode_access_token, hash_api_key


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


async def get_principal(
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    if api_key:
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
        return Principal(
            id=row.id, role=Role.provider, district_id=row.district_id, provider_id=row.id
        )
    if not token:
        raise Unauthorized("Authentication required.", code="not_authenticated")
    claims = decode_access_token(settings, token)
    found = (
        await session.execute(
            select(Account.role, Account.district_id, Account.is_active, Caregiver.provider_id)
            .outerjoin(Caregiver, Caregiver.id == Account.id)
            .where(Account.id == claims.account_id)
        )
    ).one_or_none()
    if found is None or not found.is_active or found.role != claims.role:
        raise Unauthorized("The account is not active.", code="invalid_token")
    provider_id = claims.account_id if found.role is Role.provider else found.provider_id
    logs.set_principal(found.role.value, str(claims.account_id))
    return Principal(
        id=claims.account_id,
        role=found.role,
        district_id=found.district_id,
        provider_id=provider_id,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


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


def get_now() -> datetime:
    """The request's clock (a dependency so tests can move time)."""
    return datetime.now(UTC)


NowDep = Annotated[datetime, Depends(get_now)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


def get_page(
    settings: SettingsDep,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size (at most 100 by default).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PageParams:
    size = settings.page_size_default if limit is None else limit
    if size > settings.page_size_max:
        raise Unprocessable(
            f"limit must be at most {settings.page_size_max}.", code="page_too_large"
        )
    return PageParams(limit=size, offset=offset)


PageDep = Annotated[PageParams, Depends(get_page)]
