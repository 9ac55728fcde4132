"""The apps' pages as served: security headers, no inline script, every file they load, no
data in a page, the two API operations only they use, and the dictionary in both languages."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consent_api.app import create_app
from consent_api.auth import Role
from consent_api.routes.web import PAGES, WEB_DIR, static_files
from tests.api_helpers import Institution, api_settings, platform_headers, register_resident
from tests.paths import REPO

ALL_PAGES = ["/", *PAGES]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = Path(tmp_path_factory.mktemp("web"))
    settings = api_settings(tmp).model_copy(
        update={
            "audit_report": tmp / "report.json",
            "token_audience": 'aud"<x>',
            "explorer_tx_url": "https://explorer.example/tx/{tx}",
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def parsed(text: str) -> Tags:
    tags = Tags()
    tags.feed(text)
    return tags


@pytest.mark.parametrize("path", ALL_PAGES)
def test_pages_are_served_with_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ALL_PAGES)
def test_pages_have_no_inline_script_or_style(client: TestClient, path: str) -> None:
    tags = parsed(client.get(path).text)
    assert tags.script_text == ""
    scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
    assert scripts, "every page loads its module"
    assert all(attrs.get("type") == "module" and attrs.get("src") for attrs in scripts)
    for tag, attrs in tags.tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], tag
        assert tag != "style"


@pytest.mark.parametrize("path", ALL_PAGES)
def test_every_file_a_page_loads_is_served(client: TestClient, path: str) -> None:
    tags = parsed(client.get(path).text)
    urls = [
        attrs.get("src") or attrs.get("href")
        for tag, attrs in tags.tags
        if tag in ("script", "link")
    ]
    assert urls
    for url in urls:
        assert url is not None
        assert url.startswith("/static/")
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-security-policy"]


def test_every_module_import_resolves() -> None:
    files = static_files()
    for name, path in files.items():
        if not name.endswith(".js"):
            continue
        for target in re.findall(r'from "\./([^"]+)"', path.read_text(encoding="utf-8")):
            assert f"js/{target}" in files, f"{name} imports {target}"


def test_static_files_have_their_media_types(client: TestClient) -> None:
    assert (
        client.get("/static/js/resident.js").headers["content-type"].startswith("text/javascript")
    )
    assert client.get("/static/css/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/img/icon.svg").headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../routes/web.py",
        "/static/%2e%2e/settings.py",
        "/static/js/../../settings.py",
        "/static/resident.html",
        "/static/js/missing.js",
        "/static//etc/passwd",
    ],
)
def test_nothing_else_is_served_from_static(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_pages_hold_no_data_whoever_asks(client: TestClient) -> None:
    """A page is the same bytes for anyone: what it shows comes from the API, per role."""
    subject = register_resident(client, "NAT-WEB-1", birth_date=date(1990, 1, 1))
    for path in ALL_PAGES:
        anonymous = client.get(path).text
        as_resident = client.get(
            path, headers=platform_headers(client, Role.RESIDENT, subject)
        ).text
        as_regulator = client.get(
            path, headers=platform_headers(client, Role.REGULATOR, "reg")
        ).text
        assert anonymous == as_resident == as_regulator
        assert subject not in anonymous
        assert "NAT-WEB-1" not in anonymous


def test_settings_reach_the_page_escaped(client: TestClient) -> None:
    text = client.get("/console/hospital").text
    assert 'content="aud&quot;&lt;x&gt;"' in text
    assert 'content="https://explorer.example/tx/{tx}"' in text
    assert "{{" not in text


def test_pages_are_not_api_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [
        path for path in paths if path.startswith(("/app", "/console", "/static")) or path == "/"
    ]
    assert "/v1/institutions" in paths
    assert "/v1/audit/report" in paths


def test_the_directory_names_institutions_and_nothing_more(client: TestClient) -> None:
    Institution(client, "h-web-dir")
    subject = register_resident(client, "NAT-WEB-2", birth_date=date(1980, 5, 5))
    assert client.get("/v1/institutions").status_code == 401
    listed = client.get(
        "/v1/institutions", headers=platform_headers(client, Role.RESIDENT, subject)
    )
    assert listed.status_code == 200
    entry = next(item for item in listed.json() if item["id"] == "h-web-dir")
    assert entry == {
        "id": "h-web-dir",
        "name": "Hospital h-web-dir",
        "type": "hospital",
        "active": True,
    }


def test_the_audit_report_is_for_regulators(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    report_path: Path = settings.audit_report
    regulator = platform_headers(client, Role.REGULATOR, "reg-web")
    report_path.unlink(missing_ok=True)
    missing = client.get("/v1/audit/report", headers=regulator)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    report_path.write_text("{not json", encoding="utf-8")
    assert client.get("/v1/audit/report", headers=regulator).status_code == 404
    report = {"ok": False, "findings": [{"code": "fork", "message": "two roots", "tree_size": 4}]}
    report_path.write_text(json.dumps(report), encoding="utf-8")
    answer = client.get("/v1/audit/report", headers=regulator)
    assert answer.status_code == 200
    assert answer.json()["report"] == report
    assert answer.json()["written_at"]
    subject = register_resident(client, "NAT-WEB-3", birth_date=date(1970, 2, 2))
    resident = platform_headers(client, Role.RESIDENT, subject)
    assert client.get("/v1/audit/report", headers=resident).status_code == 403


# -- words -----------------------------------------------------------------------------------


def dictionary(language: str) -> dict[str, str]:
    """The keys of one language, read from the two message modules' object literals."""
    names = {"zh": ("zh", "CONSOLE_ZH"), "en": ("en", "CONSOLE_EN")}[language]
    found: dict[str, str] = {}
    for module in ("messages.js", "messages-console.js"):
        text = (WEB_DIR / "js" / module).read_text(encoding="utf-8")
        for name in names:
            match = re.search(rf"(?:const|export const) {name} = \{{(.*?)\n\}};", text, re.S)
            if match:
                found.update(
                    re.findall(r'^\s+"([^"]+)": "((?:[^"\\]|\\.)*)",$', match.group(1), re.M)
                )
    return found


def test_both_languages_have_the_same_words() -> None:
    zh, en = dictionary("zh"), dictionary("en")
    assert len(zh) > 200
    assert set(zh) == set(en)
    assert all(value.strip() for value in [*zh.values(), *en.values()])


def test_every_key_the_pages_use_is_in_the_dictionary() -> None:
    known = set(dictionary("zh"))
    used: set[str] = set()
    for page in WEB_DIR.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n="([^"]+)"', text))
        used |= {
            key
            for pair in re.findall(r'data-i18n-attr="([^"]+)"', text)
            for key in re.findall(r":([\w.-]+)", pair)
        }
    for script in (WEB_DIR / "js").glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.-]+)"', script.read_text(encoding="utf-8")))
    assert used, "the pages use the dictionary"
    assert sorted(used - known) == []


def test_an_installed_package_carries_every_web_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["consent_api"]
    for path in WEB_DIR.rglob("*"):
        if path.is_file():
            name = path.relative_to(WEB_DIR.parent).as_posix()
            assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
