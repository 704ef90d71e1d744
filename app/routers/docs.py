"""``/docs``: Swagger UI with its assets served from the installed ``fastapi-offline`` package.

Nothing is fetched from a CDN, so the page renders with no network beyond the app. The routes live
on a module-level router and read the app from the request: ``FastAPIOffline()`` defines them as
closures over each app, and FastAPI's callable-classification cache (4096 entries) then keeps every
app ever built alive — about 5 MB each, gigabytes over a test suite that builds one per test.
No ReDoc: the packaged ReDoc fetches its logo from a CDN.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static-offline-docs"
STATIC_DIR = Path(fastapi_offline.__file__).parent / "static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    app = request.app
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
        swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def static_files() -> StaticFiles:
    """The Swagger UI bundle, stylesheet and icon, to mount at :data:`STATIC_URL`."""
    return StaticFiles(directory=STATIC_DIR)
