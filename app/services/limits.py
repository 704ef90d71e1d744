"""Abuse limits that hold across API workers: counters in the database (table ``rate_limit``).

No Redis is in the stack, and PostgreSQL is already the one coordinator of several workers,
so each limit is one row per key, changed by one atomic statement:

- **Rates** (orders per senior, positions per caregiver, requests per provider) use GCRA, the
  "generic cell rate algorithm": a rule of ``count`` per ``period_s`` lets a burst of ``count``
  through, then one every ``period_s / count`` seconds. The row keeps one number, the
  theoretical arrival time ``tat_s``; a hit is an ``INSERT … ON CONFLICT DO UPDATE … WHERE``
  that moves it only if the hit is allowed. On PostgreSQL the conflicting row is locked and the
  condition re-read on its latest version, so N concurrent hits let exactly ``count`` through;
  on SQLite the write lock serialises them. ``hit`` runs in the caller's unit of work: a
  request that fails and rolls back is not counted (and on PostgreSQL, hits of one key wait
  for each other's commit).
- **Log-in back-off** (per typed login and per client address): failures are counted in a
  unit of work of their own (the 401 rolls back the request's); from the ``after``-th failure
  on, the key is blocked for ``base * 2**(failures - after)`` seconds, capped. A blocked key is
  answered 429 before any password is checked, so the answer is the same whether the account
  exists, and says nothing about the password. Success clears the login's count (not the
  client's: one valid account must not launder a client's guesses at others).
  Failures older than ``login_failure_window_s`` are forgotten.

Times are UTC epoch seconds. Every limit is a setting (README, "Limits").
"""

import hashlib
import math
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import phones
from app.config import Settings
from app.errors import TooManyRequests, Unauthorized
from app.models import RateLimit

# Rounding: a burst of exactly ``count`` hits must fit in ``period_s``.
_EPSILON_S = 1e-6
# One failed log-in in this many also clears out stale rows.
_SWEEP_CHANCE = 0.01


@dataclass(frozen=True)
class Rule:
    """At most ``count`` hits per ``period_s`` seconds (a burst of ``count``, then evenly)."""

    count: int
    period_s: float

    @property
    def interval_s(self) -> float:
        return self.period_s / self.count


def order_rule(settings: Settings) -> Rule:
    return Rule(settings.order_rate_count, settings.order_rate_period_s)


def position_rule(settings: Settings) -> Rule:
    return Rule(settings.position_rate_count, settings.position_rate_period_s)


def provider_rule(settings: Settings) -> Rule:
    return Rule(settings.provider_rate_count, settings.provider_rate_period_s)


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def allow(session: AsyncSession, key: str, rule: Rule, *, now: datetime) -> int:
    """Count one hit on ``key`` if ``rule`` allows it: 0, or the whole seconds (at least 1)
    until it would be allowed (nothing is counted then)."""
    now_s = now.timestamp()
    start = case((RateLimit.tat_s > now_s, RateLimit.tat_s), else_=literal(now_s))
    statement = (
        _insert(session)(RateLimit)
        .values(key=key, tat_s=now_s + rule.interval_s, failures=0, last_failure_s=0.0)
        .values(blocked_until_s=0.0)
    )
    statement = statement.on_conflict_do_update(
        index_elements=[RateLimit.key],
        set_={"tat_s": start + rule.interval_s},
        where=start + rule.interval_s - now_s <= rule.period_s + _EPSILON_S,
    ).returning(RateLimit.tat_s)
    if (await session.execute(statement)).first() is not None:
        return 0
    tat_s = await session.scalar(select(RateLimit.tat_s).where(RateLimit.key == key))
    wait_s = (tat_s or now_s) + rule.interval_s - rule.period_s - now_s
    return max(1, math.ceil(wait_s))


async def hit(
    session: AsyncSession, key: str, rule: Rule, *, now: datetime, what: str = "requests"
) -> None:
    """Count one hit on ``key``; raises ``TooManyRequests`` (429, ``Retry-After``) beyond
    ``rule``."""
    wait_s = await allow(session, key, rule, now=now)
    if wait_s:
        raise TooManyRequests(
            f"Too many {what}: at most {rule.count} in {rule.period_s:g} s; "
            f"try again in {wait_s} s.",
            retry_after_s=wait_s,
        )


async def count_order(
    session: AsyncSession, settings: Settings, senior_id: uuid.UUID, *, now: datetime
) -> None:
    """A senior places an order (never an SOS): 429 beyond ``order_rate_*``."""
    if settings.limits_enabled:
        await hit(session, f"order:{senior_id}", order_rule(settings), now=now, what="orders")


async def count_position(
    session: AsyncSession, settings: Settings, caregiver_id: uuid.UUID, *, now: datetime
) -> bool:
    """Whether a caregiver's position fix is within ``position_rate_*`` (else it is dropped,
    and the phone is answered as usual)."""
    if not settings.limits_enabled:
        return True
    rule = position_rule(settings)
    return await allow(session, f"position:{caregiver_id}", rule, now=now) == 0


