"""The dispatcher process's own small HTTP app: ``/healthz`` (alive), ``/readyz`` (can
dispatch: kernels loaded, claiming districts, one pass done) and, in its lifespan, the
``Dispatcher`` itself. ``doorstep dispatcher`` serves it with uvicorn."""

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.dispatch.index import compiled_versions
from app.dispatcher.loop import Dispatcher
from app.errors import install_error_handlers, problem


def create_probe_app(settings: Settings, *, districts: Collection[str] | None = None) -> FastAPI:
    """The dispatcher for ``districts`` (codes; None: any it can take), with its probes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        dispatcher = Dispatcher(create_sessionmaker(engine), settings, districts=districts)
        app.state.dispatcher = dispatcher
        task = asyncio.create_task(dispatcher.run(), name="dispatcher")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await engine.dispose()

    app = FastAPI(title="Doorstep dispatcher", lifespan=lifespan, openapi_url=None)
    install_error_handlers(app)

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
