"""Bar charts as inline SVG, drawn here so that the HTML report needs nothing from the network.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``, one ``<rect
class="bar">`` per drawn bar (each with its own ``<title>``, the value as a tooltip), an axis
with three ticks and a legend. Every string that reaches the markup is escaped here: labels and
series names come from the audited service. The caller renders the same figures as a table.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence

#: Colour-blind-safe (Okabe-Ito), then greys for the rest.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#000000",
)
OTHER_COLOUR = "#999999"

HEIGHT = 260
TOP, BOTTOM, LEFT, RIGHT = 20, 60, 56, 16
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
MIN_SLOT, MAX_SLOT = 14, 64  # width given to one x label
MAX_X_LABELS = 20
MIN_WIDTH = 360
LEGEND_ENTRY = 150  # width of one legend entry: a swatch and a name of up to 22 characters

_ids = itertools.count(1)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def number(value: float) -> str:
    """A figure as shown: integers with thousands separators, others with 3 significant digits."""
    if float(value).is_integer() or abs(value) >= 100:
        return f"{round(value):,}"
    return f"{value:.3g}"


def stacked_bars(
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    unit: str = "",
) -> str:
    """One column per label, one segment per series with a value above zero, stacked in order.

    ``series`` maps each name to one value per label. Colours follow the order of ``series``.
    """
    totals = [sum(values[n] for values in series.values()) for n in range(len(labels))]
    colours = _colours(list(series))
    bars: list[str] = []
    width, slot, scale = _frame(len(labels), max(totals, default=0))
    for n, label in enumerate(labels):
        base = 0.0
        for name, values in series.items():
            value = values[n]
            if value <= 0:
                continue
            bars.append(
                _bar(
                    LEFT + n * slot + slot * 0.15,
                    base + value,
                    value,
                    slot * 0.7,
                    scale,
                    colours[name],
                    f"{label} · {name}: {number(value)}{unit}",
                )
            )
            base += value
    legend = _legend(colours, width) if len(series) > 1 else ("", 0)
    return _svg(title, desc, width, labels, slot, scale, max(totals, default=0), bars, legend)


def bars(
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    unit: str = "",
    colour: str = PALETTE[0],
    colours: Sequence[str] | None = None,
) -> str:
    """One bar per label with a value; a None value draws no bar (its label stays on the axis)."""
    top = max((v for v in values if v is not None), default=0.0)
    width, slot, scale = _frame(len(labels), top)
    drawn = [
        _bar(
            LEFT + n * slot + slot * 0.15,
            value,
            value,
            slot * 0.7,
            scale,
            colours[n] if colours is not None else colour,
            f"{label}: {number(value)}{unit}",
        )
        for n, (label, value) in enumerate(zip(labels, values, strict=True))
        if value is not None
    ]
    return _svg(title, desc, width, labels, slot, scale, top, drawn, ("", 0))


# -- drawing ------------------------------------------------------------------------------------


def _colours(names: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[n] if n < len(PALETTE) else OTHER_COLOUR for n, name in enumerate(names)}


def _frame(count: int, top: float) -> tuple[float, float, float]:
    """Width of the chart, width of one slot, and pixels per unit of value."""
    slot = min(MAX_SLOT, max(MIN_SLOT, 640 / max(count, 1)))
    width = max(MIN_WIDTH, LEFT + RIGHT + slot * max(count, 1))
    scale = PLOT_HEIGHT / top if top > 0 else 0.0
    return width, slot, scale


def _bar(
    x: float, upper: float, value: float, width: float, scale: float, colour: str, tip: str
) -> str:
    y = TOP + PLOT_HEIGHT - upper * scale
    height = value * scale
    return (
        f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{colour}"><title>{esc(tip)}</title></rect>'
    )


def _legend(colours: Mapping[str, str], width: float) -> tuple[str, int]:
    """The legend under the plot, as many entries a row as fit; and how many rows it takes."""
    per_row = max(1, int((width - LEFT - RIGHT) // LEGEND_ENTRY))
    items = []
    for n, (name, colour) in enumerate(colours.items()):
        x = LEFT + (n % per_row) * LEGEND_ENTRY
        y = HEIGHT - 26 + (n // per_row) * 14
        items.append(
            f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y}" class="legend">{esc(_short(name, 22))}</text>'
        )
    return "".join(items), -(-len(colours) // per_row)


def _svg(
    title: str,
    desc: str,
    width: float,
    labels: Sequence[str],
    slot: float,
    scale: float,
    top: float,
    drawn: list[str],
    legend: tuple[str, int],
) -> str:
    ident = next(_ids)
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    axis = [
        f'<line x1="{LEFT}" y1="{TOP + PLOT_HEIGHT}" x2="{width - RIGHT:.1f}" '
        f'y2="{TOP + PLOT_HEIGHT}" class="axis"/>'
    ]
    for share in (0.0, 0.5, 1.0):
        value = top * share
        y = TOP + PLOT_HEIGHT - value * scale
        axis.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{esc(number(round(value, 3)))}</text>"
        )
    for n, label in enumerate(labels):
        if n % every:
            continue
        x = LEFT + n * slot + slot / 2
        axis.append(
            f'<text x="{x:.1f}" y="{TOP + PLOT_HEIGHT + 14}" class="tick" '
            f'text-anchor="middle">{esc(_tick(label))}</text>'
        )
    entries, rows = legend
    height = HEIGHT + max(0, rows - 1) * 14
    return (
        f'<svg role="img" aria-labelledby="chart-{ident}-title chart-{ident}-desc" '
        f'viewBox="0 0 {width:.0f} {height}" width="{width:.0f}" height="{height}" '
        f'class="chart">'
        f'<title id="chart-{ident}-title">{esc(title)}</title>'
        f'<desc id="chart-{ident}-desc">{esc(desc)}</desc>'
        f"{''.join(axis)}{''.join(drawn)}{entries}</svg>"
    )


def _tick(label: str) -> str:
    """A day (YYYY-MM-DD) as MM-DD under its column; anything else shortened."""
    if len(label) == 10 and label[4] == "-" and label[7] == "-":
        return label[5:]
    return _short(label, 9)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
