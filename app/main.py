"""The application factory."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app import metrics
from app.config import MissingSecret, Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.middleware import BodyLimit, InFlight, RequestContext
from app.routers import (
    admin,
    auth,
    caregivers,
    catalogue,
    docs,
    events,
    health,
    offers,
    ops,
    providers,
    seniors,
)
from app.routers import metrics as metrics_route
from app.stream import Hub
from app.web import pages

DESCRIPTION = """
Doorstep dispatches care to seniors who live at home: meal delivery, cleaning, bathing, a nurse
visit, an escort to hospital, company, or help in an emergency.

* **Seniors** (and the families who set up their phones) place, follow, cancel and rate orders,
  and press SOS.
* **Caregivers** go on duty, report where they are, and check in and out at the senior's door;
  their **provider** organisations' systems follow their work with an API key (`X-API-Key`).
* **Operators** watch their district's live queue and step in by hand.

Apps log in at `POST /v1/auth/token` (OAuth2 password flow) and send
`Authorization: Bearer <token>`; the pages (`/app`, `/care`, `/ops`) use a cookie session from
`POST /v1/auth/session` and send its CSRF token in `X-CSRF-Token` on every change.
Every error is `application/problem+json` with `type`, `title`, `status`, `detail` and a stable
`code`. Times are ISO 8601 with an offset (stored as UTC); distances in metres; money in fen.
"""

TAGS = [
    {"name": "auth", "description": "Log in and find out who you are."},
    {"name": "catalogue", "description": "What can be ordered."},
    {"name": "seniors", "description": "Place, follow, cancel and rate orders; SOS."},
    {"name": "caregivers", "description": "Duty, position, visits, check-in and check-out."},
    {"name": "offers", "description": "Offers of orders to caregivers: accept or decline."},
    {"name": "providers", "description": "A provider organisation's view of its caregivers."},
    {"name": "operators", "description": "The district's queue; manual dispatch; registration."},
    {"name": "events", "description": "Live events (Server-Sent Events), scoped to the caller."},
    {"name": "admin", "description": "Districts and operator accounts."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API. Raises ``MissingSecret`` without ``DOORSTEP_JWT_SECRET``: no built-in key."""
    settings = settings or get_settings()
    if settings.jwt_secret is None:
        raise MissingSecret

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        metrics.instrument_engine(engine, "api")
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.read_sessionmaker = create_sessionmaker(engine, read_only=True)
        app.state.hub = Hub(app.state.read_sessionmaker, settings)
        # An API worker never dispatches (`doorstep dispatcher` does): nothing here can hold
        # a request up for a dispatch pass or a compiler.
        tasks = [asyncio.create_task(app.state.hub.run(), name="event-hub")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await engine.dispose()
            metrics.mark_process_dead()  # this worker's live gauges leave the sums

    # /docs is served by app.routers.docs, offline.
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Doorstep",
        version="0.1.0",
        summary="Virtual nursing home order dispatch.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Closed unless origins are named: the pages are same-origin and need none.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "X-API-Key",
            ],
            expose_headers=["Retry-After", "X-Request-ID", "Location"],
            max_age=600,
        )
    app.add_middleware(InFlight, limit=settings.max_in_flight)  # before reading any body
    app.add_middleware(RequestContext)  # added last: outermost, so every answer carries an id

    v1 = APIRouter(prefix="/v1")
    for module in (auth, catalogue, seniors, caregivers, offers, providers, ops, events, admin):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount(docs.STATIC_URL, docs.static_files(), name="static-offline-docs")
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    return app
