"""``Idempotency-Key`` for order creation, scoped to the caller (DESIGN.md invariant 5).

The key row is claimed with ``INSERT ... ON CONFLICT DO NOTHING`` in the same transaction as the
order it guards. A racing duplicate blocks on the claim (PostgreSQL) or on the write lock
(SQLite) until the first commits, then replays the stored response: one order, never two.
"""

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, Unprocessable
from app.models import IdempotencyKey


def request_fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def claim(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    key: str,
    fingerprint: str,
    now: datetime,
    ttl: timedelta,
) -> dict[str, Any] | None:
    """Claim ``key`` for a new request (None), or return the first response to replay."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.account_id == account_id,
            IdempotencyKey.key == key,
            IdempotencyKey.expires_at <= now,
        )
    )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = await session.execute(
        insert(IdempotencyKey)
        .values(
            account_id=account_id,
            key=key,
            request_hash=fingerprint,
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    if claimed.first() is not None:
        return None
    existing = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
            )
        )
    ).scalar_one()
    if existing.request_hash != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request body.",
            code="idempotency_key_reused",
        )
    if existing.response_body is None:
        raise Conflict("A request with this Idempotency-Key is in progress.", code="in_progress")
    return existing.response_body


async def store_response(
    session: AsyncSession, *, account_id: uuid.UUID, key: str, status: int, body: dict[str, Any]
) -> None:
    row = (
        await session.execute(
            select(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
            )
        )
    ).scalar_one()
    row.response_status = status
    row.response_body = body
