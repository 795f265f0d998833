"""Server-side SVG charts: geometry computed here, drawn by the ``dashboard/_chart.svg`` template.

Plain Python (no Django): the page needs no JavaScript and no chart library, and the SVG carries no
URL, so it renders the same behind API Gateway's stage path as on the local server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH = 760
HEIGHT = 300
MARGIN_LEFT = 56
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 44
# About this many horizontal grid lines; the exact count follows from a round step (1, 2, 2.5 or 5 times 10^k).
Y_TICKS = 5


@dataclass(frozen=True)
class MetricSummary:
    """One aggregate's validation results for one metric, over the clients that reported it."""

    aggregate_id: int
    mean: float
    spread: float  # population standard deviation
    minimum: float
    maximum: float
    clients: int


@dataclass(frozen=True)
class ChartPoint:
    summary: MetricSummary
    x: float
    y: float
    y_low: float  # the spread bar, mean - spread ... mean + spread
    y_high: float


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: tuple[ChartPoint, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)


def summarize(aggregate_id: int, values: list[float]) -> MetricSummary:
    """Mean, spread (population standard deviation), extremes and count of ``values`` (not empty)."""
    mean = math.fsum(values) / len(values)
    spread = math.sqrt(math.fsum((value - mean) ** 2 for value in values) / len(values))
    return MetricSummary(aggregate_id, mean, spread, min(values), max(values), len(values))


def _round_step(span: float, intervals: int) -> float:
    """The smallest of 1, 2, 2.5, 5 times 10^k at least ``span / intervals``, so tick labels stay short."""
    raw = span / intervals
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(factor * magnitude for factor in (1, 2, 2.5, 5, 10) if raw <= factor * magnitude * (1 + 1e-9))


def build_chart(summaries: list[MetricSummary]) -> Chart:
    """Place one point per aggregate, oldest on the left, with a y axis covering every spread bar."""
    low = min(summary.mean - summary.spread for summary in summaries)
    high = max(summary.mean + summary.spread for summary in summaries)
    if high - low < 1e-12:
        # A flat series still needs a visible axis range.
        low, high = low - 0.5, high + 0.5
    step = _round_step(high - low, Y_TICKS - 1)
    low, high = math.floor(low / step) * step, math.ceil(high / step) * step
    tick_values = [low + step * i for i in range(round((high - low) / step) + 1)]
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    bottom = HEIGHT - MARGIN_BOTTOM

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * plot_height

    slot = plot_width / len(summaries)
    points = tuple(
        ChartPoint(
            summary=summary,
            x=MARGIN_LEFT + slot * (index + 0.5),
            y=y_of(summary.mean),
            y_low=y_of(summary.mean - summary.spread),
            y_high=y_of(summary.mean + summary.spread),
        )
        for index, summary in enumerate(summaries)
    )
    # At most ~12 aggregate ids under the axis, so labels never overlap.
    every = max(1, math.ceil(len(points) / 12))
    x_ticks = tuple(Tick(point.x, str(point.summary.aggregate_id)) for point in points[::every])
    # Rounded to the step's precision, so 0.1 + 0.2 is labelled 0.3.
    y_ticks = tuple(Tick(y_of(value), f"{round(value, 12):.6g}") for value in tick_values)
    return Chart(WIDTH, HEIGHT, MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, bottom, points, x_ticks, y_ticks)
