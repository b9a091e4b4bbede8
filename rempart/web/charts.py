"""A stacked bar chart as inline SVG, made on the server (no script, no style attribute: the
CSP stays strict). The page shows the same numbers in a table for screen readers."""

from __future__ import annotations

import datetime as dt
from html import escape

PALETTE = ("#0b4f7c", "#c2571a", "#1d6b35", "#7a3e9d", "#a1192b", "#4a5560", "#8a5a00", "#2b8a9e")


def stacked_bars(days: list[dt.date], series: dict[str, list[int]], *, title: str) -> str:
    width, height, left, bottom, top = 720, 240, 44, 28, 12
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    peak = max(totals) if totals and max(totals) > 0 else 1
    step = (width - left - 8) / max(1, len(days))
    bar = step * 0.7
    scale = (height - bottom - top) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 24}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']  # fmt: skip
    parts.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
                 'stroke="#8a96a3"/>')  # fmt: skip
    parts.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end" font-size="11">{peak}'
                 "</text>")  # fmt: skip
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y: float = height - bottom
        for k, values in enumerate(series.values()):
            h = values[i] * scale
            if h > 0:
                y -= h
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                             f'fill="{PALETTE[k % len(PALETTE)]}"/>')  # fmt: skip
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
                     f'font-size="10">{day:%d/%m}</text>')  # fmt: skip
    legend_x = left
    for k, label in enumerate(series):
        parts.append(f'<rect x="{legend_x}" y="{height + 8}" width="10" height="10" '
                     f'fill="{PALETTE[k % len(PALETTE)]}"/>')  # fmt: skip
        parts.append(f'<text x="{legend_x + 14}" y="{height + 17}" font-size="11">'
                     f"{escape(label)}</text>")  # fmt: skip
        legend_x += 14 + 7 * len(label) + 18
    parts.append("</svg>")
    return "".join(parts)


def horizontal_bars(items: list[tuple[str, int]], *, title: str) -> str:
    """One bar per label, longest first as given; the values written beside (the page shows
    them in a table too)."""
    row, left, width = 22, 230, 720
    height = row * len(items) + 8
    peak = max((v for _, v in items), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']  # fmt: skip
    for i, (label, value) in enumerate(items):
        y = 4 + i * row
        bar = (width - left - 90) * value / peak
        parts.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12">'
                     f"{escape(str(label)[:34])}</text>")  # fmt: skip
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{max(bar, 1):.1f}" height="14" '
                     f'fill="{PALETTE[0]}"/>')  # fmt: skip
        parts.append(f'<text x="{left + bar + 6:.1f}" y="{y + 14}" font-size="12">'
                     f"{value:,}</text>".replace(",", " "))  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)
