"""Live events: the outbox relay (publishes committed events in commit order) and the hub that
fans them out to this worker's Server-Sent Events subscribers.

**Relay** (the dispatcher's process only): gives every committed, unpublished outbox event a
``position`` — larger than any given before — in one short transaction. Outbox ids come from a
sequence and a smaller id can commit after a larger one, so a reader resuming "after id N"
could skip an event; positions are handed out after commit by one writer, so "after position N"
never skips. Then it wakes the readers (``NOTIFY doorstep_published`` on PostgreSQL; on SQLite
the relay runs in the dispatcher's process, so the API's hub looks every ``SQLITE_POLL_S``).

**Hub** (every worker): reads events past the last position it saw and puts each one in the
queues of the subscribers allowed to see it. On PostgreSQL it is woken by ``NOTIFY`` on a
``LISTEN`` connection that reconnects by itself (``app.pglisten``) and reads the outbox after
every reconnect, so a lost connection delays nothing for longer than the reconnect; it also
reads every ``stream_poll_s`` whatever happens. A queue is bounded: a subscriber that falls that
far behind is cut off (its stream ends, and the client resumes with ``Last-Event-ID`` from the
outbox), so a slow phone never holds up anyone else or the dispatcher.
"""

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from app import metrics
from app.config import Settings
from app.db import asyncpg_dsn
from app.deps import Principal
from app.models import OutboxEvent, Role
from app.pglisten import Listener

log = logging.getLogger("doorstep.stream")

PUBLISHED_CHANNEL = "doorstep_published"
RELAY_BATCH = 1000
SQLITE_POLL_S = 0.1
RELAY_LOCK = 0x0D00_5730  # transaction-level advisory lock around one relay batch
REPLAY_PAGE = 500
FIRST_LISTEN_WAIT_S = 5.0

# In-process wake-ups after the relay published (every worker also LISTENs on PostgreSQL).
_published: set[Callable[[], None]] = set()
# How long each event the relay published had waited, kept until its transaction commits.
_LAGS = "doorstep.outbox_lags"


@orm_event.listens_for(Session, "after_commit")
def _observe_lags(session: Session) -> None:
    created = session.info.pop(_LAGS, None)
    if created:
        now = datetime.now(UTC)
        metrics.observe_outbox_lag((now - at).total_seconds() for at in created)


@orm_event.listens_for(Session, "after_rollback")
def _forget_lags(session: Session) -> None:
    session.info.pop(_LAGS, None)


async def relay_once(session: AsyncSession, *, now: datetime) -> int:
    """Publish what has committed and is not yet published; how many events."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # One relay at a time even if two processes briefly both think they dispatch: two
        # batches computed from the same maximum could otherwise commit out of order.
        await session.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK)))
    ids = (
        await session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.position.is_(None))
            .order_by(OutboxEvent.id)
            .limit(RELAY_BATCH)
        )
    ).all()
    if not ids:
        return 0
    lo, hi = ids[0], ids[-1]
    base = await session.scalar(select(func.coalesce(func.max(OutboxEvent.position), 0)))
    assert base is not None
    created = (
        await session.scalars(
            update(OutboxEvent)
            .where(OutboxEvent.position.is_(None), OutboxEvent.id.between(lo, hi))
            .values(position=base + 1 + OutboxEvent.id - lo, published_at=now)
            .returning(OutboxEvent.created_at)
            .execution_options(synchronize_session=False)
        )
    ).all()
    # The lag is measured by the wall clock when the batch commits (``now`` may be a test's).
    session.info.setdefault(_LAGS, []).extend(created)
    count = len(created)
    if postgres:
        await session.execute(select(func.pg_notify(PUBLISHED_CHANNEL, "")))
    return count


def published_locally() -> None:
    for listener in list(_published):
        listener()


def audience(principal: Principal) -> tuple[str, uuid.UUID] | None:
    """Which events a caller's stream carries: a senior's own orders, a caregiver's offers and
    visits, a provider's caregivers', an operator's district queue."""
    if principal.role is Role.senior:
        return ("senior_id", principal.id)
    if principal.role is Role.caregiver:
        return ("caregiver_id", principal.id)
    if principal.role is Role.provider and principal.provider_id is not None:
        return ("provider_id", principal.provider_id)
    if principal.role is Role.operator and principal.district_id is not None:
        return ("district_id", principal.district_id)
    return None


