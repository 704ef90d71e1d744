from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from app.deps import (
    CredentialDep,
    NowDep,
    PrincipalDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
)
from app.errors import Unauthorized
from app.models import Account
from app.schemas.auth import Me, PasswordChangeIn, RefreshIn, SessionIn, SessionOut, Token
from app.schemas.common import PROBLEM_RESPONSES, RATE_LIMITED
from app.services import accounts, limits, refresh, sessions

router = APIRouter(prefix="/auth", tags=["auth"], responses=PROBLEM_RESPONSES)


@router.post(
    "/token",
    summary="Log in (OAuth2 password flow)",
    responses=RATE_LIMITED,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {"username": "13900000001", "password": "doorstep-demo"}
                }
            }
        }
    },
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Token:
    """Seniors and caregivers log in with their phone number; operators with their login.
    Returns an access token (``DOORSTEP_ACCESS_TOKEN_TTL_MINUTES``) and a refresh token to
    trade at ``POST /v1/auth/refresh``. Repeated failures back off (429 with ``Retry-After``; README, "Limits")."""
    async with limits.guard_login(request, settings, login=form.username, now=now):
        account = await sessions.check_password(
            session, login=form.username, password=form.password
        )
    async with request.app.state.sessionmaker.begin() as write:
        return await refresh.issue(
            write, settings, await write.get_one(Account, account.id), now=now
        )


@router.get("/me", summary="Who am I")
async def me(principal: PrincipalDep, session: SessionDep) -> Me:
    return Me.model_validate(await accounts.get_account(session, principal))


def _set_cookie(response: Response, settings: SettingsDep, opened: sessions.Opened) -> SessionOut:
    response.set_cookie(sessions.COOKIE_NAME, opened.token, **sessions.cookie_options(settings))
    response.headers["Cache-Control"] = "no-store"
    return SessionOut(
        account_id=opened.account.id,
        role=opened.account.role,
        display_name=opened.account.display_name,
        csrf_token=opened.csrf_token,
        expires_at=opened.expires_at,
    )


def _cookie(request: Request) -> str:
    token = request.cookies.get(sessions.COOKIE_NAME)
    if not token:
        raise Unauthorized("Please log in.", code="not_authenticated")
    return token


@router.post(
    "/session",
    status_code=status.HTTP_201_CREATED,
    summary="Log in a browser page",
    responses=RATE_LIMITED,
)
async def open_session(
    data: SessionIn,
    request: Request,
    response: Response,
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> SessionOut:
    """Sets an HttpOnly ``doorstep_session`` cookie (SameSite=Lax; Secure outside local
    development) that keeps the page logged in while it is used at least every
    ``web_session_idle_days``, for at most ``web_session_max_days``."""
    async with limits.guard_login(request, settings, login=data.login, now=now):
        account = await sessions.check_password(read, login=data.login, password=data.password)
    opened = await sessions.open_session(session, settings, account, now=now)
    previous = request.cookies.get(sessions.COOKIE_NAME)
    if previous:  # the browser's earlier session ends: one log-in, one session
        await sessions.close(session, previous, now=now)
    return _set_cookie(response, settings, opened)


@router.post("/session/refresh", summary="Refresh a browser session")
async def refresh_session(
    request: Request,
    response: Response,
    _: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> SessionOut:
    """A new cookie token and CSRF token for the same session, its idle expiry renewed; the
    old token stops working at once."""
    opened = await sessions.rotate(session, settings, _cookie(request), now=now)
    return _set_cookie(response, settings, opened)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Log out a browser page")
async def close_session(
    request: Request, _: PrincipalDep, session: SessionDep, settings: SettingsDep, now: NowDep
) -> Response:
    """Ends the session: its cookie stops working at once, on every request and page."""
    await sessions.close(session, _cookie(request), now=now)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(sessions.COOKIE_NAME, **sessions.cookie_options(settings, clearing=True))
    return response


@router.post("/password", summary="Change my password", responses=RATE_LIMITED)
async def change_password(
    data: PasswordChangeIn,
    request: Request,
    principal: PrincipalDep,
    credential: CredentialDep,
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Token:
    """Checks ``current_password`` (wrong: the log-in's generic 401 ``bad_credentials``, and it
    counts towards the log-in back-off), sets ``new_password``, and ends every other token and
    cookie session of the account at once (open event streams within ``stream_recheck_s``).
    Returns a new access token; a page's own cookie session stays logged in."""
    login = (await accounts.get_account(session, principal)).login
    # End the request's transaction before the slow part: Argon2 and the back-off counters
    # (written in a unit of work of their own) must not wait behind its write lock (SQLite).
    await session.commit()
    async with limits.guard_login(request, settings, login=login, now=now):
        await accounts.check_current_password(read, principal.id, data.current_password)
    keep = credential.value if credential is not None and credential.kind == "cookie" else None
    return await accounts.set_password(
        session, settings, principal.id, data.new_password, now=now, keep_cookie=keep
    )


@router.post("/refresh", summary="Trade a refresh token for a new pair")
async def refresh_token(
    data: RefreshIn, request: Request, settings: SettingsDep, now: NowDep
) -> Token:
    """A new access token and refresh token; the one sent is retired at once. A retired refresh
    token sent again means it was copied: every token of that log-in is revoked (its access
    tokens too) and the answer is 401 ``invalid_refresh_token``, as for an unknown, expired or
    revoked one."""
    async with request.app.state.sessionmaker.begin() as write:
        outcome = await refresh.rotate(write, settings, data.refresh_token, now=now)
        if isinstance(outcome, Token):
            return outcome
        await refresh.end_family(write, outcome, now=now)
    raise Unauthorized(
        "The refresh token is invalid, used or expired; please log in again.",
        code="invalid_refresh_token",
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Log out a bearer client")
async def logout(data: RefreshIn, request: Request, now: NowDep) -> Response:
    """Ends the log-in the refresh token belongs to: its refresh tokens and access tokens stop
    working at once (open streams within ``stream_recheck_s``). An unknown token is a no-op."""
    async with request.app.state.sessionmaker.begin() as write:
        family = await refresh.family_of(write, data.refresh_token)
        if family is not None:
            await refresh.end_family(write, family, now=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
