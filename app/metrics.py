"""Every Prometheus metric the service exposes, the functions that record them, and the one
rendering of ``/metrics``.

**Processes.** API workers (``doorstep serve --workers N``) and the dispatcher are separate
processes. When ``PROMETHEUS_MULTIPROC_DIR`` names a directory, prometheus-client keeps each
process's values in files there (``<kind>_<pid>.db``) and ``/metrics`` on any worker adds them
all up. The deployment sets the variable in the environment of every process that shares the
directory — processes of one host and one PID namespace (one container) — before Python
starts, because prometheus-client reads it on import. ``prepare_multiprocess_dir`` creates the
directory and removes what processes no longer running left there; every entry point may call
it (a live process's files are kept). A process whose pid a dead one had starts afresh: this
module drops files bearing its own pid when it is imported, before any value is written.
Without the variable each process has its own registry (``make run`` in one process, tests).

**Gauges** of live state (SSE subscribers, pool connections in use) are summed over the
processes that are alive: a process that exits removes its own (``mark_process_dead``), and a
scrape drops those of processes that died without exiting cleanly. Gauges read from the
database (orders by status, unpublished outbox events) are computed at scrape time by the
worker that answers, so they never depend on which process last wrote them.

Label values come from small fixed sets (methods, route templates, status classes, reason
codes): never ids, paths or free text.
"""

