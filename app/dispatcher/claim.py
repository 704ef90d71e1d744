"""Which districts this process dispatches.

**PostgreSQL.** One session-level advisory lock per district, ``pg_try_advisory_lock(KEY,
district)``, all held on one connection of this process's own (named
``doorstep-dispatcher:<pid>`` so an operator can see who dispatches what in
``pg_stat_activity``). If the process dies, its connection closes, the locks go with it, and
another dispatcher takes the districts on its next try (``leader_retry_s``). Several dispatchers
share a city by districts: each takes what nobody holds, optionally limited to the districts it
was given (``doorstep dispatcher --districts``). The same connection LISTENs on the outbox
channel, so commits anywhere wake this dispatcher.

**SQLite** (the embedded default) supports one dispatcher: an exclusive ``flock`` on a file beside
the database; a second dispatcher waits for it.

Two dispatchers of one district would still be safe, only wasteful: every decision locks its
order and re-checks its status.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import asyncpg_dsn, reader_of
from app.models import District

log = logging.getLogger("doorstep.dispatcher")

ADVISORY_KEY = 0x0D00_5729  # "doorstep dispatcher": the first key of every district's lock
OUTBOX_CHANNEL = "doorstep_outbox"


def district_key(district_id: uuid.UUID) -> int:
    """The second key of a district's lock: 32 bits of its id, as PostgreSQL's signed int4.
    Two districts sharing a key (about one pair in 65,000 districts) are simply always
    dispatched by the same process."""
    low = district_id.int & 0xFFFF_FFFF
    return low - (1 << 32) if low >= 1 << 31 else low


class Claim:
    """The districts held, and how to take more. Use as ``async with Claim.open(...)``."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        only: Collection[str] | None,
        wake: Callable[[], None],
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.only = set(only) if only else None
        self.wake = wake
        self.held: dict[uuid.UUID, str] = {}  # district id -> code
        self._conn: Any = None  # asyncpg connection (PostgreSQL)
        self._file: TextIO | None = None  # lock file (SQLite)
        self._turn = asyncio.Lock()  # one operation at a time on the lock connection
        self.reader = reader_of(sessionmaker)

    @contextlib.asynccontextmanager
    async def open(self) -> Any:
        """Connect (PostgreSQL) or open the lock file (SQLite); everything held is released
        on the way out."""
        try:
            if self.settings.is_sqlite:
                self._file = await asyncio.to_thread(open, self._lock_path(), "a")
            else:
                import asyncpg

                self._conn = await asyncpg.connect(
                    asyncpg_dsn(self.settings.database_url),
                    server_settings={"application_name": f"doorstep-dispatcher:{os.getpid()}"},
                )
                await self._conn.add_listener(OUTBOX_CHANNEL, lambda *_: self.wake())
            yield self
        finally:
            if self.held:
                log.info("released districts", extra={"districts": sorted(self.held.values())})
            self.held.clear()
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._conn.close(), timeout=5)
                if not self._conn.is_closed():
                    self._conn.terminate()
                self._conn = None
            if self._file is not None:
                self._file.close()  # releases the flock
                self._file = None

    def alive(self) -> bool:
        """False once the lock connection is gone (then nothing is held any more)."""
        if self._conn is not None:
            return not self._conn.is_closed()
        return self._file is not None

    async def lost(self) -> None:
        """Return once the lock connection is lost: closed, or not answering ``SELECT 1``
        within ``listen_check_s`` (PostgreSQL; SQLite's lock file is never lost while the
        process lives). The check and the lock attempts take turns on the connection: asyncpg
        runs one operation at a time, and a clash is no reason to let go of every district."""
        conn = self._conn
        if conn is None:
            await asyncio.Event().wait()
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        check_s = self.settings.listen_check_s
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), timeout=check_s)
            if closed.is_set() or conn.is_closed():
                return
            try:
                async with self._turn:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=check_s)
            except Exception as exc:
                log.warning(
                    "the lock connection stopped answering", extra={"error": type(exc).__name__}
                )
                return

    async def take(self) -> list[str]:
        """Take every district this process may dispatch that nobody holds; the codes taken."""
        async with self.reader() as session:
            districts = (await session.execute(select(District.id, District.code))).all()
        wanted = [(i, c) for i, c in districts if self.only is None or c in self.only]
        taken = []
        for district_id, code in wanted:
            if district_id in self.held:
                continue
            if await self._try(district_id):
                self.held[district_id] = code
                taken.append(code)
        if taken:
            log.info("took districts", extra={"districts": taken})
        return taken

    async def _try(self, district_id: uuid.UUID) -> bool:
        if self._file is not None:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
        async with self._turn:
            held: bool = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", ADVISORY_KEY, district_key(district_id)
            )
        return held

    def _lock_path(self) -> Path:
        database = make_url(self.settings.database_url).database or "doorstep.db"
        path = Path(f"{database}.dispatcher.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
