"""PostgreSQL ``LISTEN`` connections that come back by themselves.

A ``LISTEN`` lives on one connection outside SQLAlchemy's pool. When that connection is
terminated (a failover, ``pg_terminate_backend``, a network cut) nothing tells the code that
waits on its notifications: it just stops hearing them. ``Listener`` notices the loss — asyncpg
calls its termination listener when the server closes the connection, and an idle connection
is checked with ``SELECT 1`` every ``check_s`` for the losses nobody announces (a half-open
TCP connection) — logs it, reconnects with a doubling back-off (``backoff_min_s`` up to
``backoff_max_s``, with jitter), and after every (re)connect calls ``on_connect`` so the owner
catches up on whatever it missed while it was deaf (notifications sent in between are lost
for good; the data they pointed at is not).

Usage (the event hub, ``app/stream.py``)::

    listener = Listener(dsn, ["doorstep_published"], on_notify=lambda channel, payload: ...,
                        on_connect=catch_up, name="hub")
    task = asyncio.create_task(listener.run())   # forever, until cancelled
    await listener.connected.wait()              # optional: the first LISTEN is in place

``until_lost(conn, check_s=…)`` is the watching part alone, for a connection whose loss means
more than a reconnect (the dispatcher's advisory-lock connection: losing it loses leadership).
"""

import asyncio
import contextlib
import inspect
import logging
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from app import logs, metrics

log = logging.getLogger("doorstep.pglisten")

BACKOFF_MIN_S = 0.1
CONNECT_TIMEOUT_S = 10.0


async def until_lost(conn: Any, *, check_s: float) -> None:
    """Return once the asyncpg connection ``conn`` is closed or stops answering (checked with
    ``SELECT 1`` after every ``check_s`` of quiet)."""
    lost = asyncio.Event()

    def closed(_conn: Any) -> None:
        lost.set()

    conn.add_termination_listener(closed)
    try:
        while not conn.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), timeout=check_s)
            if lost.is_set() or conn.is_closed():
                return
            try:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=check_s)
            except (OSError, TimeoutError):
                return
            except Exception as exc:  # asyncpg's own errors: the connection is unusable
                log.warning("connection check failed: %s", logs.describe_exception(exc))
                return
    finally:
        conn.remove_termination_listener(closed)


class Listener:
    """One asyncpg connection that LISTENs on ``channels`` and reconnects when it is lost.

    ``on_notify(channel, payload)`` is called for each notification (on the event loop, keep it
    quick); ``on_connect()`` (plain or async) after each successful LISTEN, the first
    included. The connection's ``application_name`` is ``doorstep-<name>:<pid>``, so an
    operator can find it in ``pg_stat_activity``."""

    def __init__(
        self,
        dsn: str,
        channels: Sequence[str],
        *,
        on_notify: Callable[[str, str], None],
        name: str,
        on_connect: Callable[[], Awaitable[None] | None] | None = None,
        check_s: float = 10.0,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.channels = list(channels)
        self.on_notify = on_notify
        self.name = name
        self.on_connect = on_connect
        self.check_s = check_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = max(backoff_max_s, backoff_min_s)
        self.application_name = f"doorstep-{name}:{os.getpid()}"
        # Set while the LISTEN is in place.
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.server_pid: int | None = None

    def _notified(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        self.on_notify(channel, payload)

    async def _connect(self) -> Any:
        import asyncpg

        conn = await asyncpg.connect(
            self.dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": self.application_name},
        )
        try:
            for channel in self.channels:
                await conn.add_listener(channel, self._notified)
        except BaseException:
            conn.terminate()
            raise
        return conn

    async def run(self) -> None:
        """Forever (until cancelled): connect, LISTEN, catch up, wait for the loss, again."""
        delay = self.backoff_min_s
        ever = False
        while True:
            conn = None
            try:
                conn = await self._connect()
                self.server_pid = conn.get_server_pid()
                if ever:
                    self.reconnects += 1
                    metrics.count_listen_reconnect(self.name)
                    log.info(
                        "LISTEN connection back",
                        extra={"listener": self.name, "channels": self.channels},
                    )
                else:
                    log.info("listening", extra={"listener": self.name, "channels": self.channels})
                ever = True
                delay = self.backoff_min_s
                self.connected.set()
                if self.on_connect is not None:
                    caught_up = self.on_connect()
                    if inspect.isawaitable(caught_up):
                        await caught_up
                await until_lost(conn, check_s=self.check_s)
                log.warning(
                    "LISTEN connection lost; reconnecting",
                    extra={"listener": self.name, "channels": self.channels},
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "cannot LISTEN (%s); retrying in %.1f s",
                    logs.describe_exception(exc),
                    delay,
                    extra={"listener": self.name, "channels": self.channels},
                )
            finally:
                self.connected.clear()
                self.server_pid = None
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            # Jitter: many workers that lost their connections together do not all come back
            # in the same instant.
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
            delay = min(delay * 2, self.backoff_max_s)
