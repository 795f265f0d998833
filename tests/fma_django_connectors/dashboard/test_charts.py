"""The chart's geometry: one point per aggregate, oldest left, every spread bar inside round axis ticks."""

import math

import pytest

from fma_django_connectors.dashboard.charts import build_chart, summarize


def test_summary_is_mean_and_population_spread():
    summary = summarize(7, [1.0, 2.0, 3.0, 6.0])
    assert (summary.aggregate_id, summary.mean, summary.minimum, summary.maximum, summary.clients) == (7, 3, 1, 6, 4)
    assert summary.spread == pytest.approx(math.sqrt(3.5))


def test_points_left_to_right_with_higher_means_drawn_higher():
    chart = build_chart([summarize(3, [0.5, 0.6]), summarize(5, [0.9]), summarize(8, [0.7, 0.8])])
    xs = [point.x for point in chart.points]
    assert xs == sorted(xs)
    assert chart.left < xs[0]
    assert xs[-1] < chart.right
    assert [tick.label for tick in chart.x_ticks] == ["3", "5", "8"]
    middle, high, low = (point.y for point in chart.points)
    assert high < low < middle  # SVG's y grows downwards
    assert chart.polyline.count(",") == 3


def test_the_axis_covers_every_spread_bar_with_round_labels():
    chart = build_chart([summarize(1, [0.55, 0.57, 0.59]), summarize(2, [0.85, 0.87, 0.89])])
    assert [tick.label for tick in chart.y_ticks] == ["0.5", "0.6", "0.7", "0.8", "0.9"]
    for point in chart.points:
        assert chart.top <= point.y_high <= point.y <= point.y_low <= chart.bottom


def test_a_flat_series_still_has_a_range():
    chart = build_chart([summarize(1, [1.0]), summarize(2, [1.0])])
    assert [tick.label for tick in chart.y_ticks] == ["0.5", "0.75", "1", "1.25", "1.5"]
    assert chart.points[0].y_low == chart.points[0].y_high == chart.points[0].y


def test_at_most_a_dozen_aggregate_labels():
    chart = build_chart([summarize(index, [float(index)]) for index in range(50)])
    assert len(chart.points) == 50
    assert [tick.label for tick in chart.x_ticks] == [str(index) for index in range(0, 50, 5)]
