"""Exactly one dispatcher among several processes on PostgreSQL, and a quick takeover when it
goes away. (Each Dispatcher here has its own engine and lock connection, as a worker would.)"""

import asyncio
import time

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.background import Dispatcher
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatch.index import warm_up

pytestmark = pytest.mark.postgres_only


async def test_one_leader_and_a_takeover_within_seconds(
    settings: Settings, engine: AsyncEngine, clean: None
) -> None:
    warm_up()
    fast = settings.model_copy(
        update={"dispatcher_enabled": True, "leader_retry_s": 0.2, "dispatch_poll_s": 0.2}
    )
    engines = [create_engine(fast) for _ in range(3)]
    workers = [Dispatcher(create_sessionmaker(e), fast) for e in engines]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await asyncio.wait_for(
            asyncio.wait(
                [asyncio.create_task(w.leading.wait()) for w in workers],
                return_when=asyncio.FIRST_COMPLETED,
            ),
            timeout=30,
        )
        await asyncio.sleep(1.0)  # give the others every chance to (wrongly) lead too
        leaders = [i for i, w in enumerate(workers) if w.leading.is_set()]
        assert len(leaders) == 1
        first = leaders[0]
        assert workers[first].passes > 0

        # The leader goes away (its lock connection closes with it).
        started = time.monotonic()
        tasks[first].cancel()
        await asyncio.gather(tasks[first], return_exceptions=True)
        others = [w for i, w in enumerate(workers) if i != first]
        await asyncio.wait_for(
            asyncio.wait(
                [asyncio.create_task(w.leading.wait()) for w in others],
                return_when=asyncio.FIRST_COMPLETED,
            ),
            timeout=10,
        )
        took = time.monotonic() - started
        assert sum(w.leading.is_set() for w in others) == 1
        assert took < 5
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for e in engines:
            await e.dispose()
