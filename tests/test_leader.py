"""Dispatchers share a city by districts on PostgreSQL: each district is dispatched by exactly
one process, a dispatcher limited to some districts takes only those, and when a dispatcher goes
away its districts are taken over within seconds. (Each Dispatcher here has its own engine and
lock connection, as a process would.)"""

import asyncio
import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatcher.claim import Claim
from app.dispatcher.loop import Dispatcher
from tests.factories import World

pytestmark = pytest.mark.postgres_only


async def stop(tasks: list["asyncio.Task[None]"], engines: list[AsyncEngine]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for e in engines:
        await e.dispose()


async def until(check: Callable[[], bool], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.05)


async def test_each_district_has_one_dispatcher_and_a_takeover_within_seconds(
    settings: Settings, engine: AsyncEngine, world: World
) -> None:
    fast = settings.model_copy(update={"leader_retry_s": 0.2, "dispatch_poll_s": 0.2})
    engines = [create_engine(fast) for _ in range(3)]
    workers = [Dispatcher(create_sessionmaker(e), fast) for e in engines]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        # Both districts (lianhu, beilin) are taken, each by exactly one of the three.
        await until(lambda: sum(len(w.held) for w in workers) == 2, 30)
        await asyncio.sleep(1.0)  # give the others every chance to (wrongly) take one too
        held = [set(w.held.values()) for w in workers]
        assert sorted(code for h in held for code in h) == ["beilin", "lianhu"]
        assert all(w.ready.is_set() for w in workers)
        for w in workers:
            if w.held:
                assert w.passes > 0

        # A dispatcher goes away (its lock connection closes with it): its districts move.
        first = next(i for i, w in enumerate(workers) if w.held)
        lost = set(workers[first].held.values())
        started = time.monotonic()
        tasks[first].cancel()
        await asyncio.gather(tasks[first], return_exceptions=True)
        others = [w for i, w in enumerate(workers) if i != first]
        await until(lambda: {c for w in others for c in w.held.values()} >= lost, 10)
        assert time.monotonic() - started < 5
        assert sorted(c for w in others for c in w.held.values()) == ["beilin", "lianhu"]
    finally:
        await stop(tasks, engines)


async def test_a_dispatcher_takes_only_the_districts_it_was_given(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    fast = settings.model_copy(update={"leader_retry_s": 0.2, "dispatch_poll_s": 0.2})
    engines = [create_engine(fast) for _ in range(2)]
    only_beilin = Dispatcher(create_sessionmaker(engines[0]), fast, districts=["beilin"])
    anything = Dispatcher(create_sessionmaker(engines[1]), fast)
    tasks = [asyncio.create_task(only_beilin.run())]
    try:
        await until(lambda: only_beilin.ready.is_set(), 30)
        assert set(only_beilin.held.values()) == {"beilin"}
        # lianhu stays free for a dispatcher that may take it.
        tasks.append(asyncio.create_task(anything.run()))
        await until(lambda: set(anything.held.values()) == {"lianhu"}, 30)
        async with sessionmaker() as session:
            names = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted "
                        "AND a.application_name LIKE 'doorstep-dispatcher:%'"
                    )
                )
            ).scalar_one()
        assert names == 2  # one lock per district, visible to an operator
    finally:
        await stop(tasks, engines)


async def test_a_dispatcher_whose_lock_connection_is_terminated_claims_again(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    """pg_terminate_backend on the lock connection (a failover, an operator, a network cut):
    the dispatcher notices, lets go, and holds its districts again on a new connection."""
    fast = settings.model_copy(
        update={"leader_retry_s": 0.2, "dispatch_poll_s": 0.2, "listen_check_s": 0.5}
    )
    engine = create_engine(fast)
    dispatcher = Dispatcher(create_sessionmaker(engine), fast)
    task = asyncio.create_task(dispatcher.run())
    query = text(
        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        "AND a.application_name LIKE 'doorstep-dispatcher:%' LIMIT 1"
    )
    try:
        await until(lambda: len(dispatcher.held) == 2, 30)
        async with sessionmaker() as session:
            backend = (await session.execute(query)).scalar_one()
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        deadline = time.monotonic() + 10
        while True:
            async with sessionmaker() as session:
                again = (await session.execute(query)).scalar_one_or_none()
            if again not in (None, backend) and len(dispatcher.held) == 2:
                break
            assert time.monotonic() < deadline, "the districts were not claimed again"
            await asyncio.sleep(0.05)
    finally:
        await stop([task], [engine])


async def test_taking_districts_while_the_connection_is_checked_keeps_leadership(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], world: World
) -> None:
    """The lock attempts and the connection check share one asyncpg connection, which runs one
    operation at a time: a clash must not read as a lost connection (it dropped every
    district, every few seconds, wherever another dispatcher held some)."""
    eager = settings.model_copy(update={"listen_check_s": 0.01})
    engine = create_engine(eager)
    claim = Claim(create_sessionmaker(engine), eager, only=None, wake=lambda: None)
    try:
        async with claim.open():
            lost = asyncio.create_task(claim.lost())
            for _ in range(100):
                claim.held.clear()  # as if others held them: every district is tried again
                await claim.take()
                await asyncio.sleep(0)
            assert not lost.done()
            assert claim.alive()
            lost.cancel()
    finally:
        await engine.dispose()
