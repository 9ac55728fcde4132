"""The HTML report: verdict and findings first, charts with their tables, escaping, offline."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import main
from auditor.html_report import MAX_SERIES, render_html, write_html
from tests.live_server import LiveServer
from tests.test_auditor_cli import SERVER_ENV, args
from tests.test_auditor_deployment import Deployment, deployment, pristine

__all__ = ["deployment", "pristine"]  # fixtures, imported for pytest to find

EVIL = "<script>alert('x')</script>"
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")


class Page(HTMLParser):
    """What a browser would build: tags, each SVG's title and bars, texts, resource links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.svgs: list[dict[str, Any]] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self._in_svg_title = False
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        for name in ("src", "href", "xlink:href", "action", "data", "poster"):
            if attributes.get(name):
                self.links.append(str(attributes[name]))
        if tag == "svg":
            svg = {"title": "", "desc": "", "bars": 0, "legend": 0, "role": attributes.get("role")}
            self.svgs.append(svg)
        elif tag == "rect" and attributes.get("class") == "bar":
            self.svgs[-1]["bars"] += 1
        elif tag == "text" and attributes.get("class") == "legend":
            self.svgs[-1]["legend"] += 1
        elif tag in ("title", "desc") and self.svgs and not self.svgs[-1][tag]:
            self._in_svg_title = tag in ("title", "desc")
            self._current = tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "desc"):
            self._in_svg_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_svg_title and self.svgs:
            self.svgs[-1][self._current] += data


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


def access(day: str, requester: str, purpose: str, decision: str, count: int) -> dict[str, Any]:
    return {
        "day": day,
        "requester": requester,
        "holder": "hospital-09",
        "purpose": purpose,
        "decision": decision,
        "breakglass": False,
        "count": count,
    }


def case(n: int, status: str, justified_at: str | None = None) -> dict[str, Any]:
    return {
        "leaf_index": 100 + n,
        "at": f"2026-11-01T0{n}:00:00Z",
        "requester": EVIL if n == 5 else f"clinic-{n:02d}",
        "holder": "hospital-01",
        "justify_by": f"2026-11-02T0{n}:00:00Z",
        "justified_at": justified_at,
        "justification_leaf_index": None if justified_at is None else 200 + n,
        "status": status,
    }


def rich_report() -> dict[str, Any]:
    accesses = [
        access(DAYS[0], "hospital-01", "treatment", "permit", 10),
        access(DAYS[0], "hospital-01", "treatment", "deny", 2),
        access(DAYS[0], EVIL, "referral", "permit", 3),
        access(DAYS[1], "clinic-02", "referral", "permit", 4),
        access(DAYS[1], EVIL, EVIL, "deny", 1),
        access(DAYS[2], "hospital-01", "research", "deny", 5),
    ]
    return {
        "ok": False,
        "api": "http://platform.example:8000",
        "chain_id": 31337,
        "contract": "0x" + "ab" * 20,
        "origin": f"city.example/log {EVIL}",
        "log_id": "0x" + "cd" * 32,
        "verified": {"tree_size": 1200, "root_hash": "ef" * 32},
        "anchored_size": 1000,
        "findings": [
            {
                "code": "leaves-mismatch",
                "message": f"leaf 4 is not the tree's {EVIL}",
                "leaf_indices": [4],
                "tree_size": 1000,
            },
            {"code": "anchor-lag", "message": "anchored late", "tree_size": 500, "field": "x"},
        ],
        "stats": {"requests": 12, "leaves_hashed": 1200, "elapsed_s": 0.5},
        "lawfulness": {
            "replayed_size": 1200,
            "events": 1188,
            "permits": 17,
            "denials": 8,
            "releases": 9,
            "breakglass": 6,
            "unverifiable_guardian_consents": 1,
        },
        "activity": {
            "accesses": accesses,
            "breakglass": [
                case(1, "justified", "2026-11-01T03:00:00Z"),
                case(2, "justified", "2026-11-01T04:00:00Z"),
                case(3, "late", "2026-11-03T00:00:00Z"),
                case(4, "pending"),
                case(5, "overdue"),
                case(6, "overdue"),
            ],
        },
        "anchoring": [
            {
                "tree_size": 500,
                "block_number": 7,
                "block_time": "2026-11-01T00:00:00Z",
                "lag_s": 12.5,
            },
            {
                "tree_size": 800,
                "block_number": 9,
                "block_time": "2026-11-02T00:00:00Z",
                "lag_s": None,
            },
            {
                "tree_size": 1000,
                "block_number": 12,
                "block_time": "2026-11-03T00:00:00Z",
                "lag_s": 4000.0,
            },
        ],
    }


