"""Keyset (cursor) pagination shared by every list endpoint.

A list is ordered by a tuple of keys that ends in a unique column (the row's id), so every row
has one place in the order. A page is "the first ``limit`` rows after the last one you saw",
and ``next_cursor`` names that last row by its keys: placing or cancelling an order between two
pages moves no row past the boundary, so nothing is shown twice or skipped (offsets shift when
a row is inserted before them).

A cursor is opaque to clients: base64url of the key values (type-tagged JSON) and an HMAC of
them and of the list's path, so a cursor edited by hand or taken to another list is a 422
``bad_cursor`` rather than a page from somewhere unexpected.
"""

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement

from app.errors import Unprocessable

_SIG_BYTES = 16


@dataclass(frozen=True)
class Key:
    """One sort key of a list: an expression that is never NULL, ascending unless ``desc``."""

    expr: ColumnElement[Any] | QueryableAttribute[Any]
    desc: bool = False


@dataclass(frozen=True)
class PageParams:
    """A page request: ``limit`` rows after the row ``after`` names (None: from the start).
    ``scope`` (the list's path) and ``secret`` sign the cursors of the next pages."""

    limit: int
    after: tuple[Any, ...] | None
    scope: str
    secret: bytes

    def cursor(self, values: Sequence[Any]) -> str:
        """The opaque cursor naming the row with these key values."""
        body = json.dumps([_tag(v) for v in values], separators=(",", ":")).encode()
        return _b64(_sign(self.secret, self.scope, body) + body)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _sign(secret: bytes, scope: str, body: bytes) -> bytes:
    return hmac.new(secret, scope.encode() + b"\0" + body, hashlib.sha256).digest()[:_SIG_BYTES]


def _tag(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", value.hex]
    raise TypeError(f"cannot put {type(value).__name__} in a cursor")


_UNTAG: dict[str, Callable[[Any], Any]] = {
    "b": lambda v: v if isinstance(v, bool) else None,
    "i": lambda v: v if isinstance(v, int) and not isinstance(v, bool) else None,
    "f": lambda v: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None,
    "s": lambda v: v if isinstance(v, str) else None,
    "t": lambda v: datetime.fromisoformat(v) if isinstance(v, str) else None,
    "u": lambda v: uuid.UUID(hex=v) if isinstance(v, str) else None,
}


def decode_cursor(cursor: str, *, scope: str, secret: bytes) -> tuple[Any, ...]:
    """The key values a cursor names; ``Unprocessable`` (422 ``bad_cursor``) if this list did
    not give it or it was changed."""
    bad = Unprocessable(
        "cursor is not one this list gave: pass next_cursor from the previous page unchanged.",
        code="bad_cursor",
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    sig, body = raw[:_SIG_BYTES], raw[_SIG_BYTES:]
    if not hmac.compare_digest(sig, _sign(secret, scope, body)):
        raise bad
    try:
        tagged = json.loads(body)
        values = tuple(_UNTAG[t](v) for t, v in tagged)
    except (ValueError, TypeError, KeyError):
        raise bad from None
    if any(v is None for v in values):
        raise bad
    return values


def _after(keys: Sequence[Key], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the keys' order (lexicographic, each key's direction)."""
    parts = []
    for i, key in enumerate(keys):
        beyond = key.expr < values[i] if key.desc else key.expr > values[i]
        parts.append(and_(*(k.expr == v for k, v in zip(keys[:i], values, strict=False)), beyond))
    return or_(*parts)


async def fetch_page(
    session: AsyncSession,
    stmt: Select[*tuple[Any, ...]],
    keys: Sequence[Key],
    page: PageParams,
    *,
    entities: int = 1,
) -> tuple[list[Any], str | None]:
    """One page of ``stmt`` (its own ORDER BY is replaced by ``keys``, whose last must be
    unique) and the cursor of the next page (None at the end). Items are the first column of
    each row, or a tuple of the first ``entities`` columns."""
    if page.after is not None:
        if len(page.after) != len(keys):
            raise Unprocessable(
                "cursor is not one this list gave: pass next_cursor from the previous page "
                "unchanged.",
                code="bad_cursor",
            )
        stmt = stmt.where(_after(keys, page.after))
    stmt = (
        stmt.order_by(None)
        .order_by(*(k.expr.desc() if k.desc else k.expr.asc() for k in keys))
        .add_columns(*keys_labelled(keys))
        .limit(page.limit + 1)
    )
    rows = (await session.execute(stmt)).all()
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    items = [row[0] if entities == 1 else tuple(row[:entities]) for row in rows]
    next_cursor = page.cursor(tuple(rows[-1][entities:])) if more and rows else None
    return items, next_cursor


def keys_labelled(keys: Sequence[Key]) -> list[Any]:
    return [k.expr.label(f"_page_key_{i}") for i, k in enumerate(keys)]
