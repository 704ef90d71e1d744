"""The dispatcher bench's own arithmetic: what counts as a compile, which samples fall in which
phase, and a sampler that shows a stall as one slow sample (not hidden by a catch-up burst)."""

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Response

from app.bench.dispatcher import CacheCheck, PassRun, Samples, cache_files, pct, sample

pytestmark = pytest.mark.pure


def test_cache_files_are_numba_index_and_code_files_anywhere_below(tmp_path: Path) -> None:
    assert cache_files(tmp_path / "missing") == frozenset()
    (tmp_path / "app" / "dispatch").mkdir(parents=True)
    (tmp_path / "app" / "dispatch" / "kernel.rank-12.py311.nbi").touch()
    (tmp_path / "app" / "dispatch" / "kernel.rank-12.py311.1.nbc").touch()
    (tmp_path / "kernel.cpython-311.pyc").touch()  # Python's own cache: not a kernel
    assert cache_files(tmp_path) == {
        "app/dispatch/kernel.rank-12.py311.nbi",
        "app/dispatch/kernel.rank-12.py311.1.nbc",
    }


def test_a_new_cache_file_is_reported_as_a_compile(tmp_path: Path) -> None:
    (tmp_path / "a.nbi").touch()
    quiet = CacheCheck.start(tmp_path)
    quiet.finish()
    assert quiet.unchanged
    assert quiet.describe() == "1 files before, 1 after"

    check = CacheCheck.start(tmp_path)
    (tmp_path / "a.2.nbc").touch()  # what a compile at run time leaves behind
    check.finish()
    assert not check.unchanged
    assert check.describe() == "1 files before, 2 after (**1 new, 0 gone**)"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert pct(values, 50) == 50
    assert pct(values, 99) == 99
    assert pct(values, 100) == 100
    assert pct([7.0], 99) == 7
    assert pct([], 99) != pct([], 99)  # NaN


def test_samples_fall_in_the_phase_they_started_in() -> None:
    s = Samples("GET /healthz", at=[0.5, 1.5, 2.5, 3.5, 4.5], ms=[1, 2, 3, 4, 5])
    run = PassRun("SQLite", 10, 5, t0=0, t_dispatcher=1, t_ready=3, t_end=5, first_offer=2)
    assert run.phase(s, "baseline") == [1]
    assert run.phase(s, "pass") == [2, 3]
    assert run.phase(s, "offers") == [3]
    assert run.phase(s, "after") == [4, 5]
    s.errors.update({"503": 2, "ReadTimeout": 1, "409": 1})
    assert s.server_errors == 2


async def test_a_stall_shows_as_one_slow_sample_and_errors_are_counted() -> None:
    app = FastAPI()
    calls = 0

    @app.get("/slow-once")
    async def slow_once() -> Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            await asyncio.sleep(0.3)  # six intervals
        return Response(status_code=503 if calls == 3 else 200)

    out = Samples("GET /slow-once")
    stop = asyncio.Event()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        task = asyncio.create_task(sample(http, [("/slow-once", {})], 20.0, stop, out))
        await asyncio.sleep(0.6)
        stop.set()
        await task
    assert max(out.ms) >= 300
    assert dict(out.errors) == {"503": 1}
    # After the stall the next requests keep the interval (50 ms): no burst catching up.
    gaps = [b - a for a, b in zip(out.at, out.at[1:], strict=False)]
    assert min(gaps[2:]) >= 0.03
    assert len(out.ms) <= 2 + 0.3 / 0.05
