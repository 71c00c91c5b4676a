"""Charts drawn on the server as inline SVG geometry (no script, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from markupsafe import Markup

WIDTH = 720
HEIGHT = 220
MARGIN_LEFT = 40
MARGIN_BOTTOM = 24
MARGIN_TOP = 10


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    baseline: int = HEIGHT - MARGIN_BOTTOM
    top: int = MARGIN_TOP

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)

    def bars_svg(self) -> Markup:
        """The bars as SVG, each with its day and count as its title: written here, not in the
        template, as there is one per day (a year of registrations is hundreds)."""
        return Markup(  # noqa: S704 - numbers and ISO dates only
            "".join(
                f'<rect x="{bar.x}" y="{bar.y}" width="{bar.width}" height="{bar.height}"'
                f' class="chart-bar"><title>{bar.day.isoformat()}: {bar.count}</title></rect>'
                for bar in self.bars
            )
        )


def per_day_rows(per_day: list[tuple[date, int]]) -> Markup:
    """The table beside the chart: a row per day with registrations."""
    return Markup(  # noqa: S704 - numbers and ISO dates only
        "".join(
            f'<tr><td>{day.isoformat()}</td><td class="num">{n}</td></tr>' for day, n in per_day
        )
    )


def daily_bars(per_day: list[tuple[date, int]]) -> BarChart:
    """One bar per day from the first to the last day with registrations (gaps drawn as 0)."""
    if not per_day:
        return BarChart(bars=[], peak=0)
    counts = dict(per_day)
    first, last = per_day[0][0], per_day[-1][0]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    peak = max(counts.values())
    plot_width = WIDTH - MARGIN_LEFT - 4
    plot_height = HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    step = plot_width / len(days)
    gap = step * 0.15 if step > 4 else 0
    bars = []
    for i, day in enumerate(days):
        n = counts.get(day, 0)
        h = plot_height * n / peak if peak else 0
        bars.append(
            Bar(
                day=day,
                count=n,
                x=round(MARGIN_LEFT + i * step + gap / 2, 2),
                y=round(HEIGHT - MARGIN_BOTTOM - h, 2),
                width=round(max(step - gap, 0.5), 2),
                height=round(h, 2),
            )
        )
    return BarChart(bars=bars, peak=peak)
