"""The scoreboard's HTML and SVG: the page frame, tables, sparklines, the history chart and the tile map.

Every text from data goes through ``esc``; the pages load nothing but the scoreboard's own style
sheet and script (docs/guide/scoreboard.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode

from dxpulse.domain.scoreboard import DARK_TILES, Cell

ASSETS = "/scoreboard/assets"
MARKER_PATH = "/scoreboard/marker"
SIGN_IN_PATH = "/sign-in"
SIGN_OUT_PATH = "/sign-out"


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def href(path: str, **params: str | None) -> str:
    """A link to a scoreboard page, its query parameters escaped (None ones left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return esc(f"{path}?{query}" if query else path)


def page(
    title: str, content: str, *, marker: str, refresh_s: float, crumbs: str = "", sign_out: bool = False
) -> str:
    """A whole page: the frame around ``content``, with what the live updates need on <body>; a
    sign-out button when the scoreboard needs a read token."""
    leave = (
        f'<form class="sign-out" method="post" action="{SIGN_OUT_PATH}"><button type="submit">Sign out'
        "</button></form>"
        if sign_out
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)} · dxpulse scoreboard</title>
<link rel="stylesheet" href="{ASSETS}/scoreboard.css">
<script src="{ASSETS}/scoreboard.js" defer></script>
</head>
<body data-marker="{esc(marker)}" data-marker-url="{MARKER_PATH}" data-refresh-s="{refresh_s:g}">
<header class="top">
<a class="brand" href="/">dxpulse scoreboard</a>
<nav class="crumbs">{crumbs}</nav>
<span class="live" id="live" title="The page updates itself when new figures arrive">live</span>
{leave}</header>
<main id="content">
{content}
</main>
<footer>National digital-transformation figures, rolled up from every unit's latest report.
<span id="updated"></span></footer>
</body>
</html>
"""


def period_form(action: str, periods: Sequence[str], selected: str, extra: dict[str, str]) -> str:
    """The period selector: a plain GET form (the script submits it on change)."""
    options = "".join(
        f'<option value="{esc(p)}"{" selected" if p == selected else ""}>{esc(p)}</option>' for p in periods
    )
    hidden = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in extra.items())
    return (
        f'<form class="period" method="get" action="{esc(action)}">'
        f'<label for="period">Period</label> <select id="period" name="period">{options}</select>'
        f'{hidden}<button type="submit">Show</button></form>'
    )


def table(headers: Sequence[str], rows: Iterable[str], *, css: str = "", caption: str = "") -> str:
    """A table of already-rendered rows (``row``)."""
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table class="{esc(css)}">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def row(cells: Sequence[str], *, css: str = "", attrs: str = "") -> str:
    """A table row of already-escaped cell contents."""
    return f'<tr class="{esc(css)}"{attrs}>' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def badge(word: str, css: str) -> str:
    return f'<span class="badge {esc(css)}">{esc(word)}</span>'


def _scaled(values: Sequence[float], low: float, high: float, top: float, height: float) -> list[float]:
    span = high - low or 1.0
    return [top + height - (v - low) / span * height for v in values]


def _points(xs: Sequence[float], ys: Sequence[float]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))


def sparkline(values: Sequence[float], *, width: int = 120, height: int = 28, label: str = "") -> str:
    """A small line of the values, oldest first; the newest point marked."""
    if not values:
        return '<span class="muted">no history</span>'
    low, high = min(0.0, *values), max(values)
    ys = _scaled(values, low, high, 3, height - 6)
    step = (width - 6) / max(1, len(values) - 1)
    xs = [3 + i * step for i in range(len(values))] if len(values) > 1 else [width / 2]
    points = _points(xs, ys)
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{esc(label)}"><polyline points="{points}"/>'
        f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.5"/></svg>'
    )


def history_chart(
    points: Sequence[tuple[str, float]], target: float | None, texts: Sequence[str], target_text: str
) -> str:
    """The national figure per period (labels under the axis) with the target as a dashed line."""
    if not points:
        return '<p class="muted">No figures yet.</p>'
    width, height, left, bottom = 560, 200, 20, 30
    values = [v for _, v in points]
    high = max([*values, target or 0.0]) * 1.1 or 1.0
    ys = _scaled(values, 0.0, high, 10, height - bottom - 10)
    step = (width - left - 80) / max(1, len(points) - 1)
    xs = [left + 30 + i * step for i in range(len(points))] if len(points) > 1 else [left + 120.0]
    parts = [
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}"/>',
        f'<polyline class="series" points="{_points(xs, ys)}"/>',
    ]
    if target is not None:
        (ty,) = _scaled([target], 0.0, high, 10, height - bottom - 10)
        parts.append(f'<line class="target" x1="{left}" y1="{ty:.1f}" x2="{width - 5}" y2="{ty:.1f}"/>')
        parts.append(f'<text class="target-label" x="{width - 5}" y="{ty - 5:.1f}">{esc(target_text)}</text>')
    for (label, _), x, y, text in zip(points, xs, ys, texts, strict=True):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{esc(label)}: {esc(text)}</title></circle>'
        )
        parts.append(f'<text class="point" x="{x:.1f}" y="{y - 8:.1f}">{esc(text)}</text>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - bottom + 18}">{esc(label)}</text>')
    return (
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="national figure per period">{"".join(parts)}</svg>'
    )


@dataclass(frozen=True)
class Tile:
    """One province on the tile map."""

    reporter: str
    code: str
    name: str
    cell: Cell
    fill: str
    text: str
    detail: str
    value: float | None


TILE = 46
GAP = 4


def tile_map(tiles: Sequence[Tile], *, label: str) -> str:
    """The provinces as equal squares on a grid, north at the top, each filled by its value's class."""
    if not tiles:
        return '<p class="muted">No provinces in this figure.</p>'
    columns = max(t.cell[0] for t in tiles) + 1
    rows = max(t.cell[1] for t in tiles) + 1
    width, height = columns * (TILE + GAP), rows * (TILE + GAP)
    parts = []
    for t in sorted(tiles, key=lambda t: (t.cell[1], t.cell[0])):
        x, y = t.cell[0] * (TILE + GAP), t.cell[1] * (TILE + GAP)
        ink = "light" if t.fill in DARK_TILES else "dark"
        value = "" if t.value is None else f"{t.value:.12g}"
        parts.append(
            f'<g class="tile {ink}" data-unit="{esc(t.reporter)}" data-fill="{esc(t.fill)}"'
            f' data-value="{value}"><title>{esc(t.name)}: {esc(t.detail)}</title>'
            f'<rect x="{x}" y="{y}" width="{TILE}" height="{TILE}" rx="5" fill="{esc(t.fill)}"/>'
            f'<text class="code" x="{x + TILE / 2}" y="{y + 18}">{esc(t.code)}</text>'
            f'<text class="value" x="{x + TILE / 2}" y="{y + 36}">{esc(t.text)}</text></g>'
        )
    return (
        f'<svg class="tiles" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img"'
        f' aria-label="{esc(label)}">{"".join(parts)}</svg>'
    )


def legend(keys: Sequence[tuple[str, str]]) -> str:
    items = "".join(
        f'<li><svg width="14" height="14"><rect width="14" height="14" rx="3" fill="{esc(fill)}"/></svg>'
        f" {esc(text)}</li>"
        for fill, text in keys
    )
    return f'<ul class="legend">{items}</ul>'
