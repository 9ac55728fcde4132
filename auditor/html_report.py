"""The audit report as one self-contained HTML page: verdict, findings, charts, tables.

The page is rendered from the JSON report (``Report.to_dict()``, with the ``lawfulness``,
``activity`` and ``anchoring`` sections when the audit produced them) and opens offline: the
styles are inline, the charts inline SVG drawn by ``auditor.html_charts``, no script, no font,
image or link to fetch. Everything in the report came from, or is about, the audited service,
so every value is escaped before it reaches the markup, and each chart has its figures as a
table beside it. Sections the report lacks say "no data" rather than disappear.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .html_charts import bars, esc, number, stacked_bars

MAX_SERIES = 8  # institutions or purposes charted by name; the rest are summed as "others"
OTHERS = "others"
STATUS_ORDER = ("justified", "late", "pending", "overdue")
STATUS_COLOURS = ("#009e73", "#e69f00", "#56b4e9", "#d55e00")
NO_DATA = '<p class="no-data">no data</p>'

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1a1a1a;line-height:1.4}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
h3{font-size:1.05rem}
.verdict{padding:1rem 1.25rem;border-radius:6px;font-size:1.2rem;font-weight:600}
.verdict.ok{background:#e3f4ea;border:2px solid #1e7b43;color:#14532d}
.verdict.fail{background:#fbe5e1;border:2px solid #b42318;color:#7a1a10}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.no-data{color:#666;font-style:italic}
svg.chart{max-width:100%;height:auto;display:block;margin:.5rem 0}
svg .axis{stroke:#333}svg .tick,svg .legend{font-size:10px;fill:#333}
details{margin:.25rem 0 1rem}summary{cursor:pointer;color:#333}
"""


def render_html(report: Mapping[str, Any]) -> str:
    """The report as a complete HTML document (a string, UTF-8 when written)."""
    parts = [
        _verdict(report),
        _findings(report.get("findings") or []),
        _summary(report),
        _lawfulness(report.get("lawfulness")),
        _activity((report.get("activity") or {}).get("accesses")),
        _breakglass((report.get("activity") or {}).get("breakglass")),
        _anchoring(report.get("anchoring")),
        _stats(report.get("stats")),
    ]
    title = f"Audit of {report.get('origin') or report.get('api') or 'a consent ledger'}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">\n"
        f"<title>{esc(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{esc(title)}</h1>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )


