"""Create the project's own PostgreSQL test database if it is missing (fails if no server)."""

import asyncio
import sys

import asyncpg
from sqlalchemy.engine import make_url


async def ensure_database(url: str) -> None:
    parsed = make_url(url)
    name = parsed.database
    assert name, url
    assert name not in {"postgres", "test", "template0", "template1"}, name
    try:
        conn = await asyncpg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            database="postgres",
            timeout=10,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"PostgreSQL is required for the test suite and is not reachable: {exc}")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(ensure_database(sys.argv[1]))