async def count_provider_request(
    session: AsyncSession, settings: Settings, provider_id: uuid.UUID, *, now: datetime
) -> None:
    """A provider's API request: 429 beyond ``provider_rate_*``."""
    if settings.limits_enabled:
        rule = provider_rule(settings)
        await hit(session, f"provider:{provider_id}", rule, now=now, what="requests")


# --- log-in back-off -----------------------------------------------------------------------


def client_of(request: Request) -> str:
    """The client's address as the server sees it (behind a proxy, run uvicorn with
    ``--proxy-headers`` and ``--forwarded-allow-ips`` so this is the real client)."""
    return request.client.host if request.client else "unknown"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _keys(login: str, client: str) -> list[str]:
    # Digests: the table keeps no phone number or address, and any text typed (a NUL byte,
    # 10,000 characters) makes a key PostgreSQL can store.
    # A phone number counts as one login however it is written (it is one account).
    login = login.strip() if "\x00" in login else phones.login_key(login)
    return [f"login:{_digest(login)}", f"login-client:{_digest(client)}"]


async def check_login(read: AsyncSession, *, login: str, client: str, now: datetime) -> bool:
    """Raises ``TooManyRequests`` while the login or the client is backing off; else whether
    the login has failures on record (to clear on success)."""
    rows = (
        await read.execute(
            select(RateLimit.key, RateLimit.blocked_until_s).where(
                RateLimit.key.in_(_keys(login, client))
            )
        )
    ).all()
    wait_s = max((row.blocked_until_s - now.timestamp() for row in rows), default=0.0)
    if wait_s > 0:
        wait = max(1, math.ceil(wait_s))
        raise TooManyRequests(
            f"Too many failed log-ins; try again in {wait} s.",
            retry_after_s=wait,
            code="login_backoff",
        )
    return any(row.key == _keys(login, client)[0] for row in rows)


async def login_failed(
    session: AsyncSession, settings: Settings, *, login: str, client: str, now: datetime
) -> None:
    """Count a failed log-in against the login and the client, blocking each past its
    allowance."""
    now_s = now.timestamp()
    account_key, client_key = _keys(login, client)
    allowances = {
        account_key: settings.login_backoff_after,
        client_key: settings.login_client_backoff_after,
    }
    for key, after in allowances.items():
        stale = RateLimit.last_failure_s < now_s - settings.login_failure_window_s
        statement = (
            _insert(session)(RateLimit)
            .values(key=key, tat_s=0.0, failures=1, last_failure_s=now_s, blocked_until_s=0.0)
            .on_conflict_do_update(
                index_elements=[RateLimit.key],
                set_={
                    "failures": case((stale, 1), else_=RateLimit.failures + 1),
                    "last_failure_s": now_s,
                },
            )
            .returning(RateLimit.failures)
        )
        failures = (await session.execute(statement)).scalar_one()
        if failures >= after:
            delay_s = min(
                settings.login_backoff_base_s * 2.0 ** min(failures - after, 60),
                settings.login_backoff_max_s,
            )
            await session.execute(
                update(RateLimit)
                .where(RateLimit.key == key)
                .values(blocked_until_s=now_s + delay_s)
            )


async def login_succeeded(session: AsyncSession, *, login: str) -> None:
    """Forget the login's failures."""
    await session.execute(delete(RateLimit).where(RateLimit.key == _keys(login, "")[0]))


async def sweep(session: AsyncSession, settings: Settings, *, now: datetime) -> int:
    """Delete the rows that no longer limit anything (a key seen again starts afresh, as it
    would anyway): how many. Log-in failures under made-up logins would otherwise pile up."""
    now_s = now.timestamp()
    result = await session.execute(
        delete(RateLimit).where(
            RateLimit.tat_s <= now_s,
            RateLimit.blocked_until_s <= now_s,
            RateLimit.last_failure_s < now_s - settings.login_failure_window_s,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


@asynccontextmanager
async def guard_login(
    request: Request, settings: Settings, *, login: str, now: datetime
) -> AsyncIterator[None]:
    """Wrap a password check: 429 while backing off; a 401 inside counts as a failure, a
    normal exit as a success. Its counters commit in units of work of their own, whatever
    the request's fate."""
    if not settings.limits_enabled:
        yield
        return
    client = client_of(request)
    writer: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    reader: async_sessionmaker[AsyncSession] = request.app.state.read_sessionmaker
    async with reader() as read:
        on_record = await check_login(read, login=login, client=client, now=now)
    try:
        yield
    except Unauthorized:
        async with writer.begin() as session:
            await login_failed(session, settings, login=login, client=client, now=now)
            if random.random() < _SWEEP_CHANCE:  # noqa: S311 (not a secret)
                await sweep(session, settings, now=now)
        raise
    if on_record:
        async with writer.begin() as session:
            await login_succeeded(session, login=login)
