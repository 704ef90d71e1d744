"""Log-in and registration of every role.

The ``password_hash`` keyword lets a bulk loader (the demo seed) hash a shared password once
instead of paying Argon2's cost per account.
"""

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.deps import Principal
from app.errors import Conflict, NotFound, Unauthorized, Unprocessable
from app.models import (
    Account,
    Caregiver,
    CaregiverPreference,
    CaregiverSkill,
    District,
    PreferenceKind,
    Provider,
    Role,
    Senior,
    Shift,
    WebSession,
)
from app.phones import login_key
from app.schemas.auth import Token
from app.schemas.people import (
    CaregiverIn,
    DistrictIn,
    DistrictPatch,
    OperatorIn,
    ProviderIn,
    SeniorIn,
)
from app.security import (
    create_access_token,
    hash_api_key,
    hash_password,
    new_api_key,
    verify_password,
)
from app.services import refresh, sessions
from app.services.paging import Key, PageParams, fetch_page

log = logging.getLogger(__name__)


def issue_token(settings: Settings, account: Account, version: int | None = None) -> Token:
    """A new access token for ``account`` at its current ``token_version`` (or ``version``)."""
    token, ttl = create_access_token(
        settings,
        account_id=account.id,
        role=account.role,
        version=account.token_version if version is None else version,
    )
    return Token(access_token=token, expires_in=ttl, role=account.role, account_id=account.id)


async def revoke_tokens(
    session: AsyncSession, account_id: uuid.UUID, *, now: datetime, keep_cookie: str | None = None
) -> int:
    """End every access token and cookie session of an account (but the cookie session
    ``keep_cookie``, if given): raises its ``token_version`` in one statement (two racing
    revocations both count) and returns the new version."""
    version = await session.scalar(
        update(Account)
        .where(Account.id == account_id)
        .values(token_version=Account.token_version + 1)
        .returning(Account.token_version)
    )
    assert version is not None
    ended = update(WebSession).where(
        WebSession.account_id == account_id, WebSession.revoked_at.is_(None)
    )
    if keep_cookie is not None:
        ended = ended.where(WebSession.token_hash != sessions.hash_token(keep_cookie))
    await session.execute(ended.values(revoked_at=now))
    return int(version)


async def check_current_password(read: AsyncSession, account_id: uuid.UUID, password: str) -> None:
    """Raises 401 ``bad_credentials`` (the log-in's generic answer) unless ``password`` is the
    account's (one Argon2 verification, on a read-only session)."""
    stored = await read.scalar(select(Account.password_hash).where(Account.id == account_id))
    if not await verify_password(password, stored):
        raise Unauthorized(sessions.BAD_CREDENTIALS, code="bad_credentials")


async def set_password(
    session: AsyncSession,
    settings: Settings,
    account_id: uuid.UUID,
    password: str,
    *,
    now: datetime,
    keep_cookie: str | None = None,
) -> Token:
    """Set a new password (checked by the caller). Every access token and cookie session of
    the account ends at once (but ``keep_cookie``: the caller's own page session); returns a
    new token."""
    password_hash = await hash_password(password)  # before any write: no lock held meanwhile
    account = await session.get_one(Account, account_id)
    account.password_hash = password_hash
    await session.flush()
    version = await revoke_tokens(session, account.id, now=now, keep_cookie=keep_cookie)
    await refresh.end_account(session, account.id, now=now)
    return issue_token(settings, account, version)


async def get_account(session: AsyncSession, principal: Principal) -> Account:
    account = await session.get(Account, principal.id)
    if account is None:
        raise NotFound("No such account.")
    return account


async def _flush_unique(session: AsyncSession, what: str) -> None:
    """Flush new rows; a duplicate login or phone is the client's conflict, not a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{what} is already registered.", code="already_exists") from exc


LOGIN_TAKEN = (
    "This login or phone number already has an account, and one number is one account. "
    "If it is this person's, an administrator can move the account."
)


async def _new_login(session: AsyncSession, login: str, actor: Principal | None = None) -> None:
    """Refuse a login (an E.164 phone for seniors and caregivers) that any account holds.

    The answer is the same 409 ``login_taken`` whoever holds it (a senior of this district, a
    caregiver, someone of another district, an operator), with nothing of who or where: that
    is all one account per phone requires the registering operator to learn. Who was refused,
    and whose account it was, goes to the log (``registration_refused``: ids only, no phone)
    for an administrator."""
    holder = await session.execute(
        select(Account.id, Account.district_id).where(Account.login == login)
    )
    found = holder.one_or_none()
    if found is not None:
        raise _refused(actor, holder_id=found[0], holder_district_id=found[1])


def _refused(
    actor: Principal | None,
    *,
    holder_id: uuid.UUID | None = None,
    holder_district_id: uuid.UUID | None = None,
) -> Conflict:
    """Log the refusal for an administrator; the answer the operator gets."""
    log.warning(
        "registration refused: the login is taken",
        extra={
            "event": "registration_refused",
            "actor_id": str(actor.id) if actor else None,
            "actor_district_id": str(actor.district_id) if actor and actor.district_id else None,
            "holder_account_id": str(holder_id) if holder_id else None,
            "holder_district_id": str(holder_district_id) if holder_district_id else None,
        },
    )
    return Conflict(LOGIN_TAKEN, code="login_taken")


async def _flush_login(session: AsyncSession, actor: Principal | None) -> None:
    """Flush a new account; losing a race for its login is the same answer as finding it."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise _refused(actor) from exc