def write_html(path: Path, report: Mapping[str, Any]) -> None:
    """Write the page whole: a temporary file beside ``path``, then renamed over it."""
    text = render_html(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


# -- sections -----------------------------------------------------------------------------------


def _verdict(report: Mapping[str, Any]) -> str:
    findings = report.get("findings") or []
    if report.get("ok") is True and not findings:
        verified = (report.get("verified") or {}).get("tree_size")
        text = "Verdict: no finding. The log verifies"
        text += f" up to size {number(verified)}." if isinstance(verified, int) else "."
        return f'<p class="verdict ok" role="status">{esc(text)}</p>'
    count = len(findings)
    codes = sorted({str(f.get("code")) for f in findings if isinstance(f, Mapping)})
    text = f"Verdict: {count} finding{'s' if count != 1 else ''}"
    text += f" ({', '.join(codes)})." if codes else "."
    return f'<p class="verdict fail" role="alert">{esc(text)}</p>'


def _findings(findings: Sequence[Any]) -> str:
    head = '<h2 id="findings">Findings</h2>'
    if not findings:
        return head + '<p class="no-data">none</p>'
    rows = []
    for item in findings:
        finding = item if isinstance(item, Mapping) else {"message": item}
        leaves = finding.get("leaf_indices")
        rows.append(
            [
                f"<code>{esc(finding.get('code', ''))}</code>",
                _cell(finding.get("tree_size")),
                esc(", ".join(map(str, leaves))) if isinstance(leaves, list) else "",
                esc(finding.get("field") or ""),
                esc(finding.get("message", "")),
            ]
        )
    return head + _table(["code", "tree size", "leaves", "field", "message"], rows, raw=True)


def _summary(report: Mapping[str, Any]) -> str:
    verified = report.get("verified") or {}
    rows = [
        ("service", report.get("api")),
        ("origin", report.get("origin")),
        ("log id", report.get("log_id")),
        ("chain id", report.get("chain_id")),
        ("registry contract", report.get("contract")),
        ("verified tree size", verified.get("tree_size")),
        ("verified root hash", verified.get("root_hash")),
        ("largest anchored size", report.get("anchored_size")),
    ]
    body = "".join(
        f'<tr><th scope="row">{esc(name)}</th><td class="mono">{_cell(value)}</td></tr>'
        for name, value in rows
    )
    return f"<h2>What was audited</h2><table>{body}</table>"


def _lawfulness(section: Any) -> str:
    head = "<h2>Lawfulness replay</h2>"
    if not isinstance(section, Mapping):
        return head + NO_DATA
    names = {
        "replayed_size": "leaves replayed",
        "events": "consent and access events",
        "permits": "permits",
        "denials": "denials",
        "releases": "releases",
        "breakglass": "break-glass accesses",
        "unverifiable_guardian_consents": "guardian consents that cannot be checked",
    }
    rows = [[esc(label), _cell(section.get(key))] for key, label in names.items()]
    return head + _table(["", "count"], rows, raw=True, numeric={1})


def _activity(accesses: Any) -> str:
    head = "<h2>Accesses over time</h2>"
    if not isinstance(accesses, list) or not accesses:
        return head + NO_DATA
    rows = [a for a in accesses if isinstance(a, Mapping)]
    days = sorted({str(a.get("day")) for a in rows})
    parts = [head]
    for key, what in (("requester", "institution"), ("purpose", "purpose")):
        labels, series = _by_day(rows, days, key)
        parts.append(f"<h3>Access requests per {what} and day</h3>")
        parts.append(
            stacked_bars(
                f"Access requests per {what} and day",
                f"Decided access requests (permits and denials) each day, stacked by {what}"
                f"{'' if len(series) <= MAX_SERIES else f'; the {MAX_SERIES} largest by name'}.",
                labels,
                series,
            )
        )
        parts.append(
            _details(
                ["day", *series],
                [[d, *(s[n] for s in series.values())] for n, d in enumerate(labels)],
            )
        )
    denials = [a for a in rows if a.get("decision") == "deny"]
    counts = _sum_by(denials, lambda a: str(a.get("day")))
    per_day = [float(counts.get(day, 0)) for day in days]
    parts.append("<h3>Denials per day</h3>")
    parts.append(
        bars(
            "Denials per day",
            f"Access requests denied each day; {number(sum(per_day))} in all.",
            days,
            per_day,
            colour="#d55e00",
        )
    )
    parts.append(_details(["day", "denials"], [[d, v] for d, v in zip(days, per_day, strict=True)]))
    return "\n".join(parts)


def _breakglass(cases: Any) -> str:
    head = "<h2>Break-glass accesses and their justifications</h2>"
    if not isinstance(cases, list):
        return head + NO_DATA
    rows = [c for c in cases if isinstance(c, Mapping)]
    counts = _sum_by(rows, lambda c: str(c.get("status")), weight=lambda _: 1)
    statuses = [*STATUS_ORDER, *sorted(set(counts) - set(STATUS_ORDER))]
    values = [float(counts.get(s, 0)) for s in statuses]
    chart = bars(
        "Break-glass accesses by justification status",
        "How many break-glass accesses were justified in time, justified late, are pending "
        "(not yet due) or overdue (due and not justified).",
        statuses,
        values,
        colours=[*STATUS_COLOURS, *["#999999"] * (len(statuses) - len(STATUS_COLOURS))],
    )
    parts = [
        head,
        chart,
        _details(["status", "count"], [[s, v] for s, v in zip(statuses, values, strict=True)]),
    ]
    overdue = [c for c in rows if c.get("status") in ("overdue", "late")]
    parts.append("<h3>Overdue and late justifications</h3>")
    if not overdue:
        parts.append('<p class="no-data">none</p>')
    else:
        columns = ["leaf", "at", "requester", "holder", "justify by", "justified at", "status"]
        parts.append(
            _table(
                columns,
                [
                    [
                        c.get("leaf_index"),
                        c.get("at"),
                        c.get("requester"),
                        c.get("holder"),
                        c.get("justify_by"),
                        c.get("justified_at"),
                        c.get("status"),
                    ]
                    for c in overdue
                ],
                numeric={0},
            )
        )
    return "\n".join(parts)


def _anchoring(anchors: Any) -> str:
    head = "<h2>Anchoring lag</h2>"
    if not isinstance(anchors, list) or not anchors:
        return head + NO_DATA
    rows = [a for a in anchors if isinstance(a, Mapping)]
    labels = [_plain(a.get("tree_size")) for a in rows]
    lags = [_float(a.get("lag_s")) for a in rows]
    chart = bars(
        "Anchoring lag per anchor",
        "Seconds from the logged time of the last event an anchor covers to the time of the "
        "block that anchored it, for each anchor by tree size (no bar where it is unknown).",
        labels,
        lags,
        unit=" s",
        colour="#0072b2",
    )
    table = _table(
        ["tree size", "block", "block time", "lag (s)"],
        [
            [a.get("tree_size"), a.get("block_number"), a.get("block_time"), a.get("lag_s")]
            for a in rows
        ],
        numeric={0, 1, 3},
    )
    return "\n".join(
        [head, chart, f"<details><summary>Anchors as a table</summary>{table}</details>"]
    )


def _stats(stats: Any) -> str:
    if not isinstance(stats, Mapping):
        return ""
    rows = [[esc(k.replace("_", " ")), _cell(v)] for k, v in stats.items()]
    return "<h2>What the run cost</h2>" + _table(["", ""], rows, raw=True, numeric={1})


# -- helpers ------------------------------------------------------------------------------------


def _by_day(
    rows: Sequence[Mapping[str, Any]], days: list[str], key: str
) -> tuple[list[str], dict[str, list[float]]]:
    """Counts per day for each value of ``key``; the largest ``MAX_SERIES`` named, others summed."""
    totals = _sum_by(rows, lambda a: str(a.get(key)))
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    named = ranked[:MAX_SERIES] if len(ranked) > MAX_SERIES + 1 else ranked
    series: dict[str, list[float]] = {name: [0.0] * len(days) for name in named}
    others = [0.0] * len(days)
    index = {day: n for n, day in enumerate(days)}
    for row in rows:
        target = series.get(str(row.get(key)), others)
        target[index[str(row.get("day"))]] += _count(row)
    if len(named) < len(ranked):
        label = OTHERS
        while label in series:  # a service could name an institution "others"
            label = f"({label})"
        series[label] = others
    return days, series


def _sum_by(
    rows: Iterable[Mapping[str, Any]],
    key: Callable[[Mapping[str, Any]], str],
    weight: Callable[[Mapping[str, Any]], float] | None = None,
) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for row in rows:
        out[key(row)] += _count(row) if weight is None else weight(row)
    return dict(out)


def _count(row: Mapping[str, Any]) -> float:
    value = row.get("count", 1)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _float(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _plain(value: Any) -> str:
    """A value as text (not yet escaped): numbers with separators, nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return str(value)


def _cell(value: Any) -> str:
    return esc(_plain(value))


def _table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    raw: bool = False,
    numeric: set[int] | None = None,
) -> str:
    """A table; cells are escaped here unless ``raw`` (then the caller escaped them)."""
    numeric = numeric or set()
    align = [' class="num"' if n in numeric else "" for n in range(len(columns))]
    head = "".join(f'<th scope="col"{align[n]}>{esc(c)}</th>' for n, c in enumerate(columns))
    body = []
    for row in rows:
        cells = "".join(f"<td{align[n]}>{v if raw else _cell(v)}</td>" for n, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _details(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    table = _table(columns, rows, numeric=set(range(1, len(columns))))
    return f"<details><summary>The figures as a table</summary>{table}</details>"
