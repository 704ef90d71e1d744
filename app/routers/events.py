"""Server-Sent Events: what happens to the caller's orders, offers and visits, live."""

import re
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from app.deps import CredentialDep, PrincipalDep, get_now, recheck
from app.errors import Forbidden, Unprocessable
from app.schemas.common import PROBLEM_RESPONSES
from app.stream import Hub, audience, stream

router = APIRouter(tags=["events"], responses=PROBLEM_RESPONSES)


@router.get(
    "/events",
    summary="Live events for me (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream."}},
)
async def events(
    request: Request,
    principal: PrincipalDep,
    credential: CredentialDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this event id: nothing in between is missed.",
        ),
    ] = None,
) -> StreamingResponse:
    """A senior's own orders; a caregiver's offers and visits; a provider's caregivers'; an
    operator's district. Each event has an ``id`` (increasing); reconnect with
    ``Last-Event-ID`` to resume without gaps. An id beyond the server's newest (after a
    restore, say) gets a ``stream.reset`` event carrying the newest id: re-read your state,
    then carry on. Idle streams get a keep-alive comment. Every ``stream_recheck_s`` seconds
    the stream re-checks its credential: once it has expired or been revoked (password
    changed, logged out, account disabled) a ``revoked`` event (data: ``{"code": the 401's
    code}``) ends the stream."""
    key = audience(principal)
    if key is None:
        raise Forbidden("This account has no event stream.", code="wrong_role")
    after = None
    if last_event_id is not None:
        if not re.fullmatch(r"[0-9]{1,18}", last_event_id):
            raise Unprocessable("Last-Event-ID must be an event id.", code="bad_last_event_id")
        after = int(last_event_id)
    hub: Hub = request.app.state.hub

    async def check() -> str | None:
        if credential is None:
            return None
        async with hub.sessionmaker() as read:
            return await recheck(read, hub.settings, credential, now=get_now())

    return StreamingResponse(
        stream(hub, key, after, check),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
