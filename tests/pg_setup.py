"""Create the project's own PostgreSQL test database if it is missing (fails if no server).

``--fresh`` also empties it (drops and recreates its public schema), so the migrations that
follow build it from nothing."""

import asyncio
import sys

import asyncpg
from sqlalchemy import make_url

from app.db import ensure_database


async def _empty(url: str) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database,
        timeout=10,
    )
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


async def _setup(url: str, *, fresh: bool) -> None:
    await ensure_database(url)
    if fresh:
        await _empty(url)


if __name__ == "__main__":
    args = sys.argv[1:]
    fresh = "--fresh" in args
    url = next(a for a in args if not a.startswith("--"))
    try:
        asyncio.run(_setup(url, fresh=fresh))
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"PostgreSQL is required for the test suite and is not reachable: {exc}")