def svg_titled(page: Page, start: str) -> dict[str, Any]:
    found = [svg for svg in page.svgs if svg["title"].startswith(start)]
    assert len(found) == 1, [svg["title"] for svg in page.svgs]
    return found[0]


def test_rich_report_has_verdict_findings_charts_and_tables() -> None:
    html = render_html(rich_report())
    page = parse(html)
    text = " ".join(page.text)
    # The verdict first, then the findings table, before any chart.
    assert html.index('class="verdict fail"') < html.index('id="findings"') < html.index("<svg")
    assert "Verdict: 2 findings (anchor-lag, leaves-mismatch)." in text
    assert "leaves-mismatch" in text
    assert "anchored late" in text
    # One bar per non-zero (day, series) cell in the stacked charts: 5 of 3 days x 3 series.
    assert svg_titled(page, "Access requests per institution")["bars"] == 5
    assert svg_titled(page, "Access requests per purpose")["bars"] == 5
    assert svg_titled(page, "Access requests per institution")["legend"] == 3  # every series
    assert svg_titled(page, "Access requests per purpose")["legend"] == 4
    assert svg_titled(page, "Denials per day")["bars"] == 3  # one per day, zero or not
    assert svg_titled(page, "Break-glass accesses")["bars"] == 4  # the four statuses
    assert svg_titled(page, "Anchoring lag")["bars"] == 2  # no bar for an unknown lag
    assert all(svg["role"] == "img" and svg["desc"] for svg in page.svgs)
    # Figures: replay counts, the overdue and late cases listed, totals in the tables.
    for figure in ("1,188", "guardian consents that cannot be checked", "4,000", "31,337"):
        assert figure in text
    overdue_table = html[html.index("Overdue and late") :]
    overdue_table = overdue_table[: overdue_table.index("</table>")]
    assert overdue_table.count("<tr>") == 1 + 3  # header, the late case, two overdue ones
    assert "clinic-03" in overdue_table
    assert "clinic-04" not in overdue_table


def test_every_string_from_the_service_is_escaped_and_nothing_is_fetched() -> None:
    html = render_html(rich_report())
    page = parse(html)
    assert "script" not in page.tags
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert EVIL in " ".join(page.text)  # shown to the reader as text
    assert page.links == []  # no src, href, ...: nothing to load, nothing to follow
    assert "url(" not in html
    assert "@import" not in html
    # "http" appears only as text (the service's URL) and in the CSP's meta http-equiv.
    assert html.count("http") == html.count("http://platform.example") + html.count("http-equiv")
    assert "default-src 'none'" in html


def test_many_institutions_are_charted_by_name_up_to_a_limit() -> None:
    report = rich_report()
    names = [f"inst-{n:02d}" for n in range(MAX_SERIES + 4)]
    report["activity"]["accesses"] = [
        access(DAYS[0], name, "treatment", "permit", 100 - n) for n, name in enumerate(names)
    ]
    page = parse(render_html(report))
    chart = svg_titled(page, "Access requests per institution")
    assert chart["bars"] == MAX_SERIES + 1  # the largest by name, the rest as "others"
    assert "the 8 largest by name" in chart["desc"]
    text = " ".join(page.text)
    assert "inst-07" in text
    assert "others" in text
    assert "inst-08" not in text


def test_a_report_without_the_replay_says_no_data(tmp_path: Path) -> None:
    report = {
        "ok": True,
        "api": "http://127.0.0.1:1",
        "chain_id": 1,
        "contract": "0x" + "00" * 20,
        "origin": "o",
        "log_id": None,
        "verified": {"tree_size": 0, "root_hash": None},
        "anchored_size": 0,
        "findings": [],
        "stats": {"requests": 1},
    }
    path = tmp_path / "out" / "report.html"
    write_html(path, report)
    html = path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left
    assert html.count("no data") == 4  # lawfulness, accesses, break-glass, anchoring
    assert "Verdict: no finding. The log verifies up to size 0." in html
    assert "<svg" not in html


def test_report_of_a_live_audit_renders(
    deployment: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = LiveServer(deployment.root / "data", env=SERVER_ENV)
    try:
        assert main(args(deployment, server.url, tmp_path, "--quiet")) == 0
    finally:
        server.stop()
    report = json.loads((tmp_path / "report.json").read_text())
    path = tmp_path / "report.html"
    write_html(path, report)
    page = parse(path.read_text(encoding="utf-8"))
    text = " ".join(page.text)
    assert "Verdict: no finding. The log verifies up to size 32." in text
    assert deployment.contract in text
    assert page.links == []
    assert "script" not in page.tags
    if report.get("anchoring"):  # once the auditor reports its anchors
        assert svg_titled(page, "Anchoring lag")["bars"] == sum(
            a["lag_s"] is not None for a in report["anchoring"]
        )
