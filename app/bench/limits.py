"""The abuse limiter's cost per request (``doorstep bench --sections limits``).

A request's smallest unit of work (begin, one statement, commit; the statement a read, or a
row update as placing an order makes) is timed with and without the limiter's hit (``app/services/limits.py:allow``, the statement every limited request adds),
interleaved in the same process on the same database, so the difference of the medians is
what the limiter adds. Keys are spread over 1,000 callers and never reach their limit (the
common case: a refused hit costs one more ``SELECT``). SQLite always; PostgreSQL if
``DOORSTEP_BENCH_PG_URL`` (default: the ``doorstep_limits`` database) answers.
"""

import asyncio
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bench.run import Report
from app.config import Settings
from app.db import create_engine, create_sessionmaker, ensure_database
from app.models import RateLimit
from app.services import limits

SQLITE_URL = "sqlite+aiosqlite:///./var/bench-limits.db"
PG_URL = os.environ.get(
    "DOORSTEP_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/doorstep_limits"
)
TABLE: Table = RateLimit.metadata.tables["rate_limit"]
RULE = limits.Rule(count=1_000_000, period_s=60)


async def _measure(
    engine: AsyncEngine, samples: int, *, writes: bool
) -> tuple[list[float], list[float]]:
    """(without, with) the limiter's hit, in µs per unit of work; ``writes``: the unit of work
    also updates a row, as placing an order does (else it only reads, as a provider's GET)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: TABLE.create(sync, checkfirst=True))
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker.begin() as session:
        await limits.allow(session, "bench-anchor", RULE, now=datetime.now(UTC))
    work = (
        update(RateLimit)
        .where(RateLimit.key == "bench-anchor")
        .values(failures=RateLimit.failures + 1)
        if writes
        else select(1)
    )
    plain: list[float] = []
    limited: list[float] = []
    for i in range(samples + 100):
        now = datetime.now(UTC)
        for with_limiter in (i % 2 == 0, i % 2 == 1):  # alternate which goes first
            started = time.perf_counter()
            async with sessionmaker.begin() as session:
                if with_limiter:
                    await limits.allow(session, f"bench:{i % 1000}", RULE, now=now)
                await session.execute(work)
            elapsed = (time.perf_counter() - started) * 1e6
            if i >= 100:  # warm-up excluded
                (limited if with_limiter else plain).append(elapsed)
    return plain, limited


def _row(report: Report, name: str, times: tuple[list[float], list[float]]) -> None:
    plain, limited = times
    base, with_ = statistics.median(plain), statistics.median(limited)
    report.add(
        f"limiter: cost per request, {name}",
        "(no target)",
        f"unit of work median {base:.0f} µs without, {with_:.0f} µs with the limiter's hit: "
        f"+{with_ - base:.0f} µs (p90 {statistics.quantiles(limited, n=10)[-1]:.0f} µs with, "
        f"{statistics.quantiles(plain, n=10)[-1]:.0f} µs without; n={len(plain)} each)",
        None,
    )


def section(report: Report) -> None:
    samples = 500 if report.quick else 3000
    Path("var").mkdir(exist_ok=True)
    Path("var/bench-limits.db").unlink(missing_ok=True)

    async def run(url: str, writes: bool) -> tuple[list[float], list[float]]:
        engine = create_engine(Settings(env="test", database_url=url))
        try:
            return await _measure(engine, samples, writes=writes)
        finally:
            await engine.dispose()

    kinds = (("a read-only request", False), ("a request that writes", True))
    for kind, writes in kinds:
        _row(report, f"SQLite, {kind}", asyncio.run(run(SQLITE_URL, writes)))
    try:
        asyncio.run(ensure_database(PG_URL))
    except OSError as error:
        report.note(f"limiter on PostgreSQL not measured: {error}")
        return
    for kind, writes in kinds:
        _row(report, f"PostgreSQL, {kind}", asyncio.run(run(PG_URL, writes)))
