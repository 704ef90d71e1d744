"""``doorstep bench --sections dispatcher``: the figures issue 9 asks of the dispatcher process.

- **Cold start.** Compiling the kernels from nothing: ``doorstep warm-up`` into an empty
  ``NUMBA_CACHE_DIR`` (what a fresh clone's ``make install`` and the image build pay, once).
  A warm start, the cache filled: ``doorstep run --demo`` (what ``make run`` runs) on a freshly
  migrated and seeded demo database, from the process's start to the API's ``/readyz``; then
  the demo senior logs in and presses SOS, and the offer table is watched for its first offer.
  A fresh clone's cold start to first dispatch is the two together (the compile, then a warm
  start); ``shared/tools/cold-sos-check`` measures it end to end from a clone.
- **The API during a dispatch pass.** A district with 2,000 pending ASAP orders and 1,000
  caregivers on duty, written before any process starts; the API (``doorstep serve``, one
  worker) sampled at a fixed rate with no dispatcher (the baseline), then while a
  ``doorstep dispatcher`` starts and makes its first full pass over them (it says ``/readyz``
  200 only once that pass is done).
- **Compile events.** Each dispatcher's compiled kernel versions (its ``/readyz``) when it is
  ready and at the end, and numba's cache files before and after each part: a compile at run
  time would change either (a frozen kernel raises instead of compiling, so the first cannot
  grow unless freezing broke).

Every process runs in a session (a process group) of its own with its output in a temporary
file, and is stopped on the way out (SIGTERM to the group, SIGKILL after 20 s) whatever happened.
Progress goes to stderr: the section runs for minutes.
"""

import asyncio
import contextlib
import math
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.bench.run import Report

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from app.cli import main; main()"]
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/doorstep_bench_disp"
DEMO_SENIOR = "13900000001"
DEMO_PASSWORD = "doorstep-demo"  # noqa: S105 (the README's demo account)
STOP_GRACE_S = 20.0
SOS_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 900.0
SOS_TARGET_S = 2.0  # issue 9: "as soon as /readyz is ready, an SOS ...: first offer within 2 s"
HEALTHZ_TARGET_MS = 100.0  # issue 9: "/healthz p99 ≤ 100 ms throughout"


def progress(text: str) -> None:
    print(f"[bench dispatcher] {text}", file=sys.stderr, flush=True)


# -- numba's cache ---------------------------------------------------------------------------


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where a process with this environment keeps the compiled kernels: ``NUMBA_CACHE_DIR``,
    else ``__pycache__`` beside the kernels' source."""
    given = env.get("NUMBA_CACHE_DIR")
    return Path(given) if given else ROOT / "app" / "dispatch" / "__pycache__"


def cache_files(folder: Path) -> frozenset[str]:
    """numba's cache files under ``folder`` (index ``.nbi`` and machine code ``.nbc``), as paths
    relative to it; empty if the folder does not exist."""
    if not folder.is_dir():
        return frozenset()
    return frozenset(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")
    )


@dataclass
class CacheCheck:
    """numba's cache files before and after a part of the bench: any change is a compile."""

    folder: Path
    before: frozenset[str]
    after: frozenset[str] = frozenset()

    @classmethod
    def start(cls, folder: Path) -> "CacheCheck":
        return cls(folder, cache_files(folder))

    def finish(self) -> None:
        self.after = cache_files(self.folder)

    @property
    def unchanged(self) -> bool:
        return self.before == self.after

    def describe(self) -> str:
        """``14 files before, 14 after`` (and what changed, if anything did)."""
        text = f"{len(self.before)} files before, {len(self.after)} after"
        gained, lost = len(self.after - self.before), len(self.before - self.after)
        if gained or lost:
            text += f" (**{gained} new, {lost} gone**)"
        return text


