"""Tests run against a real database built by the real migrations: SQLite or PostgreSQL,
chosen by DOORSTEP_TEST_DATABASE_URL. Each test starts from empty tables (catalogue kept)."""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import app.security
from app.config import Settings
from app.db import Base, create_engine, create_sessionmaker, ensure_database
from app.dispatch.index import freeze, warm_up
from app.main import create_app
from tests.factories import World, build_world

pytest_plugins = ["tests.browser"]


def _per_worker(url: str, worker: str) -> str:
    """Each pytest-xdist worker (``gw0``, ``gw1``, …) has a database of its own: ``test.db`` ->
    ``test-gw0.db``; PostgreSQL ``doorstep_test`` -> ``doorstep_test_gw0`` (created when missing)."""
    if not worker:
        return url
    if url.startswith("sqlite"):
        stem, dot, ext = url.rpartition(".")
        return f"{stem}-{worker}.{ext}" if dot and "/" not in ext else f"{url}-{worker}"
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


DATABASE_URL = _per_worker(
    os.environ.get("DOORSTEP_TEST_DATABASE_URL", "sqlite+aiosqlite:///./var/test.db"),
    os.environ.get("PYTEST_XDIST_WORKER", ""),
)
IS_POSTGRES = DATABASE_URL.startswith("postgresql")
# The app has no built-in signing key: the suite makes its own, at random, once per process.
JWT_SECRET = secrets.token_urlsafe(48)
KEEP = {"service", "alembic_version"}


def pytest_report_header() -> str:
    return f"database: {DATABASE_URL}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if IS_POSTGRES:
        # The pure engine never touches a database: once (in the SQLite pass) is enough.
        once = pytest.mark.skip(reason="no database involved (runs in the SQLite pass)")
        for item in items:
            if "pure" in item.keywords:
                item.add_marker(once)
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (runs in the PostgreSQL pass of make test)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def settings() -> Settings:
    # Tests drive dispatch passes themselves (with their own clock); the ones about the
    # dispatcher process start it explicitly.
    # The limits stay switched on (every request runs the limiter's SQL) but are far above what
    # any test does, and tests move the clock at will; tests/test_limits.py sets tight ones.
    return Settings(
        env="test",
        database_url=DATABASE_URL,
        jwt_secret=JWT_SECRET,
        order_rate_count=100_000,
        position_rate_count=100_000,
        provider_rate_count=100_000,
        login_backoff_after=100_000,
        login_client_backoff_after=100_000,
    )


@pytest.fixture(scope="session", autouse=True)
def no_compiling_at_run_time() -> None:
    """The service compiles its kernels before it serves and never after (DESIGN.md): the
    whole suite runs with compiling switched off, so any call that would need a new compiled
    version fails its test instead of stalling a live dispatcher for minutes."""
    warm_up()
    freeze()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> None:
    # Argon2's production cost (about 50 ms a hash) would dominate the suite; the algorithm and
    # code path stay the same.
    app.security._password_hash = PasswordHash(
        (Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)
    )


@pytest.fixture(scope="session")
def migrated(settings: Settings) -> None:
    """Drop everything and run the real migrations once per session."""
    import asyncio

    from app.cli import migrate

    async def reset() -> None:
        engine = create_engine(settings)
        async with engine.begin() as conn:
            if IS_POSTGRES:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    if IS_POSTGRES:
        asyncio.run(ensure_database(DATABASE_URL))
        asyncio.run(reset())
    else:
        path = Path(DATABASE_URL.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    os.environ["DOORSTEP_DATABASE_URL"] = DATABASE_URL
    migrate()


@pytest.fixture(scope="session")
async def engine(settings: Settings, migrated: None) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


async def wipe(engine: AsyncEngine) -> None:
    """Empty every table but the catalogue and the migrations' own.

    On SQLite a live server torn down by the test before (its dispatcher cancelled in the middle
    of a write) can hold the write lock a little longer than the busy timeout on a loaded
    machine: the wipe waits for it, up to 30 s, rather than failing the next test's set-up."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP]
    for attempt in range(30):
        try:
            async with engine.begin() as conn:
                if IS_POSTGRES:
                    await conn.execute(
                        text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
                    )
                else:
                    for name in tables:
                        await conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (table names from metadata)
            return
        except OperationalError as exc:
            if IS_POSTGRES or "locked" not in str(exc) or attempt == 29:
                raise
            await asyncio.sleep(1)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A fresh app, started (lifespan) and reached in process through httpx."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        AsyncClient(
            transport=ASGITransport(app=application), base_url="http://doorstep.test"
        ) as http,
    ):
        http.app = application  # type: ignore[attr-defined]
        yield http


@pytest.fixture
async def clean(engine: AsyncEngine) -> None:
    await wipe(engine)


@pytest.fixture
def sessionmaker(engine: AsyncEngine, clean: None) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def client(settings: Settings, clean: None) -> AsyncIterator[AsyncClient]:
    async with serving(settings) as http:
        yield http


@pytest.fixture
async def world(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> World:
    return await build_world(sessionmaker, settings, now=datetime.now(UTC))
