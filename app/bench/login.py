"""``doorstep bench --sections login`` (or ``python -m app.bench.login``): log-in timing.

A fresh SQLite database with one active senior and one disabled one, the app in process
(httpx, as the tests reach it) with the production Argon2 cost; ``TRIES`` log-ins through
``POST /v1/auth/token`` of each kind — an unknown phone, a registered phone with a wrong
password, a disabled account with its right password — interleaved, so that noise on the shared
machine falls on all three alike. Reported: each kind's median and the largest ratio between
two medians (the target: within 10 %, i.e. no timing tells a stranger who is registered).
"""

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from app.bench.run import Report

TRIES = 50
PASSWORD = "a-senior's-password"  # noqa: S105 (a throwaway bench account)


async def _measure(tries: int) -> dict[str, list[float]]:
    from app.config import Settings
    from app.db import Base, create_engine, create_sessionmaker
    from app.main import create_app
    from app.models import Account, District, Role
    from app.security import hash_password

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            env="test", database_url=f"sqlite+aiosqlite:///{Path(folder) / 'login.db'}"
        )
        engine = create_engine(settings)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with create_sessionmaker(engine)() as session, session.begin():
            district = District(id=uuid.uuid4(), code="bench", name="Bench", city="Xi'an")
            session.add(district)
            await session.flush()
            hashed = await hash_password(PASSWORD)
            for login, active in (("+8613900000001", True), ("+8613900000002", False)):
                session.add(
                    Account(
                        role=Role.senior,
                        login=login,
                        password_hash=hashed,
                        display_name="Bench",
                        district_id=district.id,
                        is_active=active,
                    )
                )
        await engine.dispose()

        kinds = {
            "unknown": ("13900000009", PASSWORD),
            "wrong password": ("13900000001", PASSWORD + "!"),
            "disabled": ("13900000002", PASSWORD),
        }
        times: dict[str, list[float]] = {k: [] for k in kinds}
        application = create_app(settings)
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application), base_url="http://bench"
            ) as http,
        ):
            for i in range(tries + 2):
                for kind, (login, password) in kinds.items():
                    start = time.perf_counter()
                    r = await http.post(
                        "/v1/auth/token", data={"username": login, "password": password}
                    )
                    took = time.perf_counter() - start
                    assert r.status_code == 401, r.text
                    if i >= 2:  # the first two rounds warm caches up
                        times[kind].append(took * 1000)
        return times


def section(report: "Report") -> None:
    tries = 10 if report.quick else TRIES
    times = asyncio.run(_measure(tries))
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = max(medians.values()) / min(medians.values())
    got = ", ".join(f"{k} median {m:.0f} ms" for k, m in medians.items())
    report.add(
        f"log-in timing: unknown / wrong password / disabled, {tries} tries each",
        "medians within 10 % of each other",
        f"{got}; largest ratio {ratio:.3f}",
        ratio <= 1.10,
    )


if __name__ == "__main__":
    from app.bench.run import Report

    os.environ.setdefault("DOORSTEP_LOG_LEVEL", "WARNING")
    section(Report(quick=False))
