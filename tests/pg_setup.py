"""Create the project's own PostgreSQL test database if it is missing (fails if no server)."""

import asyncio
import sys

import asyncpg

from app.db import ensure_database

if __name__ == "__main__":
    try:
        asyncio.run(ensure_database(sys.argv[1]))
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"PostgreSQL is required for the test suite and is not reachable: {exc}")
