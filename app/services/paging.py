"""Offset pagination shared by every list endpoint."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


async def fetch_page(
    session: AsyncSession, stmt: Select[T], *, limit: int, offset: int
) -> tuple[Sequence[T], int | None]:
    """Rows of one page and the offset of the next (None at the end)."""
    rows = (await session.execute(stmt.limit(limit + 1).offset(offset))).scalars().all()
    more = len(rows) > limit
    return rows[:limit], (offset + limit if more else None)


def page_body(
    items: Sequence[Any], *, limit: int, offset: int, next_offset: int | None
) -> dict[str, Any]:
    return {"items": list(items), "limit": limit, "offset": offset, "next_offset": next_offset}