async def create_district(session: AsyncSession, data: DistrictIn) -> District:
    if await session.scalar(select(District.id).where(District.code == data.code)):
        raise Conflict(f"District {data.code!r} exists.", code="already_exists")
    district = District(code=data.code, name=data.name, city=data.city, time_zone=data.time_zone)
    session.add(district)
    await _flush_unique(session, "The district")
    return district


async def update_district(
    session: AsyncSession, district_id: uuid.UUID, data: DistrictPatch
) -> District:
    """Change a district's name, city or time zone (404 if there is no such district)."""
    district = await session.get(District, district_id)
    if district is None:
        raise NotFound("No such district.")
    for key in data.model_fields_set:
        setattr(district, key, getattr(data, key))
    await session.flush()
    return district


async def list_districts(session: AsyncSession) -> Sequence[District]:
    return (await session.execute(select(District).order_by(District.code))).scalars().all()


async def create_operator(
    session: AsyncSession, data: OperatorIn, *, password_hash: str | None = None
) -> Account:
    if await session.get(District, data.district_id) is None:
        raise Unprocessable("Unknown district.", code="unknown_district")
    login = login_key(data.login)
    await _new_login(session, login)
    account = Account(
        role=Role.operator,
        login=login,
        password_hash=password_hash or await hash_password(data.password),
        display_name=data.name,
        district_id=data.district_id,
    )
    session.add(account)
    await _flush_login(session, None)
    return account


async def _district_caregivers(
    session: AsyncSession, district_id: uuid.UUID, ids: set[uuid.UUID]
) -> None:
    if not ids:
        return
    found = set(
        (
            await session.execute(
                select(Caregiver.id).where(Caregiver.id.in_(ids), in_district(district_id))
            )
        ).scalars()
    )
    if missing := ids - found:
        raise Unprocessable(
            f"Unknown caregiver(s) in this district: {', '.join(sorted(map(str, missing)))}.",
            code="unknown_caregiver",
        )


async def create_senior(
    session: AsyncSession,
    operator: Principal,
    data: SeniorIn,
    *,
    now: datetime,
    password_hash: str | None = None,
) -> Senior:
    assert operator.district_id is not None
    await _new_login(session, data.phone, operator)
    await _district_caregivers(
        session, operator.district_id, set(data.preferred_caregivers) | set(data.blocked_caregivers)
    )
    account = Account(
        role=Role.senior,
        login=data.phone,
        password_hash=password_hash or await hash_password(data.password),
        display_name=data.name,
        district_id=operator.district_id,
        created_at=now,
    )
    session.add(account)
    await _flush_login(session, operator)
    senior = Senior(
        id=account.id,
        district_id=operator.district_id,
        name=data.name,
        phone=data.phone,
        gender=data.gender,
        address=data.address,
        neighbourhood=data.neighbourhood,
        lat=data.lat,
        lon=data.lon,
        languages=data.languages,
        preferred_gender=data.preferred_gender,
        gender_strict=data.gender_strict,
        care_notes=data.care_notes,
        emergency_contacts=[c.model_dump() for c in data.emergency_contacts],
        created_at=now,
    )
    session.add(senior)
    # The senior row must exist before the preference rows that point at it.
    await _flush_unique(session, "The phone number")
    for kind, ids in (
        (PreferenceKind.preferred, data.preferred_caregivers),
        (PreferenceKind.blocked, data.blocked_caregivers),
    ):
        session.add_all(
            CaregiverPreference(senior_id=account.id, caregiver_id=cid, kind=kind) for cid in ids
        )
    await session.flush()
    return senior


async def create_provider(
    session: AsyncSession, operator: Principal, data: ProviderIn
) -> tuple[Provider, str]:
    """Register a provider; returns it and its API key (shown once, stored as a hash)."""
    assert operator.district_id is not None
    login = login_key(data.login)
    await _new_login(session, login, operator)
    account = Account(
        role=Role.provider,
        login=login,
        password_hash=None,
        display_name=data.name,
        district_id=operator.district_id,
    )
    session.add(account)
    await _flush_login(session, operator)
    key = new_api_key()
    provider = Provider(
        id=account.id,
        district_id=operator.district_id,
        name=data.name,
        api_key_hash=hash_api_key(key),
        api_key_prefix=key[:12],
        auto_accept=data.auto_accept,
    )
    session.add(provider)
    await _flush_unique(session, "The provider")
    return provider, key


