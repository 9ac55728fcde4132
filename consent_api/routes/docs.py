"""``/docs``: the interactive API reference (Swagger UI), off unless ``api_docs`` is set.

FastAPI's own ``/docs`` and ``/redoc`` pages load unpinned scripts from a public CDN into this
service's origin, with no CSP and no frame protection. This page instead loads Swagger UI from
the ``swagger-ui-bundle-v2`` package installed with the service (version pinned in
pyproject.toml; its two files are byte for byte those of npm's ``swagger-ui-dist`` 5.31.0, and
their SHA-256 is pinned here too: a changed file is not served, and the page names each hash as
subresource integrity), starts it from ``/static/js/docs.js``, and is served under the apps'
CSP and security headers (``routes.web``). There is no ``/redoc``: ReDoc injects inline styles,
which that CSP forbids. The OpenAPI document itself stays at ``/openapi.json`` either way.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from ..errors import NotFoundError
from .web import SECURITY_HEADERS

ASSETS: Final = {
    "swagger-ui-bundle.js": (
        "text/javascript; charset=utf-8",
        "93b7b0862a80e2786f85b560be7693c2344354ffa7e7e224f850a54349724c31",
    ),
    "swagger-ui.css": (
        "text/css; charset=utf-8",
        "9e576f8322132c76949da47f9bb53c891373c303ea3a761ff548ffc9de50a98c",
    ),
}
"""The only files of the package this service serves, by name: media type and SHA-256 (hex)."""


def _sri(name: str) -> str:
    return "sha256-" + base64.b64encode(bytes.fromhex(ASSETS[name][1])).decode("ascii")


PAGE: Final = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>consent-ledger API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css" integrity="{_sri("swagger-ui.css")}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js" integrity="{_sri("swagger-ui-bundle.js")}"></script>
<script src="/static/js/docs.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@cache
def _asset_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    return Path(str(swagger_ui_path))


@cache
def _asset(name: str) -> bytes:
    """The file's bytes, if they are the pinned ones; NotFoundError otherwise."""
    data = (_asset_dir() / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != ASSETS[name][1]:
        raise NotFoundError(f"the installed {name} is not the pinned one; reinstall the service")
    return data


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Response:
    """One of ``ASSETS``; anything else is a 404 problem (no path is joined from a request)."""
    if name not in ASSETS:
        raise NotFoundError(f"no documentation asset {name!r}")
    media_type = ASSETS[name][0]
    headers = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}
    return Response(_asset(name), media_type=media_type, headers=headers)
