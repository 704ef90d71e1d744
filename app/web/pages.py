"""Page routes: as thin as API routes. Each renders a shell that its script makes live through
the public API (``/v1``) and the event stream, with the same services behind them."""

import hashlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import NowDep, ReadSessionDep, SessionDep, SettingsDep
from app.errors import AppError, Forbidden, TooManyRequests
from app.models import Account, Role
from app.services import limits, sessions
from app.web import i18n

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

# Each page and the role it is for.
PAGES = {"app": Role.senior, "care": Role.caregiver, "ops": Role.operator}

# Scripts, styles and data only from this origin; no framing; no inline script.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)

router = APIRouter(include_in_schema=False)


@cache
def _static_version(path: str) -> str:
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    """A static file's URL with its content hash, so a new release is never served stale."""
    return f"/static/{path}?v={_static_version(path)}"


@cache
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = static_url
    return env


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page in the request's language, with the security headers every page carries."""
    lang = i18n.pick(request)
    html = (
        _environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            path=request.url.path,
            texts=i18n.script_texts(lang),
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE, i18n.pick(request), max_age=365 * 86_400, samesite="lax"
        )
    return response


_TARGETS = frozenset(f"/{name}" for name in PAGES)


def _safe_next(target: str) -> str:
    """Only our own pages after log-in: exactly ``/app``, ``/care`` or ``/ops`` (never an open
    redirect such as ``//app``)."""
    return target if target in _TARGETS else "/"


def _refuse_cross_site(request: Request) -> None:
    if not sessions.same_origin(request.headers):
        raise Forbidden("Use the page's own form.", code="cross_site")


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    return render(request, "home.html")


def _page(name: str, role: Role) -> Callable[..., Any]:
    async def page(
        request: Request, read: ReadSessionDep, settings: SettingsDep, now: NowDep
    ) -> HTMLResponse:
        found = await sessions.account_of(read, request.cookies.get(sessions.COOKIE_NAME), now=now)
        if found is None or found[0].role is not role:
            return render(
                request,
                "login.html",
                page=name,
                role=role.value,
                wrong_role=found is not None,
                error=None,
                login_value="",
            )
        account, session_id = found
        return render(
            request,
            f"{name}.html",
            page=name,
            me=account,
            csrf=sessions.csrf_for(settings, session_id),
        )

    page.__name__ = f"{name}_page"
    return page


for _name, _role in PAGES.items():
    router.add_api_route(f"/{_name}", _page(_name, _role), methods=["GET"])


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=status.HTTP_303_SEE_OTHER)


@router.post("/login")
async def login(
    request: Request,
    login: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """The pages' log-in form (works without JavaScript): a cookie session, then the page.
    Only from our own page (a foreign site must not log a phone into its own account), and a
    session the browser held before ends."""
    _refuse_cross_site(request)
    target = _safe_next(next)
    try:
        async with limits.guard_login(request, settings, login=login, now=now):
            account: Account = await sessions.check_password(read, login=login, password=password)
    except AppError as error:
        name = target.strip("/")
        page = render(
            request,
            "login.html",
            status_code=error.status_code,
            page=name or "app",
            role=PAGES.get(name, Role.senior).value,
            wrong_role=False,
            error=error.code,
            login_value=login,
        )
        if isinstance(error, TooManyRequests):
            page.headers["Retry-After"] = str(error.retry_after_s)
        return page
    previous = request.cookies.get(sessions.COOKIE_NAME)
    if previous:
        await sessions.close(session, previous, now=now)
    opened = await sessions.open_session(session, settings, account, now=now)
    response = _redirect(target)
    response.set_cookie(sessions.COOKIE_NAME, opened.token, **sessions.cookie_options(settings))
    return response


@router.post("/logout")
async def logout(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Ends the page's session, from our own page only (SameSite cookies and the browser's
    ``Sec-Fetch-Site`` keep other sites out; no token to go stale in an old tab)."""
    _refuse_cross_site(request)
    token = request.cookies.get(sessions.COOKIE_NAME)
    if token:
        await sessions.close(session, token, now=now)
    response = _redirect(_safe_next(next))
    response.delete_cookie(sessions.COOKIE_NAME, **sessions.cookie_options(settings, clearing=True))
    return response


@router.get("/lang/{lang}")
async def language(lang: str, next: str = "/") -> Response:
    """Switch the pages' language (a cookie), then back to the page."""
    response = _redirect(quote(_safe_next(next)))
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=365 * 86_400, samesite="lax")
    return response