async def create_caregiver(
    session: AsyncSession,
    operator: Principal,
    data: CaregiverIn,
    *,
    password_hash: str | None = None,
) -> Caregiver:
    provider = await session.scalar(
        select(Provider).where(
            Provider.id == data.provider_id, Provider.district_id == operator.district_id
        )
    )
    if provider is None:
        raise Unprocessable("Unknown provider in this district.", code="unknown_provider")
    await _new_login(session, data.phone, operator)
    account = Account(
        role=Role.caregiver,
        login=data.phone,
        password_hash=password_hash or await hash_password(data.password),
        display_name=data.name,
        district_id=operator.district_id,
    )
    session.add(account)
    await _flush_login(session, operator)
    caregiver = Caregiver(
        id=account.id,
        provider_id=provider.id,
        name=data.name,
        phone=data.phone,
        gender=data.gender,
        languages=data.languages,
        service_radius_m=data.service_radius_m,
        daily_visit_cap=data.daily_visit_cap,
        skills=[
            CaregiverSkill(skill=s.skill, certificate_expires_on=s.certificate_expires_on)
            for s in {s.skill: s for s in data.skills}.values()
        ],
        shifts=[Shift(starts_at=s.starts_at, ends_at=s.ends_at) for s in data.shifts],
    )
    session.add(caregiver)
    await _flush_unique(session, "The caregiver")
    return await load_caregiver(session, caregiver.id)


async def load_caregiver(session: AsyncSession, caregiver_id: uuid.UUID) -> Caregiver:
    caregiver = await session.scalar(
        select(Caregiver)
        .where(Caregiver.id == caregiver_id)
        .options(selectinload(Caregiver.skills), selectinload(Caregiver.shifts))
        .execution_options(populate_existing=True)
    )
    if caregiver is None:
        raise NotFound("No such caregiver.")
    return caregiver


def in_district(district_id: uuid.UUID) -> ColumnElement[bool]:
    """The one test of "a caregiver of this district": employed by one of its providers."""
    return Caregiver.provider_id.in_(select(Provider.id).where(Provider.district_id == district_id))


def district_caregivers_query(district_id: uuid.UUID) -> Select[Caregiver]:
    return (
        select(Caregiver)
        .where(in_district(district_id))
        .options(selectinload(Caregiver.skills), selectinload(Caregiver.shifts))
        .order_by(Caregiver.name, Caregiver.id)
    )


async def count_accounts(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Account)) or 0


async def add_shift(
    session: AsyncSession,
    operator: Principal,
    caregiver_id: uuid.UUID,
    *,
    starts_at: datetime,
    ends_at: datetime,
) -> Caregiver:
    await get_district_caregiver(session, operator, caregiver_id)
    overlapping = await session.scalar(
        select(Shift.id).where(
            Shift.caregiver_id == caregiver_id, Shift.starts_at < ends_at, Shift.ends_at > starts_at
        )
    )
    if overlapping is not None:
        raise Conflict("The caregiver already has a shift at that time.", code="shift_overlap")
    session.add(Shift(caregiver_id=caregiver_id, starts_at=starts_at, ends_at=ends_at))
    await session.flush()
    return await load_caregiver(session, caregiver_id)


async def get_district_caregiver(
    session: AsyncSession, operator: Principal, caregiver_id: uuid.UUID
) -> Caregiver:
    assert operator.district_id is not None
    caregiver = await session.scalar(
        district_caregivers_query(operator.district_id).where(Caregiver.id == caregiver_id)
    )
    if caregiver is None:
        raise NotFound("No such caregiver.")
    return caregiver


async def list_district_caregivers(
    session: AsyncSession, operator: Principal, *, page: PageParams
) -> tuple[list[Caregiver], str | None]:
    assert operator.district_id is not None
    return await fetch_page(
        session,
        district_caregivers_query(operator.district_id),
        [Key(Caregiver.name), Key(Caregiver.id)],
        page,
    )


async def create_admin(session: AsyncSession, *, login: str, password: str, name: str) -> Account:
    if len(password) < 12:
        raise Unprocessable("An admin password needs at least 12 characters.", code="weak_password")
    login = login_key(login)
    await _new_login(session, login)
    account = Account(
        role=Role.admin,
        login=login,
        password_hash=await hash_password(password),
        display_name=name,
    )
    session.add(account)
    await _flush_login(session, None)
    return account


async def create_admin_account(settings: Settings, login: str, password: str, name: str) -> None:
    """The CLI's unit of work for ``doorstep create-admin`` (the first account of a new install)."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await create_admin(session, login=login, password=password, name=name)
    finally:
        await engine.dispose()
