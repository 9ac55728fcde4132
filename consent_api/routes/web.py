"""The residents' app and the hospital and regulator consoles: static pages from this service.

Pages are plain HTML with ES modules and CSS from ``consent_api/web`` (no build step). They hold
no data: each page calls the JSON API with the bearer token its user signed in with, so what a
page shows is exactly what the API lets that role read. Every response here carries a strict
Content-Security-Policy (``'self'`` only, no inline script or style) and is kept out of the
OpenAPI document. The two API operations only the pages need are in ``routes.web_api``.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ..auth import PlatformKeys
from ..dependencies import get_platform_keys, get_settings
from ..errors import NotFoundError
from ..settings import ApiSettings
from . import web_api

WEB_DIR: Final = Path(__file__).resolve().parent.parent / "web"
PAGES: Final = {
    "/app/": "resident.html",
    "/console/hospital": "hospital.html",
    "/console/regulator": "regulator.html",
}
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

pages = APIRouter(include_in_schema=False)

Settings = Annotated[ApiSettings, Depends(get_settings)]
Platform = Annotated[PlatformKeys, Depends(get_platform_keys)]


@cache
def static_files() -> dict[str, Path]:
    """Every file the pages may load, by URL path under ``/static/``: a fixed list, so no
    request path is ever joined onto the file system."""
    return {
        path.relative_to(WEB_DIR).as_posix(): path
        for path in sorted(WEB_DIR.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


@cache
def read_file(path: Path) -> bytes:
    """A file's bytes, read once: they ship with the package and do not change while it runs."""
    return path.read_bytes()


def render_page(name: str, settings: ApiSettings, audience: str) -> str:
    """A page with the service's public configuration in its ``<meta>`` tags."""
    text = read_file(WEB_DIR / name).decode("utf-8")
    values = {
        "audience": audience,
        "explorer": settings.explorer_tx_url or "",
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return text


def _page(name: str) -> Callable[[ApiSettings, PlatformKeys], Awaitable[HTMLResponse]]:
    async def page(settings: Settings, platform: Platform) -> HTMLResponse:
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
        return HTMLResponse(render_page(name, settings, platform.audience), headers=headers)

    return page


for _path, _name in PAGES.items():
    pages.add_api_route(_path, _page(_name), methods=["GET"], response_class=HTMLResponse)


@pages.get("/")
async def home() -> HTMLResponse:
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(read_file(WEB_DIR / "index.html").decode("utf-8"), headers=headers)


@pages.get("/app")
async def app_without_slash() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=308, headers=SECURITY_HEADERS)


@pages.get("/static/{path:path}")
async def static(path: str) -> Response:
    """A file of the pages (scripts, styles, icons); anything else is a 404 problem."""
    found = static_files().get(path)
    if found is None:
        raise NotFoundError(f"no static file {path!r}")
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
    return Response(read_file(found), media_type=MEDIA_TYPES[found.suffix], headers=headers)


router = APIRouter()
"""What ``create_app`` includes: the pages (kept out of the OpenAPI document) and their API."""
router.include_router(web_api.router)
router.include_router(pages)
