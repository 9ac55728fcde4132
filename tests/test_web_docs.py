"""The API docs pages (issue 12, item 8): FastAPI's /docs and /redoc loaded unpinned scripts from
a public CDN on the service's origin, with no CSP and no frame protection. Now /docs is off by
default; when ``api_docs`` is set it serves Swagger UI from the pinned package under the apps'
CSP, which a real chromium then renders with no CSP violation and no request off the origin."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.routes.docs import ASSETS
from consent_api.routes.web import CSP
from tests.api_helpers import api_settings
from tests.e2e.world import CHROMIUM, require_browser
from tests.live_server import LiveServer
from tests.paths import REPO

FASTAPI_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]


@pytest.fixture
def default_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings(tmp_path))) as client:
        yield client


@pytest.fixture
def docs_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = api_settings(tmp_path).model_copy(update={"api_docs": True})
    with TestClient(create_app(settings)) as client:
        yield client


def assert_protected(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", FASTAPI_PAGES)
def test_the_docs_pages_are_off_by_default(default_client: TestClient, path: str) -> None:
    response = default_client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "cdn" not in response.text.lower()


def test_the_openapi_document_stays_served(default_client: TestClient) -> None:
    response = default_client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "consent-ledger"


def test_enabled_docs_load_nothing_from_elsewhere(docs_client: TestClient) -> None:
    response = docs_client.get("/docs")
    assert response.status_code == 200
    assert_protected(response)
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sources
    assert all(source.startswith("/") for source in sources), sources
    assert "<script>" not in response.text  # no inline script: the CSP would refuse it
    for source in sources:
        loaded = docs_client.get(source)
        assert loaded.status_code == 200, source
        assert_protected(loaded)
    for path in ("/redoc", "/docs/oauth2-redirect", "/docs/assets/index.html"):
        assert docs_client.get(path).status_code == 404, path
    for name in ("../__init__.py", "swagger-ui-bundle.js.map", "%2e%2e/x"):
        assert docs_client.get(f"/docs/assets/{name}").status_code == 404, name
    assert set(ASSETS) == {"swagger-ui-bundle.js", "swagger-ui.css"}


def test_chromium_renders_the_docs_under_the_csp(tmp_path: Path) -> None:
    require_browser()
    server = LiveServer(tmp_path / "data", env={"CONSENT_API_API_DOCS": "true"})
    try:
        config = tmp_path / "docs.json"
        config.write_text(json.dumps({"chromium": str(CHROMIUM), "url": server.url}))
        done = subprocess.run(
            ["node", str(REPO / "tests" / "e2e" / "api_docs.mjs"), str(config)],
            cwd=REPO,
            env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 problems" in done.stdout
