"""The dispatcher process's own small HTTP app: ``/healthz`` (alive), ``/readyz`` (can
dispatch: kernels loaded, claiming districts, one pass done) and, in its lifespan, the
``Dispatcher`` itself. ``doorstep dispatcher`` serves it with uvicorn."""

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app import metrics
from app.config import Settings
from app.db import create_engine, create_sessionmaker, reader_of
from app.dispatch.index import compiled_versions
from app.dispatcher.loop import Dispatcher
from app.errors import install_error_handlers, problem
from app.routers import metrics as metrics_route

DISPATCHER_POOL_TIMEOUT_S = 30.0

log = logging.getLogger("doorstep.dispatcher")


def _stop_if_failed(task: "asyncio.Task[None]") -> None:
    """The dispatcher gave up (it cannot load its kernels, say): stop the process, loudly,
    rather than answer probes for a dispatcher that is not there; its supervisor restarts it."""
    if task.cancelled() or task.exception() is None:
        return
    log.critical("the dispatcher stopped", exc_info=task.exception())
    os.kill(os.getpid(), signal.SIGTERM)


def create_probe_app(settings: Settings, *, districts: Collection[str] | None = None) -> FastAPI:
    """The dispatcher for ``districts`` (codes; None: any it can take), with its probes and
    its ``/metrics`` (the same as the API's: in multiprocess mode, every process's figures)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A pass has no client to answer: it waits for a connection rather than be shed.
        engine = create_engine(settings, pool_timeout_s=DISPATCHER_POOL_TIMEOUT_S)
        metrics.instrument_engine(engine, "dispatcher")
        sessionmaker = create_sessionmaker(engine)
        app.state.read_sessionmaker = reader_of(sessionmaker)
        dispatcher = Dispatcher(sessionmaker, settings, districts=districts)
        app.state.dispatcher = dispatcher
        task = asyncio.create_task(dispatcher.run(), name="dispatcher")
        task.add_done_callback(_stop_if_failed)
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await engine.dispose()
            metrics.mark_process_dead()

    app = FastAPI(title="Doorstep dispatcher", lifespan=lifespan, openapi_url=None)
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(metrics_route.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        dispatcher: Dispatcher = request.app.state.dispatcher
        if not dispatcher.ready.is_set():
            return problem(
                503, "not_ready", "The dispatcher is loading its kernels or claiming districts."
            )
        return JSONResponse(
            {
                "status": "ok",
                "districts": sorted(dispatcher.held.values()),
                "passes": dispatcher.passes,
                # Fixed once the kernels are loaded: it growing would mean a compile.
                "compiled_versions": compiled_versions(),
            }
        )

    return app
