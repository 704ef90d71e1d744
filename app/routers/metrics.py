"""``/metrics``: Prometheus text format, for the operators' monitoring (not part of the API)."""

import asyncio
import hmac
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client.metrics_core import Metric

from app import logs, metrics
from app.deps import SettingsDep
from app.errors import Unauthorized

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

# A scrape answers in time even when the database does not: the database figures are left out.
DATABASE_WAIT_S = 2.0


async def _database_families(request: Request) -> list[Metric]:
    async def read() -> list[Metric]:
        async with request.app.state.read_sessionmaker() as session:
            return await metrics.database_families(session, now=datetime.now(UTC))

    try:
        return await asyncio.wait_for(read(), timeout=DATABASE_WAIT_S)
    except Exception as exc:
        log.warning("metrics left out the database figures: %s", logs.describe_exception(exc))
        return []


@router.get("/metrics", include_in_schema=False)
async def scrape(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Every metric of every process of this deployment (see ``app/metrics.py``); needs
    ``Authorization: Bearer <DOORSTEP_METRICS_TOKEN>`` when that setting is set."""
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            raise Unauthorized("Metrics need the metrics token.", code="invalid_metrics_token")
    families = await _database_families(request)
    return Response(metrics.render(families), media_type=metrics.CONTENT_TYPE)
