"""Engine, session factory and the shared ``MetaData``.

SQLite gets WAL, ``busy_timeout``, foreign keys and ``BEGIN IMMEDIATE`` for every transaction:
SQLAlchemy drops ``FOR UPDATE`` on SQLite, so correctness under concurrency comes from taking the
write lock at ``BEGIN`` (one writer at a time), never from a check-then-act in Python.

Bound parameters never reach a log or an error message (``hide_parameters``): they hold phone
numbers, addresses and notes. ``DOORSTEP_DB_ECHO`` logs statements through the
``sqlalchemy.engine`` logger (``app/logs.py``), not through a handler of SQLAlchemy's own.
A pool that has no connection to give within ``db_pool_timeout_s`` raises
``sqlalchemy.exc.TimeoutError``, which the API answers 503 with ``Retry-After``.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app import logs
from app.config import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin, so the begin event
        # below can take the write lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


READ_ONLY = "doorstep_read_only"


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock up front; a read-only unit of work (log-in) takes none, so a
    # burst of log-ins verifying passwords never holds up the one writer.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings, *, pool_timeout_s: float | None = None) -> AsyncEngine:
    """Build the async engine for ``settings.database_url`` (aiosqlite or asyncpg).

    API engines give up on the pool after ``db_pool_timeout_s`` (the request is shed with a
    503); background work that has no client to answer and should rather wait (a dispatcher
    pass) passes a longer ``pool_timeout_s``."""
    url = make_url(settings.database_url)
    timeout = settings.db_pool_timeout_s if pool_timeout_s is None else pool_timeout_s
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, pool_timeout=timeout, hide_parameters=True)
        event.listen(
            engine.sync_engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms)
        )
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=timeout,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def asyncpg_dsn(database_url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, for connections of their own (LISTEN,
    advisory locks) outside SQLAlchemy's pool."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_sessionmaker(
    engine: AsyncEngine, *, read_only: bool = False
) -> async_sessionmaker[AsyncSession]:
    """Sessions for units of work; ``read_only`` ones must not write (SQLite: no write lock)."""
    bind = engine.execution_options(**{READ_ONLY: True}) if read_only else engine
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


def reader_of(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Read-only sessions on the same engine as ``sessionmaker`` (SQLite: no write lock)."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    return create_sessionmaker(engine, read_only=True)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error (requests and jobs alike)."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
            logs.mark_committed()
        except BaseException:
            await session.rollback()
            raise


async def ensure_database(url: str) -> None:
    """Create the project's own PostgreSQL database if it is missing (never a shared one);
    the test suite and the live bench use it. Raises OSError or asyncpg's errors if no server
    answers."""
    import asyncpg

    parsed = make_url(url)
    name = parsed.database
    if not name or name in {"postgres", "test", "template0", "template1"}:
        raise ValueError(f"refusing to use the shared database {name!r}")
    conn = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
        timeout=10,
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    finally:
        await conn.close()
