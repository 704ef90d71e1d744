"""Work the service does by itself, started from the FastAPI lifespan: the dispatcher loop.

Exactly one process dispatches. On PostgreSQL it is whoever holds an advisory lock on a
connection of its own (``pg_try_advisory_lock``): if that process dies, its connection closes,
the lock is released, and another worker takes it on its next try (``leader_retry_s``). Two
dispatchers at once would still be safe, only wasteful: every decision locks its order and
re-checks its status. On SQLite one process is supported.

The loop sleeps until something is committed (an in-process signal after each commit that
wrote outbox events, and on PostgreSQL a ``NOTIFY`` from a trigger on the outbox, which reaches
every worker), or until ``dispatch_poll_s`` passes (offer deadlines, no-shows).
"""

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app.config import Settings
from app.services import dispatch
from app.stream import published_locally, relay_once

log = logging.getLogger("doorstep.dispatcher")

ADVISORY_KEY = 0x0D00_5729  # "doorstep dispatcher"
OUTBOX_CHANNEL = "doorstep_outbox"
SOS_DEBOUNCE_S = 0.02

# Called after every commit that wrote outbox events, in this process.
_listeners: set[Callable[[], None]] = set()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("outbox", False):
        for listener in list(_listeners):
            listener()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("outbox", None)


def asyncpg_dsn(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.wake = asyncio.Event()
        self.relay_wake = asyncio.Event()
        self.sos_wake = asyncio.Event()
        self.leading = asyncio.Event()
        self.passes = 0
        self._last_batch = -float("inf")

    async def run(self) -> None:
        """Forever: become the leader, then dispatch until cancelled or leadership is lost."""
        from app.dispatch.index import warm_up

        # Load (or compile) the engine's kernels without holding up the API.
        await asyncio.to_thread(warm_up)
        _listeners.add(self.wake.set)
        _listeners.add(self.relay_wake.set)
        _listeners.add(self.sos_wake.set)
        try:
            while True:
                try:
                    async with self._leadership() as still_leader:
                        self.leading.set()
                        log.info("dispatching")
                        await self._lead(still_leader)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatcher failed; retrying")
                self.leading.clear()
                await asyncio.sleep(self.settings.leader_retry_s)
        finally:
            _listeners.discard(self.wake.set)
            _listeners.discard(self.relay_wake.set)
            _listeners.discard(self.sos_wake.set)
            self.leading.clear()

    @contextlib.asynccontextmanager
    async def _leadership(self) -> AsyncIterator[Callable[[], bool]]:
        if self.settings.is_sqlite:
            yield lambda: True
            return
        import asyncpg

        dsn = asyncpg_dsn(self.settings.database_url)
        while True:
            # Named, so an operator (and the load test) can see which process dispatches.
            conn = await asyncpg.connect(
                dsn, server_settings={"application_name": f"doorstep-dispatcher:{os.getpid()}"}
            )
            try:
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY):
                    break
            except BaseException:
                await conn.close()
                raise
            await conn.close()
            await asyncio.sleep(self.settings.leader_retry_s)

        def notified(*_: Any) -> None:
            self.wake.set()
            self.relay_wake.set()
            self.sos_wake.set()

        await conn.add_listener(OUTBOX_CHANNEL, notified)
        try:
            yield lambda: not conn.is_closed()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=5)
            if not conn.is_closed():
                conn.terminate()

    async def _lead(self, still_leader: Callable[[], bool]) -> None:
        helpers = [
            asyncio.create_task(self._relay(still_leader), name="outbox-relay"),
            asyncio.create_task(self._emergencies(still_leader), name="emergencies"),
        ]
        try:
            while still_leader():
                for helper in helpers:
                    if helper.done():
                        helper.result()  # re-raise what stopped it
                self.wake.clear()
                started = time.monotonic()
                await self.run_pass()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.settings.dispatch_poll_s)
                # Under a flood of commits, passes would run back to back and starve this
                # worker's requests: at most one pass per dispatch_min_interval_s.
                rest = self.settings.dispatch_min_interval_s - (time.monotonic() - started)
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        raise ConnectionError("lost the dispatcher's lock connection")

    async def _relay(self, still_leader: Callable[[], bool]) -> None:
        """Publish committed events as soon as they commit (a separate loop from dispatch, so
        a long pass never delays the live streams)."""
        while still_leader():
            self.relay_wake.clear()
            while await self.relay_pass():
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.relay_wake.wait(), timeout=self.settings.stream_poll_s)

    async def _emergencies(self, still_leader: Callable[[], bool]) -> None:
        """Pending emergencies as soon as they commit, beside the (possibly long) full pass:
        both lock each order and re-check its status, so they never both offer it."""
        while still_leader():
            self.sos_wake.clear()
            try:
                await dispatch.Pass(
                    self.sessionmaker, self.settings, self.clock
                ).dispatch_emergencies()
            except Exception:
                log.exception("emergency dispatch failed; the full pass will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sos_wake.wait(), timeout=self.settings.dispatch_poll_s)
            await asyncio.sleep(SOS_DEBOUNCE_S)  # gather a burst of commits into one look

    async def relay_pass(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            count = await relay_once(session, now=self.clock())
        if count:
            published_locally()
        return count

    async def run_pass(self) -> dispatch.Tally:
        batch_due = time.monotonic() - self._last_batch >= self.settings.batch_interval_s
        tally = await dispatch.run_once(
            self.sessionmaker, self.settings, self.clock, batch_due=batch_due
        )
        if batch_due:
            self._last_batch = time.monotonic()
        self.passes += 1
        return tally
