"""The dispatcher: warm first, then dispatch the districts it holds until stopped.

Start-up, in order: load the engine's compiled kernels (``warm_up``, about 2 s from the cache
that ``make install`` and the image build fill; a missing cache is compiled here, before the
process says it is ready, never during a pass) and switch compiling off (``freeze``); claim
districts (``claim``); run a first pass. Only then is it ready (``/readyz``).

While it holds districts it runs three loops: the full pass (throttled to one per
``dispatch_min_interval_s``), an emergency-only loop beside it (an SOS never waits for a long
pass), and the outbox relay. Each sleeps until something is committed (an in-process signal
after each commit that wrote outbox events; on PostgreSQL a ``NOTIFY`` from the outbox trigger;
on SQLite, where another process cannot signal, a cheap look at the outbox's last id every
``sqlite_watch_s``), or until ``dispatch_poll_s`` passes (offer deadlines, no-shows).
"""

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app import metrics
from app.config import Settings
from app.db import reader_of
from app.dispatcher.claim import Claim
from app.models import OutboxEvent
from app.services import dispatch
from app.stream import published_locally, relay_once

log = logging.getLogger("doorstep.dispatcher")

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


def load_kernels() -> float:
    """Load (or, with no cache, compile) the engine's kernels, then forbid compiling; seconds
    it took."""
    from app.dispatch.index import compiled_versions, freeze, warm_up

    started = time.monotonic()
    warm_up()
    freeze()
    took = time.monotonic() - started
    log.info(
        "dispatch kernels ready",
        extra={"seconds": round(took, 2), "compiled_versions": compiled_versions()},
    )
    return took