import contextlib
import os
import re
import weakref
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.models import Order, OrderStatus, OutboxEvent

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_DB_FILE = re.compile(r"^(?:counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The shared metrics directory, if this deployment runs in multiprocess mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def _files_by_pid(path: str | os.PathLike[str]) -> Iterator[tuple[int, Path]]:
    for file in Path(path).glob("*.db"):
        match = _DB_FILE.match(file.name)
        if match:
            yield int(match.group(1)), file


def _start_afresh() -> None:
    # Before the first metric below is defined (an unlabelled one writes its file at once,
    # and fails if the directory does not exist yet).
    path = multiprocess_dir()
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for pid, file in _files_by_pid(path):
            if pid == os.getpid():
                file.unlink(missing_ok=True)


_start_afresh()

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FIRST_OFFER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# Why the dispatcher escalated an order: its own reasons, then the engine's exclusion rules
# (``app.dispatch.constraints.Exclusion``) when one rule excluded everyone. Anything else is
# counted as "other", so a label can never carry free text.
ESCALATION_REASONS = frozenset(
    {
        "rounds_exhausted",  # nobody accepted after max_offer_rounds
        "window_at_risk",  # another round would miss the visit's latest start
        "all_asked",  # everyone who could take it was asked already
        "outbid",  # the batch gave everyone who could take it another order
        "nobody_on_duty",  # no caregiver of the district is on duty with a position
        "no_candidate",  # several rules together excluded everyone
        "busy",  # everyone who could take it holds another offer
        "no_position",  # nobody on duty has reported a position
        "engine_error",  # planning the order failed: an operator places it
        "response_target",  # an emergency's response target is at risk
        "off_duty",
        "blocked",
        "gender",
        "skill",
        "certificate",
        "radius",
        "stale_position",
        "shift",
        "reachable",
        "daily_cap",
        "other",
    }
)
DISPATCH_PASS_KINDS = frozenset({"full", "emergency", "batch", "relay"})
PROCESS_KINDS = frozenset({"api", "dispatcher"})

HTTP_REQUEST_DURATION = Histogram(
    "doorstep_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (event streams excluded).",
    ["method", "route", "status_class"],
    buckets=REQUEST_BUCKETS,
)
DISPATCH_PASS_DURATION = Histogram(
    "doorstep_dispatch_pass_duration_seconds",
    "How long one dispatcher pass took, by kind (full, emergency, batch, relay).",
    ["kind"],
    buckets=PASS_BUCKETS,
)
ORDER_TO_FIRST_OFFER = Histogram(
    "doorstep_order_to_first_offer_seconds",
    "From an as-soon-as-possible order's placement to its first offer (emergencies excluded).",
    buckets=FIRST_OFFER_BUCKETS,
)
SOS_TO_FIRST_OFFER = Histogram(
    "doorstep_sos_to_first_offer_seconds",
    "From an emergency's (SOS) placement to its first offers.",
    buckets=FIRST_OFFER_BUCKETS,
)
OFFERS_EXPIRED = Counter(
    "doorstep_offers_expired", "Offers that expired unanswered (exposed as _total)."
)
ESCALATIONS = Counter(
    "doorstep_escalations",
    "Orders the dispatcher escalated to the operators, by reason code (exposed as _total).",
    ["reason"],
)
SSE_SUBSCRIBERS = Gauge(
    "doorstep_sse_subscribers",
    "Open event streams (Server-Sent Events), over the live processes.",
    multiprocess_mode="livesum",
)
OUTBOX_LAG = Histogram(
    "doorstep_outbox_lag_seconds",
    "From an outbox event's creation (in its transaction) to its publication by the relay.",
    buckets=LAG_BUCKETS,
)
DB_POOL_IN_USE = Gauge(
    "doorstep_db_pool_connections_in_use",
    "Database connections checked out of the pool, by process kind, over the live processes.",
    ["process"],
    multiprocess_mode="livesum",
)
LISTEN_RECONNECTS = Counter(
    "doorstep_listen_reconnects",
    "Times a LISTEN connection was lost and opened again, by listener (exposed as _total).",
    ["listener"],
)
OVERLOADED = Counter(
    "doorstep_overloaded_responses",
    "Requests answered 503 because the database was saturated, by code (exposed as _total).",
    ["code"],
)


# --- recording sites ---------------------------------------------------------------------


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One HTTP request (``app.middleware.RequestContext``)."""
    HTTP_REQUEST_DURATION.labels(method, route, f"{status // 100}xx").observe(seconds)


def observe_dispatch_pass(seconds: float, kind: str = "full") -> None:
    """One dispatcher pass of ``kind`` (full, emergency, batch, relay; others count as full)."""
    DISPATCH_PASS_DURATION.labels(kind if kind in DISPATCH_PASS_KINDS else "full").observe(
        max(seconds, 0.0)
    )


def observe_first_offer(placed_at: datetime, offered_at: datetime, *, emergency: bool) -> None:
    """An order's first offer went out (call once per order, after the offer committed; not
    for scheduled orders, which are offered hours ahead by design)."""
    seconds = max((offered_at - placed_at).total_seconds(), 0.0)
    (SOS_TO_FIRST_OFFER if emergency else ORDER_TO_FIRST_OFFER).observe(seconds)


def count_offers_expired(count: int = 1) -> None:
    """Offers expired unanswered (after the expiry committed)."""
    if count > 0:
        OFFERS_EXPIRED.inc(count)


def count_escalation(reason: str) -> None:
    """An order escalated (after the escalation committed), by reason code: one of
    ``ESCALATION_REASONS``, anything else counts as "other"."""
    ESCALATIONS.labels(reason if reason in ESCALATION_REASONS else "other").inc()


def observe_outbox_lag(seconds: Iterable[float]) -> None:
    """Events published by the relay: how long each waited (``app.stream``)."""
    for value in seconds:
        OUTBOX_LAG.observe(max(value, 0.0))


def count_listen_reconnect(listener: str) -> None:
    LISTEN_RECONNECTS.labels(listener).inc()


def count_overloaded(code: str) -> None:
    OVERLOADED.labels(code).inc()


# --- the connection pool -----------------------------------------------------------------

_engines: dict[str, weakref.WeakSet[Engine]] = {}


def _in_use(process: str, *, returning: int = 0) -> None:
    total = sum(getattr(e.pool, "checkedout", lambda: 0)() for e in _engines.get(process, ()))
    DB_POOL_IN_USE.labels(process).set(max(total - returning, 0))


def instrument_engine(engine: AsyncEngine, process: str = "api") -> None:
    """Keep ``doorstep_db_pool_connections_in_use{process=…}`` current for this engine: the API
    calls it in its lifespan; the dispatcher process for its own engine with
    ``process="dispatcher"``."""
    assert process in PROCESS_KINDS, process
    sync = engine.sync_engine
    _engines.setdefault(process, weakref.WeakSet()).add(sync)

    @event.listens_for(sync, "checkout")
    def _checkout(*_: Any) -> None:
        _in_use(process)

    @event.listens_for(sync, "checkin")
    def _checkin(*_: Any) -> None:
        # Fired just before the connection goes back: the pool still counts it.
        _in_use(process, returning=1)

    _in_use(process)


# --- scrape-time figures from the database -----------------------------------------------


async def database_families(session: AsyncSession, *, now: datetime) -> list[Metric]:
    """Orders by status and the outbox's unpublished backlog, read now (every status is
    present, zero when no order has it, so series never vanish)."""
    counts = dict(
        (await session.execute(select(Order.status, func.count()).group_by(Order.status))).all()
    )
    orders = GaugeMetricFamily(
        "doorstep_orders", "Orders in each status, read from the database.", labels=["status"]
    )
    for status in OrderStatus:
        orders.add_metric([status.value], counts.get(status, 0))
    unpublished, oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxEvent.created_at)).where(
                OutboxEvent.position.is_(None)
            )
        )
    ).one()
    backlog = GaugeMetricFamily(
        "doorstep_outbox_unpublished_events",
        "Committed outbox events the relay has not published yet.",
        value=unpublished,
    )
    age = GaugeMetricFamily(
        "doorstep_outbox_oldest_unpublished_age_seconds",
        "How long the oldest unpublished outbox event has waited (0 when none).",
        value=max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0,
    )
    return [orders, backlog, age]


# --- processes and the exposition --------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiprocess_dir(path: str | os.PathLike[str]) -> Path:
    """Create the metrics directory and remove the files of processes that are no longer
    running (a previous run's values would otherwise be added to this one's). Safe to call
    from every entry point at any time: a running process's files are kept."""
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for pid, file in _files_by_pid(directory):
        if pid != os.getpid() and not _alive(pid):
            file.unlink(missing_ok=True)
    return directory


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a process's live gauges (its own at exit by default); no-op outside multiprocess
    mode. Counters and histograms stay: they are totals of what happened."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)  # type: ignore[no-untyped-call]


def _forget_dead_processes(path: str) -> None:
    # A worker killed without a clean exit leaves its live gauges behind; a scrape must not
    # count subscribers or connections of a process that no longer exists.
    pids = {pid for pid, file in _files_by_pid(path) if file.name.startswith("gauge_live")}
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


class _Fixed(Collector):
    """Families computed for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class _Process(Collector):
    """This process's registry (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


def render(extra: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text exposition: every process's metrics (or this process's), then
    ``extra`` families computed for this scrape."""
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        with contextlib.suppress(OSError):
            _forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Process())
    registry.register(_Fixed(extra))
    for process in _engines:
        _in_use(process)
    return generate_latest(registry)