# -- latency samples -------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Samples:
    """One endpoint's requests: when each started (wall clock, s) and how long it took (ms)."""

    path: str
    at: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # status code or exception name

    def between(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the requests started in ``[start, end)``."""
        return [ms for at, ms in zip(self.at, self.ms, strict=True) if start <= at < end]

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.errors.items() if code.startswith("5"))


def figures(ms: Sequence[float]) -> str:
    """``p50 a, p99 b, max c ms (n=k)`` of latencies in milliseconds."""
    if not ms:
        return "no samples"
    return (
        f"p50 {statistics.median(ms):.1f}, p99 {pct(ms, 99):.1f}, max {max(ms):.1f} ms "
        f"(n={len(ms)})"
    )


def ratio(loaded: Sequence[float], baseline: Sequence[float], q: float) -> str:
    """How many times the baseline's ``q``-th percentile the loaded one is, as ``1.3x``."""
    if not loaded or not baseline or pct(baseline, q) <= 0:
        return "n/a"
    return f"{pct(loaded, q) / pct(baseline, q):.1f}x"


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """A ``doorstep`` command in a process group of its own, its stdout and stderr in a
    temporary file; ``stop`` ends the whole group."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.name = args[0]
        fd, path = tempfile.mkstemp(prefix=f"doorstep-bench-{self.name}-", suffix=".log")
        self.path = Path(path)
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 (our own command line)
                [*CLI, *args],
                env=dict(env),
                cwd=ROOT,
                start_new_session=True,
                stdout=fd,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def output(self) -> str:
        """What it has written so far (read through a handle of our own: the child's offset
        in the file is left alone)."""
        try:
            return self.path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, chars: int = 2000) -> str:
        return self.output()[-chars:]

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # The group may outlive its leader (`doorstep run`'s children): end what is left.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.path.unlink(missing_ok=True)


@contextlib.contextmanager
def children() -> Iterator[list[Child]]:
    """Collect the children started inside; every one is stopped on the way out."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            child.stop()


def run_command(args: Sequence[str], env: Mapping[str, str], timeout: float = 1800) -> float:
    """Run a ``doorstep`` command to its end in a group of its own; seconds it took. Raises
    RuntimeError with its output's tail if it fails."""
    with tempfile.TemporaryFile("w+") as log:
        started = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 (our own command line)
            [*CLI, *args],
            env=dict(env),
            cwd=ROOT,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        took = time.monotonic() - started
        if status != 0:
            log.seek(0)
            raise RuntimeError(f"doorstep {' '.join(args)} failed ({status}): {log.read()[-2000:]}")
        return took


async def wait_ready(
    http: httpx.AsyncClient,
    url: str,
    child: Child,
    within_s: float = READY_TIMEOUT_S,
    status: Callable[[], Awaitable[str]] | None = None,
) -> tuple[float, dict[str, Any]]:
    """Poll ``url`` (a ``/readyz``) until it answers 200; (seconds since the child started, its
    JSON body). Every 10 s says on stderr how long it has waited (and ``status()``). Raises
    RuntimeError if the child exits or the time runs out."""
    said = time.monotonic()
    while time.monotonic() - child.started < within_s:
        with contextlib.suppress(httpx.HTTPError):
            r = await http.get(url, timeout=2)
            if r.status_code == 200:
                return time.monotonic() - child.started, r.json()
        if child.exited():
            raise RuntimeError(f"{child.name} exited: {child.tail()}")
        if time.monotonic() - said >= 10:
            extra = f"; {await status()}" if status is not None else ""
            progress(f"waiting for {child.name} ({time.monotonic() - child.started:.0f} s{extra})")
            said = time.monotonic()
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{child.name} not ready within {within_s:.0f} s: {child.tail()}")


# The bench's services sign with a key of their own, made at random per run (no constant key).
JWT_SECRET = secrets.token_urlsafe(48)


def service_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of the bench's ``doorstep`` commands: its database and its own key."""
    return {**os.environ, "DOORSTEP_DATABASE_URL": url, "DOORSTEP_JWT_SECRET": JWT_SECRET, **extra}


# -- databases -------------------------------------------------------------------------------


@dataclass
class Database:
    label: str  # "SQLite", "PostgreSQL"
    url: str


def postgres_ok(url: str, report: Report) -> bool:
    """Whether the bench's PostgreSQL database can be had (created if missing)."""
    from app.db import ensure_database

    try:
        asyncio.run(ensure_database(url))
    except Exception as exc:  # no server: the SQLite figures still stand
        report.note(f"dispatcher: PostgreSQL parts skipped ({type(exc).__name__}: {exc})")
        return False
    return True


def reset(db: Database) -> float:
    """An empty, migrated database (SQLite: a new file; PostgreSQL: a new public schema);
    seconds the migration took."""
    from sqlalchemy.engine import make_url

    if db.url.startswith("sqlite"):
        path = Path(make_url(db.url).database or "")
        for suffix in ("", "-wal", "-shm", "-journal", ".dispatcher.lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        from sqlalchemy import text

        from app.config import Settings
        from app.db import create_engine

        async def drop() -> None:
            engine = create_engine(Settings(database_url=db.url))
            try:
                async with engine.begin() as conn:
                    await conn.execute(text("DROP SCHEMA public CASCADE"))
                    await conn.execute(text("CREATE SCHEMA public"))
            finally:
                await engine.dispose()

        asyncio.run(drop())
    return run_command(["migrate"], service_env(db.url))


def read_only(url: str) -> tuple[AsyncEngine, AsyncEngine]:
    """An engine for ``url`` and its read-only view to connect through: on SQLite the bench's
    looks at the tables then take no write lock (``BEGIN``, not ``BEGIN IMMEDIATE``), so they
    never hold up the processes being measured. Dispose of the first."""
    from app.config import Settings
    from app.db import READ_ONLY, create_engine

    engine = create_engine(Settings(database_url=url))
    return engine, engine.execution_options(**{READ_ONLY: True})


# -- 1. cold start ---------------------------------------------------------------------------


@dataclass
class ColdCompile:
    compile_s: float
    files: int
    load_s: float  # a second warm-up from the cache just filled
    files_after_load: int


def compile_from_nothing() -> ColdCompile:
    """``doorstep warm-up`` into a new, empty numba cache, then once more from it."""
    folder = Path(tempfile.mkdtemp(prefix="doorstep-numba-"))
    try:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(folder)}
        progress("compiling the kernels from nothing (doorstep warm-up, empty NUMBA_CACHE_DIR)")
        compile_s = run_command(["warm-up"], env)
        files = len(cache_files(folder))
        progress(f"compiled in {compile_s:.1f} s ({files} cache files); loading them again")
        load_s = run_command(["warm-up"], env)
        return ColdCompile(compile_s, files, load_s, len(cache_files(folder)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class WarmStart:
    prepare_s: float  # migrate + seed-demo (before the clock starts)
    ready_s: float  # `doorstep run` started -> API /readyz 200
    dispatcher_s: float | None  # `doorstep run` started -> its API started (dispatcher ready)
    login_s: float
    sos_offer_s: float | None  # SOS sent -> its first offer committed (seen in the table)
    offer_lag_s: float | None  # SOS sent -> the offer's own created_at (the dispatcher's clock)

    @property
    def total_s(self) -> float | None:
        """Process start to the SOS's first offer, the SOS sent as soon as the API was ready."""
        if self.sos_offer_s is None:
            return None
        return self.ready_s + self.login_s + self.sos_offer_s


async def _first_offer(url: str, order_id: uuid.UUID, sent_at: float) -> tuple[float, float] | None:
    """Watch the offer table for ``order_id``'s first offer: (seconds from ``sent_at`` (wall
    clock) until it was seen committed, until its ``created_at``); None after SOS_TIMEOUT_S."""
    from app.models import Offer

    engine, reader = read_only(url)
    try:
        while time.time() - sent_at < SOS_TIMEOUT_S:
            async with reader.connect() as conn:
                first = await conn.scalar(
                    select(func.min(Offer.created_at)).where(Offer.order_id == order_id)
                )
            if first is not None:
                seen = time.time() - sent_at
                return seen, first.timestamp() - sent_at
            await asyncio.sleep(0.01)
        return None
    finally:
        await engine.dispose()


def child_pids(pid: int) -> list[int] | None:
    """The pids of ``pid``'s children (Linux ``/proc``); None where that cannot be read."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return None


async def _watch_api_start(run: Child, seen: list[float]) -> None:
    """Append to ``seen`` the seconds from ``run``'s start until the supervisor starts its
    second child, the API (it does so once its dispatcher is ready)."""
    while not seen:
        pids = child_pids(run.proc.pid)
        if pids is None:
            return
        if len(pids) >= 2:
            seen.append(time.monotonic() - run.started)
            return
        await asyncio.sleep(0.01)


async def _warm_start_once(url: str, env: Mapping[str, str], prepare_s: float) -> WarmStart:
    """``doorstep run --demo`` on the freshly seeded demo database at ``url``: its start to the
    API's readiness, then the demo senior's log-in and SOS to its first offer."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_started: list[float] = []
    with children() as started:
        run = Child(["run", "--demo", "--host", "127.0.0.1", "--port", str(port)], env)
        started.append(run)
        watch = asyncio.create_task(_watch_api_start(run, api_started))
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                ready_s, _ = await wait_ready(http, f"{base}/readyz", run)
                t = time.monotonic()
                r = await http.post(
                    "/v1/auth/token", data={"username": DEMO_SENIOR, "password": DEMO_PASSWORD}
                )
                r.raise_for_status()
                token = r.json()["access_token"]
                login_s = time.monotonic() - t
                sent_at = time.time()
                r = await http.post("/v1/sos", headers={"Authorization": f"Bearer {token}"})
                r.raise_for_status()
                got = await _first_offer(url, uuid.UUID(r.json()["id"]), sent_at)
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
    return WarmStart(
        prepare_s=prepare_s,
        ready_s=ready_s,
        dispatcher_s=api_started[0] if api_started else None,
        login_s=login_s,
        sos_offer_s=None if got is None else got[0],
        offer_lag_s=None if got is None else got[1],
    )


def warm_starts(db: Database, runs: int) -> tuple[list[WarmStart], CacheCheck]:
    """``runs`` warm starts, each on a freshly migrated and seeded ``db``, and numba's cache
    over all of them."""
    env = service_env(db.url)
    cache = CacheCheck.start(cache_dir(env))
    results = []
    for i in range(runs):
        progress(f"warm start {i + 1}/{runs} on {db.label}")
        prepare_s = reset(db) + run_command(["seed-demo", "--demo"], env)
        w = asyncio.run(_warm_start_once(db.url, env, prepare_s))
        progress(
            f"  ready {w.ready_s:.2f} s, SOS to first offer "
            + ("none" if w.sos_offer_s is None else f"{w.sos_offer_s:.2f} s")
        )
        results.append(w)
    cache.finish()
    return results, cache


def _median(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.median(got):.2f} s" if got else "n/a"


def _runs(values: Sequence[float | None]) -> str:
    return ", ".join("none" if v is None else f"{v:.2f}" for v in values)


# -- 2. the API during a dispatch pass -------------------------------------------------------


@dataclass
class Crowd:
    """A district ready for a pass: who reads the API while it runs."""

    operator: str  # token
    readers: list[tuple[str, uuid.UUID]]  # (a senior's token, that senior's pending order)
    populate_s: float


async def populate(url: str, n_orders: int, n_caregivers: int) -> Crowd:
    """``n_caregivers`` on shift and on duty and ``n_orders`` seniors with one pending ASAP
    order each (placed through the order service, 200 to a transaction), all in one district
    (``live.populate``'s); no process is running yet, so nothing is dispatched."""
    import random

    from app.bench import live
    from app.config import Settings
    from app.db import create_engine, create_sessionmaker
    from app.deps import Principal
    from app.models import Role, Senior
    from app.schemas.orders import OrderIn
    from app.security import create_access_token
    from app.services import orders

    started = time.monotonic()
    settings = Settings(database_url=url, jwt_secret=JWT_SECRET)
    engine = create_engine(settings)
    try:
        sessionmaker = create_sessionmaker(engine)
        plan = live.Plan(orders=n_orders, emergencies=0, caregivers=n_caregivers)
        cast = await live.populate(sessionmaker, settings, plan)
        progress(f"  {n_caregivers} caregivers and {n_orders} seniors written")
        async with sessionmaker() as session:
            seniors = (await session.execute(select(Senior.id, Senior.district_id))).all()
        rng = random.Random(11)
        placed: list[tuple[uuid.UUID, uuid.UUID]] = []
        now = datetime.now(UTC)
        for i in range(0, len(seniors), 200):
            async with sessionmaker() as session, session.begin():
                for senior_id, district_id in seniors[i : i + 200]:
                    out, _ = await orders.place(
                        session,
                        Principal(id=senior_id, role=Role.senior, district_id=district_id),
                        OrderIn(service_code=rng.choice(live.SERVICES)),
                        settings=settings,
                        idempotency_key=None,
                        now=now,
                    )
                    placed.append((senior_id, out.id))
        progress(f"  {len(placed)} ASAP orders placed")
    finally:
        await engine.dispose()
    readers = [
        (create_access_token(settings, account_id=sid, role=Role.senior)[0], oid)
        for sid, oid in placed[:50]
    ]
    return Crowd(cast.operator, readers, time.monotonic() - started)


@dataclass
class PassRun:
    db: str
    orders: int
    caregivers: int
    populate_s: float = 0.0
    samples: list[Samples] = field(default_factory=list)
    # Wall-clock seconds: the baseline runs [t0, t_dispatcher), the pass [t_dispatcher, t_ready).
    t0: float = 0.0
    t_dispatcher: float = 0.0
    t_ready: float | None = None
    t_end: float = 0.0
    ready_s: float | None = None  # dispatcher started -> its /readyz 200 (first pass done)
    at_ready: dict[str, Any] = field(default_factory=dict)  # its /readyz then
    at_end: dict[str, Any] = field(default_factory=dict)  # and at the end
    offers: int = 0  # made by the first pass (created before /readyz said 200)
    first_offer: float | None = None  # wall clock
    last_offer: float | None = None
    decisions: Counter[str] = field(default_factory=Counter)  # of the first pass, by kind
    cache: CacheCheck | None = None
    problem: str | None = None

    def phase(self, samples: Samples, name: str) -> list[float]:
        """Latencies (ms) of one phase: ``baseline`` (no dispatcher), ``pass`` (dispatcher
        started, until its first pass was done), ``offers`` (the part of ``pass`` from its
        first offer on: the pass proper, kernels loaded) or ``after`` (its next passes)."""
        # While it runs (no end yet): up to now.
        end = self.t_ready if self.t_ready is not None else (self.t_end or time.time())
        spans = {
            "baseline": (self.t0, self.t_dispatcher),
            "pass": (self.t_dispatcher, end),
            "offers": (self.first_offer if self.first_offer is not None else end, end),
            "after": (end, self.t_end or time.time()),
        }
        return samples.between(*spans[name])


def endpoints(crowd: Crowd) -> list[tuple[str, list[tuple[str, dict[str, str]]], float]]:
    """What is sampled and how often: (label, the requests it cycles through, per second)."""
    return [
        ("GET /healthz", [("/healthz", {})], 20.0),
        (
            "GET /v1/orders/{id} (senior)",
            [
                (f"/v1/orders/{oid}", {"Authorization": f"Bearer {token}"})
                for token, oid in crowd.readers
            ],
            20.0,
        ),
        (
            "GET /v1/ops/queue?limit=20 (operator)",
            [("/v1/ops/queue?limit=20", {"Authorization": f"Bearer {crowd.operator}"})],
            5.0,
        ),
    ]


async def sample(
    http: httpx.AsyncClient,
    requests: Sequence[tuple[str, Mapping[str, str]]],
    hz: float,
    stop: asyncio.Event,
    out: Samples,
) -> None:
    """GET ``requests`` in turn, one every 1/``hz`` s, until ``stop``; one at a time, and a
    request slower than the interval delays the next rather than a burst catching up (so a
    stall shows as one slow sample, not as many fast ones after it)."""
    i = 0
    interval = 1 / hz
    due = time.monotonic()
    while not stop.is_set():
        path, headers = requests[i % len(requests)]
        i += 1
        started_at = time.time()
        started = time.perf_counter()
        try:
            r = await http.get(path, headers=dict(headers))
            if r.status_code != 200:
                out.errors[str(r.status_code)] += 1
        except httpx.HTTPError as exc:
            out.errors[type(exc).__name__] += 1
        out.at.append(started_at)
        out.ms.append((time.perf_counter() - started) * 1000)
        due += interval
        delay = due - time.monotonic()
        if delay <= 0:
            due = time.monotonic()
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)


async def _offers_so_far(url: str) -> str:
    from app.models import Offer, Order, OrderStatus

    engine, reader = read_only(url)
    try:
        async with reader.connect() as conn:
            offers = await conn.scalar(select(func.count()).select_from(Offer))
            pending = await conn.scalar(
                select(func.count()).select_from(Order).where(Order.status == OrderStatus.pending)
            )
        return f"{offers} offers so far, {pending} orders pending"
    finally:
        await engine.dispose()


async def _first_pass_figures(url: str, run: PassRun) -> None:
    """What the first pass wrote: offers and decisions made before /readyz said 200."""
    from app.models import DispatchDecision, Offer

    assert run.t_ready is not None
    until = datetime.fromtimestamp(run.t_ready, UTC)
    engine, reader = read_only(url)
    try:
        async with reader.connect() as conn:
            n, first, last = (
                await conn.execute(
                    select(func.count(), func.min(Offer.created_at), func.max(Offer.created_at))
                    .select_from(Offer)
                    .where(Offer.created_at <= until)
                )
            ).one()
            kinds = (
                await conn.execute(
                    select(DispatchDecision.kind, func.count())
                    .where(DispatchDecision.at <= until)
                    .group_by(DispatchDecision.kind)
                )
            ).all()
    finally:
        await engine.dispose()
    run.offers = int(n)
    run.first_offer = None if first is None else first.timestamp()
    run.last_offer = None if last is None else last.timestamp()
    run.decisions = Counter({str(kind): int(count) for kind, count in kinds})


async def _measure_pass(db: Database, crowd: Crowd, run: PassRun, baseline_s: float) -> None:
    """The API alone for ``baseline_s``, then with a dispatcher starting and passing once over
    everything pending, then ``baseline_s / 3`` more of its later passes; sampled throughout."""
    env = service_env(db.url, DOORSTEP_JWT_SECRET=JWT_SECRET)
    run.cache = CacheCheck.start(cache_dir(env))
    api_port, probe_port = free_port(), free_port()
    base, probe = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{probe_port}/readyz"
    sampled = endpoints(crowd)
    run.samples = [Samples(label) for label, _, _ in sampled]
    stop = asyncio.Event()
    with children() as started:
        api = Child(
            ["serve", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"], env
        )
        started.append(api)
        async with contextlib.AsyncExitStack() as stack:
            control = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
            await wait_ready(control, f"{base}/readyz", api, within_s=180)
            tasks = []
            for (_, requests, hz), out in zip(sampled, run.samples, strict=True):
                http = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=60))
                tasks.append(asyncio.create_task(sample(http, requests, hz, stop, out)))
            try:
                run.t0 = time.time()
                progress(f"  baseline: the API alone for {baseline_s:.0f} s")
                await asyncio.sleep(baseline_s)
                run.t_dispatcher = time.time()
                progress("  starting the dispatcher")
                dispatcher = Child(
                    ["dispatcher", "--host", "127.0.0.1", "--port", str(probe_port)], env
                )
                started.append(dispatcher)

                async def status() -> str:
                    healthz = run.phase(run.samples[0], "pass")
                    return (
                        f"{await _offers_so_far(db.url)}; /healthz during the pass "
                        f"{figures(healthz)}"
                    )

                try:
                    run.ready_s, run.at_ready = await wait_ready(
                        control, probe, dispatcher, status=status
                    )
                    run.t_ready = time.time()
                    progress(f"  dispatcher ready after {run.ready_s:.1f} s: {run.at_ready}")
                    await asyncio.sleep(baseline_s / 3)
                    r = await control.get(probe)
                    run.at_end = r.json() if r.status_code == 200 else {"status": r.status_code}
                except (RuntimeError, httpx.HTTPError) as exc:
                    run.problem = str(exc)[:500]
            finally:
                run.t_end = time.time()
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
    run.cache.finish()
    if run.t_ready is not None:
        await _first_pass_figures(db.url, run)


def pass_run(db: Database, n_orders: int, n_caregivers: int, baseline_s: float) -> PassRun:
    run = PassRun(db.label, n_orders, n_caregivers)
    progress(
        f"API during a dispatch pass on {db.label}: {n_orders} orders, {n_caregivers} caregivers"
    )
    reset(db)
    crowd = asyncio.run(populate(db.url, n_orders, n_caregivers))
    run.populate_s = crowd.populate_s
    asyncio.run(_measure_pass(db, crowd, run, baseline_s))
    return run


# -- the section -----------------------------------------------------------------------------


def _cold(report: Report, cold: ColdCompile) -> None:
    report.add(
        "dispatcher: compile the kernels from nothing (`doorstep warm-up`, empty "
        "`NUMBA_CACHE_DIR`)",
        "paid once: `make install`, the image build",
        f"{cold.compile_s:.1f} s, {cold.files} cache files; a second warm-up loading them "
        f"(what each dispatcher start pays, imports included): {cold.load_s:.1f} s, "
        f"{cold.files_after_load - cold.files:+d} files",
        cold.files_after_load == cold.files,
    )


def _warm(report: Report, db: Database, runs: list[WarmStart], cache: CacheCheck) -> None:
    offers = [w.sos_offer_s for w in runs]
    ok = all(s is not None and s <= SOS_TARGET_S for s in offers)
    report.add(
        f"dispatcher: warm start, {db.label}: `doorstep run --demo` started → API `/readyz` "
        "200; then the demo senior's SOS → its first offer committed",
        f"SOS → first offer ≤ {SOS_TARGET_S:.0f} s (every run)",
        f"start → ready median {_median([w.ready_s for w in runs])} (runs: "
        f"{_runs([w.ready_s for w in runs])}; of which until the dispatcher is ready (the supervisor "
        f"then starts the API): {_runs([w.dispatcher_s for w in runs])}); SOS → first offer median {_median(offers)} "
        f"(runs: {_runs(offers)}; the offer's own timestamp: "
        f"{_runs([w.offer_lag_s for w in runs])}); start → first offer, log-in included, "
        f"median {_median([w.total_s for w in runs])}; numba cache {cache.describe()}",
        ok and cache.unchanged,
    )
    report.note(
        f"dispatcher, warm start on {db.label}: each run on a fresh database (`doorstep "
        f"migrate` + `doorstep seed-demo`, median {_median([w.prepare_s for w in runs])}, not "
        f"counted); the log-in took median {_median([w.login_s for w in runs])}"
    )


def _pass(report: Report, run: PassRun) -> None:
    where = f"{run.db}, {run.orders:,} pending ASAP orders, {run.caregivers:,} caregivers on duty"
    if run.problem is not None:
        report.add(
            f"dispatcher: first pass ({where})",
            "done; the API unaffected",
            f"**failed**: {run.problem}",
            False,
        )
    for samples in run.samples:
        base, during = run.phase(samples, "baseline"), run.phase(samples, "pass")
        healthz = samples.path == "GET /healthz"
        errors = dict(samples.errors)
        report.add(
            f"dispatcher: API `{samples.path}` during the dispatcher's start and first pass "
            f"({where})",
            f"p99 ≤ {HEALTHZ_TARGET_MS:.0f} ms; no 5xx" if healthz else "no 5xx (p99: ratio)",
            f"{figures(during)}; baseline without a dispatcher {figures(base)}; p50 "
            f"{ratio(during, base, 50)}, p99 {ratio(during, base, 99)} the baseline; of which "
            f"while it wrote offers (its first to ready) {figures(run.phase(samples, 'offers'))}; "
            f"errors {errors or 'none'}",
            (pct(during, 99) <= HEALTHZ_TARGET_MS and not samples.server_errors)
            if healthz
            else not samples.server_errors,
        )
        after = run.phase(samples, "after")
        if after:
            report.note(
                f"dispatcher ({run.db}): `{samples.path}` in the {run.t_end - (run.t_ready or 0):.0f} "
                f"s after the first pass (later passes over what is still pending): "
                f"{figures(after)}"
            )
    if run.t_ready is None:
        return
    span = (
        f"{run.last_offer - run.first_offer:.1f} s from its first offer to its last"
        if run.first_offer is not None and run.last_offer is not None
        else "no offer"
    )
    to_ready = (
        f"{run.t_ready - run.first_offer:.1f} s from its first offer to ready"
        if run.first_offer is not None
        else ""
    )
    report.add(
        f"dispatcher: first pass ({where})",
        "(no target)",
        f"dispatcher started → `/readyz` 200 (kernels loaded, districts claimed, the pass "
        f"done) {run.ready_s:.1f} s; {span}, {to_ready}; {run.offers:,} offers; decisions "
        f"{dict(run.decisions) or 'none'}; data written in {run.populate_s:.0f} s (not counted)",
        None,
    )


def _compiles(report: Report, runs: list[PassRun], caches: list[tuple[str, CacheCheck]]) -> None:
    parts, ok = [], True
    for run in runs:
        at_ready = run.at_ready.get("compiled_versions")
        at_end = run.at_end.get("compiled_versions")
        same = at_ready is not None and at_ready == at_end
        ok = ok and same and run.cache is not None and run.cache.unchanged
        parts.append(
            f"{run.db} pass: compiled versions {at_ready} at ready, {at_end} at the end; numba "
            f"cache {run.cache.describe() if run.cache else 'not read'}"
        )
    for label, cache in caches:
        ok = ok and cache.unchanged
        parts.append(f"{label}: numba cache {cache.describe()}")
    report.add(
        "dispatcher: compile events while the service runs (every dispatcher and API above)",
        "0",
        ("0: " if ok else "**a compile happened or could not be ruled out**: ") + "; ".join(parts),
        ok,
    )


def section(report: Report) -> None:
    """The ``dispatcher`` section of ``doorstep bench`` (see the module docstring)."""
    quick = report.quick
    n_orders, n_caregivers = (500, 250) if quick else (2000, 1000)
    baseline_s = 8.0 if quick else 30.0
    folder = Path(tempfile.mkdtemp(prefix="doorstep-bench-disp-"))
    try:
        dbs = [Database("SQLite", f"sqlite+aiosqlite:///{folder / 'bench.db'}")]
        pg = os.environ.get("DOORSTEP_BENCH_DISP_DATABASE_URL", PG_URL)
        if postgres_ok(pg, report):
            dbs.append(Database("PostgreSQL", pg))

        cold = compile_from_nothing()
        _cold(report, cold)

        caches: list[tuple[str, CacheCheck]] = []
        medians: dict[str, float] = {}
        for db in dbs:
            runs_n = (2 if quick else 5) if db.label == "SQLite" else (1 if quick else 3)
            try:
                runs, cache = warm_starts(db, runs_n)
            except Exception as exc:  # one part failing still leaves the others' figures
                report.add(
                    f"dispatcher: warm start, {db.label}", "completes", f"**failed**: {exc}", False
                )
                continue
            _warm(report, db, runs, cache)
            caches.append((f"{db.label} warm starts", cache))
            totals = [w.total_s for w in runs if w.total_s is not None]
            if totals:
                medians[db.label] = statistics.median(totals)
        if "SQLite" in medians:
            report.add(
                "dispatcher: fresh clone, cold start to first dispatch (SQLite, `make install` "
                "then `make run`)",
                "(compile + warm start)",
                f"≈ {cold.compile_s:.0f} s compile + {medians['SQLite']:.1f} s warm start to the "
                f"SOS's first offer = {cold.compile_s + medians['SQLite']:.0f} s, dependencies' "
                "download not included (`shared/tools/cold-sos-check` measures it end to end "
                "from a clone)",
                None,
            )

        passes = []
        for db in dbs:
            try:
                run = pass_run(db, n_orders, n_caregivers, baseline_s)
            except Exception as exc:
                report.add(
                    f"dispatcher: API during a pass, {db.label}",
                    "runs",
                    f"**failed**: {exc}",
                    False,
                )
                continue
            _pass(report, run)
            passes.append(run)
        _compiles(report, passes, caches)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