class Dispatcher:
    """One dispatcher process's work (``run``); ``ready`` once it can dispatch."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        districts: Collection[str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.reader = reader_of(sessionmaker)
        self.settings = settings
        self.only = districts
        self.clock = clock
        self.wake = asyncio.Event()
        self.relay_wake = asyncio.Event()
        self.sos_wake = asyncio.Event()
        self.leading = asyncio.Event()  # holds at least one district
        self.ready = asyncio.Event()  # warm, claiming, and has passed once
        self.held: dict[uuid.UUID, str] = {}
        self.passes = 0
        self._last_batch = -float("inf")

    def _wake_all(self) -> None:
        self.wake.set()
        self.relay_wake.set()
        self.sos_wake.set()

    async def run(self) -> None:
        """Forever: load the kernels, claim districts, dispatch them; on any failure let go of
        everything and start claiming again."""
        log.info("dispatcher starting", extra={"districts": sorted(self.only or []) or "all"})
        # In a thread: numba loading (or compiling) holds no event loop; nothing else runs
        # here until it is done anyway.
        await asyncio.to_thread(load_kernels)
        _listeners.add(self._wake_all)
        try:
            while True:
                claim = Claim(self.sessionmaker, self.settings, only=self.only, wake=self._wake_all)
                try:
                    async with claim.open():
                        await self._lead(claim)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatcher failed; claiming again")
                self.held = {}
                if self.leading.is_set():
                    log.warning("lost leadership of every district")
                self.leading.clear()
                self.ready.clear()  # ready again after claiming and passing once more
                await asyncio.sleep(self.settings.leader_retry_s)
        finally:
            _listeners.discard(self._wake_all)
            self.leading.clear()
            self.ready.clear()

    async def _lead(self, claim: Claim) -> None:
        helpers = [
            asyncio.create_task(self._relay(claim), name="outbox-relay"),
            asyncio.create_task(self._emergencies(claim), name="emergencies"),
        ]
        if self.settings.is_sqlite:
            helpers.append(asyncio.create_task(self._watch(claim), name="outbox-watch"))
        else:
            helpers.append(asyncio.create_task(self._guard(claim), name="lock-guard"))
        next_claim = 0.0
        try:
            while claim.alive():
                for helper in helpers:
                    if helper.done():
                        helper.result()  # re-raise what stopped it
                if time.monotonic() >= next_claim:
                    await claim.take()
                    next_claim = time.monotonic() + self.settings.leader_retry_s
                    self.held = dict(claim.held)
                    if self.held and not self.leading.is_set():
                        log.info("leading", extra={"districts": sorted(self.held.values())})
                        self.leading.set()
                self.wake.clear()
                started = time.monotonic()
                if self.held:
                    try:
                        await self.run_pass()
                    except Exception:
                        # A failing pass (the database away a moment) is no reason to let go
                        # of the districts; losing the lock connection is (``_guard``).
                        log.exception("dispatch pass failed; trying again")
                self.ready.set()
                with contextlib.suppress(TimeoutError):
                    wait = (
                        self.settings.dispatch_poll_s if self.held else self.settings.leader_retry_s
                    )
                    await asyncio.wait_for(self.wake.wait(), timeout=wait)
                # Under a flood of commits passes would run back to back: at most one pass per
                # dispatch_min_interval_s (emergencies have their own loop).
                rest = self.settings.dispatch_min_interval_s - (time.monotonic() - started)
                if rest > 0:
                    await asyncio.sleep(rest)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        raise ConnectionError("lost the dispatcher's lock connection")

    async def _guard(self, claim: Claim) -> None:
        """PostgreSQL: the lock connection is checked (``SELECT 1`` after every quiet
        ``listen_check_s``); once it is lost, so is every district, and the dispatcher starts
        claiming again on a new connection (its LISTEN with it)."""
        await claim.lost()
        raise ConnectionError("lost the dispatcher's lock connection")

    async def _relay(self, claim: Claim) -> None:
        """Publish committed events as soon as they commit (a loop of its own, so a long pass
        never delays the live streams). Every dispatcher relays: one at a time (relay_once
        takes a transaction-level lock), in commit order."""
        while claim.alive():
            self.relay_wake.clear()
            while await self.relay_pass():
                pass
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.relay_wake.wait(), timeout=self.settings.stream_poll_s)

    async def _emergencies(self, claim: Claim) -> None:
        """Pending emergencies as soon as they commit, beside the (possibly long) full pass:
        both lock each order and re-check its status, so they never both offer it."""
        while claim.alive():
            self.sos_wake.clear()
            if self.held:
                started = time.monotonic()
                try:
                    await dispatch.Pass(
                        self.sessionmaker, self.settings, self.clock, districts=list(self.held)
                    ).dispatch_emergencies()
                    metrics.observe_dispatch_pass(time.monotonic() - started, "emergency")
                except Exception:
                    log.exception("emergency dispatch failed; the full pass will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sos_wake.wait(), timeout=self.settings.dispatch_poll_s)
            await asyncio.sleep(SOS_DEBOUNCE_S)  # gather a burst of commits into one look

    async def _watch(self, claim: Claim) -> None:
        """SQLite: another process cannot signal this one, so look at the outbox's last id (an
        index lookup; WAL readers never block the writer) every ``sqlite_watch_s``."""
        last = None
        while claim.alive():
            async with self.reader() as session:
                newest = await session.scalar(select(func.max(OutboxEvent.id)))
            if last is not None and newest != last:
                self._wake_all()
            last = newest
            await asyncio.sleep(self.settings.sqlite_watch_s)

    async def relay_pass(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            count = await relay_once(session, now=self.clock())
        if count:
            published_locally()
        return count

    async def run_pass(self) -> dispatch.Tally:
        batch_due = time.monotonic() - self._last_batch >= self.settings.batch_interval_s
        started = time.monotonic()
        tally = await dispatch.run_once(
            self.sessionmaker,
            self.settings,
            self.clock,
            batch_due=batch_due,
            districts=list(self.held),
        )
        if batch_due and not tally.replanned:  # a batch cut short runs again next pass
            self._last_batch = time.monotonic()
        self.passes += 1
        took = time.monotonic() - started
        metrics.observe_dispatch_pass(took, "full")
        metrics.count_offers_expired(tally.expired)
        figures = {
            "pass": self.passes,
            "seconds": round(took, 3),
            "districts": sorted(self.held.values()),
            **{k: v for k, v in dataclasses.asdict(tally).items() if k != "errors"},
            "errors": len(tally.errors),
        }
        # A pass that found nothing to do is not news (one every second when idle).
        busy = tally.seen or tally.expired or tally.no_shows or tally.errors
        log.log(logging.INFO if busy else logging.DEBUG, "dispatch pass", extra=figures)
        return tally