@dataclass(frozen=True, slots=True)
class Item:
    position: int
    type: str
    data: dict[str, Any]

    def encode(self) -> str:
        return f"id: {self.position}\nevent: {self.type}\ndata: {json.dumps(self.data)}\n\n"


def item(event: OutboxEvent) -> Item:
    assert event.position is not None
    return Item(
        event.position, event.type, {"id": event.position, "type": event.type, **event.payload}
    )


@dataclass(eq=False)
class Subscriber:
    key: tuple[str, uuid.UUID]
    queue: asyncio.Queue[Item]
    cut_off: bool = False


@dataclass
class Hub:
    sessionmaker: async_sessionmaker[AsyncSession]  # read-only: a stream never writes
    settings: Settings
    position: int = 0
    subscribers: dict[tuple[str, uuid.UUID], set[Subscriber]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    listener: Listener | None = None

    async def run(self) -> None:
        """Forever: catch up with what the relay published, then wait for more."""
        _published.add(self.wake.set)
        listening = None
        try:
            while True:  # the database may not be up yet when the worker starts
                try:
                    async with self.sessionmaker() as session:
                        last = await session.scalar(select(func.max(OutboxEvent.position)))
                    break
                except Exception:
                    log.exception("cannot read the outbox yet; retrying")
                    await asyncio.sleep(self.settings.stream_poll_s)
            self.position = last or 0
            listening = await self._listen()
            self.ready.set()
            while True:
                self.wake.clear()
                try:
                    await self.read()
                except Exception:
                    log.exception("reading the outbox failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self._poll_s)
        finally:
            _published.discard(self.wake.set)
            if listening is not None:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)

    @property
    def _poll_s(self) -> float:
        # No NOTIFY on SQLite: an indexed read of what is past our position, a few times a
        # second, so a 20 s SOS offer reaches the caregiver's phone at once.
        if self.settings.is_sqlite:
            return min(self.settings.stream_poll_s, SQLITE_POLL_S)
        return self.settings.stream_poll_s

    async def _listen(self) -> "asyncio.Task[None] | None":
        """On PostgreSQL, the LISTEN connection's task; ready once it listens (or after a few
        seconds without: the hub polls meanwhile, and the listener keeps trying)."""
        if self.settings.is_sqlite:
            return None
        self.listener = Listener(
            asyncpg_dsn(self.settings.database_url),
            [PUBLISHED_CHANNEL],
            on_notify=lambda _channel, _payload: self.wake.set(),
            # Catch up after every reconnect: what was published meanwhile woke nobody.
            on_connect=self.wake.set,
            name="hub",
            check_s=self.settings.listen_check_s,
            backoff_max_s=self.settings.listen_backoff_max_s,
        )
        task = asyncio.create_task(self.listener.run(), name="hub-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listener.connected.wait(), timeout=FIRST_LISTEN_WAIT_S)
        return task

    async def read(self) -> None:
        while True:
            async with self.sessionmaker() as session:
                events = (
                    await session.scalars(
                        select(OutboxEvent)
                        .where(OutboxEvent.position > self.position)
                        .order_by(OutboxEvent.position)
                        .limit(RELAY_BATCH)
                    )
                ).all()
            for event in events:
                self.fan_out(event)
            if events:
                self.position = events[-1].position or self.position
            if len(events) < RELAY_BATCH:
                return

    def fan_out(self, event: OutboxEvent) -> None:
        encoded: Item | None = None
        for column in ("senior_id", "caregiver_id", "provider_id", "district_id"):
            who = getattr(event, column)
            if who is None:
                continue
            for sub in self.subscribers.get((column, who), ()):
                if sub.cut_off:
                    continue
                encoded = encoded or item(event)
                try:
                    sub.queue.put_nowait(encoded)
                except asyncio.QueueFull:
                    # Nothing queued is dropped: the stream sends what it has, then ends, and
                    # the client resumes after the last one from the outbox.
                    sub.cut_off = True

    @contextlib.contextmanager
    def subscribe(self, key: tuple[str, uuid.UUID]) -> Any:
        sub = Subscriber(key, asyncio.Queue(maxsize=self.settings.stream_queue_size))
        self.subscribers.setdefault(key, set()).add(sub)
        metrics.SSE_SUBSCRIBERS.inc()
        try:
            yield sub
        finally:
            metrics.SSE_SUBSCRIBERS.dec()
            subs = self.subscribers.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self.subscribers[key]


# Re-checks the stream's credential: None while it is good, else the error code it now gets.
Check = Callable[[], Awaitable[str | None]]


def revoked(code: str) -> str:
    """The last event of a stream whose credential stopped working (no ``id``: the client's
    ``Last-Event-ID`` stays that of the last real event)."""
    return f"event: revoked\ndata: {json.dumps({'code': code})}\n\n"


async def stream(
    hub: Hub,
    key: tuple[str, uuid.UUID],
    last_event_id: int | None,
    check: Check | None = None,
) -> AsyncIterator[str]:
    """The body of one SSE response: ``stream.open`` (a fresh stream) or a replay from the
    outbox after ``last_event_id`` (a resumed one), then live events, with keep-alive comments
    while idle. A ``last_event_id`` beyond the outbox's head gets ``stream.reset`` (data:
    ``{"id": head, "last_event_id": what the client sent}``) and the stream goes on from the
    head: the client must re-read what it shows, since what it missed cannot be replayed.

    Every ``stream_recheck_s`` seconds ``check`` runs; once the credential fails (expired,
    revoked, account disabled) the stream sends ``revoked`` (data: ``{"code": the 401's
    code}``) and ends."""
    with hub.subscribe(key) as sub:
        yield f"retry: {hub.settings.stream_retry_ms}\n\n"
        sent = hub.position if last_event_id is None else last_event_id
        if last_event_id is None:
            # A first event with the stream's position: a client that reconnects before
            # anything happened to it still resumes from here, missing nothing.
            yield f"id: {sent}\nevent: stream.open\ndata: {json.dumps({'id': sent})}\n\n"
        if last_event_id is not None:
            async with hub.sessionmaker() as session:
                head = await session.scalar(
                    select(func.coalesce(func.max(OutboxEvent.position), 0))
                )
            if head is not None and last_event_id > head:
                # An id the server never gave (a restored backup, another deployment): waiting
                # for positions past it would be silence for ever. Say so, with the head's id,
                # so the client re-reads its state, and carry on from the head.
                sent = head
                data = {"id": head, "last_event_id": last_event_id}
                yield f"id: {head}\nevent: stream.reset\ndata: {json.dumps(data)}\n\n"
            column = getattr(OutboxEvent, key[0])
            while True:
                async with hub.sessionmaker() as session:
                    page = (
                        await session.scalars(
                            select(OutboxEvent)
                            .where(OutboxEvent.position > sent, column == key[1])
                            .order_by(OutboxEvent.position)
                            .limit(REPLAY_PAGE)
                        )
                    ).all()
                for event in page:
                    yield item(event).encode()
                    sent = event.position or sent
                if len(page) < REPLAY_PAGE:
                    break
        loop = asyncio.get_running_loop()
        keepalive_s, recheck_s = hub.settings.stream_keepalive_s, hub.settings.stream_recheck_s
        next_check = loop.time() + recheck_s
        last_write = loop.time()
        while True:
            if sub.cut_off and sub.queue.empty():
                return  # fell too far behind: the client resumes from the outbox
            if check is not None and loop.time() >= next_check:
                code = await check()
                if code is not None:
                    yield revoked(code)
                    return
                next_check = loop.time() + recheck_s
            wake = last_write + keepalive_s
            if check is not None:
                wake = min(wake, next_check)
            try:
                next_item = await asyncio.wait_for(
                    sub.queue.get(), timeout=max(0.0, wake - loop.time())
                )
            except TimeoutError:
                if loop.time() >= last_write + keepalive_s:
                    yield ": keep-alive\n\n"
                    last_write = loop.time()
                continue
            if next_item.position <= sent:
                continue  # already sent by the replay
            sent = next_item.position
            yield next_item.encode()
            last_write = loop.time()
