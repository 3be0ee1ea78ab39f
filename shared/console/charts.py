"""Server-rendered SVG charts: no JavaScript, no CDN, deterministic markup (pure code, tested without I/O).

Why SVG on the server: pages must work without JavaScript and the console ships no build step. Each chart
is an ``<svg role="img">`` with a ``<title>`` and ``<desc>`` and is followed by its numbers as a table
(the page puts it in ``<details>``), so screen readers and keyboard users get the same facts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape as _escape

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 16, 44
# High-contrast colours that stay distinct for the common colour-vision deficiencies (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def escape(text: str) -> str:
    """Text safe inside SVG: characters XML forbids are dropped, markup characters escaped."""
    return _escape(_NOT_XML.sub("", text))


def nice_max(value: int) -> int:
    """The smallest 1-2-5 x 10^n at or above ``value`` (at least 1): a readable top of the axis."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _frame(title: str, desc: str, body: list[str], legend: Sequence[str]) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in title.lower())[:40]
    items = [
        f'<g transform="translate({PAD_L + i * 150},{HEIGHT - 12})">'
        f'<rect width="10" height="10" fill="{PALETTE[i % 7]}"/>'
        f'<text x="14" y="9">{escape(name)}</text></g>'
        for i, name in enumerate(legend)
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart" '
        f'aria-labelledby="{slug}-t {slug}-d"><title id="{slug}-t">{escape(title)}</title>'
        f'<desc id="{slug}-d">{escape(desc)}</desc>' + "".join(body) + "".join(items) + "</svg>"
    )


def _axis(top: int, label_every: int, labels: Sequence[str], slot: float) -> list[str]:
    plot_h = HEIGHT - PAD_T - PAD_B
    out = [
        f'<line x1="{PAD_L}" y1="{PAD_T + plot_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + plot_h}" stroke="#333"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 4}" text-anchor="end">{top}</text>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + plot_h}" text-anchor="end">0</text>',
    ]
    for i, label in enumerate(labels):
        if i % label_every == 0:
            x = PAD_L + slot * i + slot / 2
            out.append(f'<text x="{x:.1f}" y="{PAD_T + plot_h + 14}" text-anchor="middle">{escape(label)}</text>')
    return out


def _plot(labels: Sequence[str], series: Mapping[str, Sequence[int]]) -> tuple[list[str], int, int, float, list[str]]:
    """What every chart of series over labels shares: the series names, the scale's top, the plot height, the
    width of one label's slot and the axes already drawn."""
    top = nice_max(max((int(v) for s in series.values() for v in s), default=0))
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    slot = plot_w / len(labels)
    return list(series), top, plot_h, slot, _axis(top, max(1, len(labels) // 8), [lb[-5:] for lb in labels], slot)


def bars(title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], *, unit: str = "") -> str:
    """Grouped bars: one group per label, one bar per series (e.g. paid vs failed per day)."""
    if not labels or not series:
        return _frame(title, "no data", [], [])
    names, top, plot_h, slot, body = _plot(labels, series)
    bar_w = max(1.0, slot * 0.8 / len(names))
    for si, name in enumerate(names):
        for i, v in enumerate(series[name]):
            h = plot_h * int(v) / top
            x = PAD_L + slot * i + slot * 0.1 + bar_w * si
            body.append(
                f'<rect x="{x:.1f}" y="{PAD_T + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[si % 7]}"><title>{escape(labels[i])} {escape(name)}: {int(v)}{unit}</title></rect>'
            )
    desc = "; ".join(f"{n}: total {sum(int(v) for v in series[n])}{unit}" for n in names)
    return _frame(title, desc, body, names)


def line(title: str, labels: Sequence[str], series: Mapping[str, Sequence[int]], *, unit: str = "") -> str:
    """One polyline per series over the labels (e.g. revenue per day per currency)."""
    if not labels or not series:
        return _frame(title, "no data", [], [])
    names, top, plot_h, slot, body = _plot(labels, series)
    for si, name in enumerate(names):
        pts = " ".join(
            f"{PAD_L + slot * i + slot / 2:.1f},{PAD_T + plot_h - plot_h * int(v) / top:.1f}"
            for i, v in enumerate(series[name])
        )
        body.append(f'<polyline points="{pts}" fill="none" stroke="{PALETTE[si % 7]}" stroke-width="2"/>')
    desc = "; ".join(f"{n}: last {int(series[n][-1]) if series[n] else 0}{unit}" for n in names)
    return _frame(title, desc, body, names)


def days(first: str, count: int) -> list[str]:
    """``count`` ISO dates from ``first`` on: the x axis of the per-day charts."""
    import datetime as dt

    start = dt.date.fromisoformat(first)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(count)]
