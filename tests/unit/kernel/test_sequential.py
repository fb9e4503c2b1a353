"""The shared mSPRT's summaries: SQL-style sums give what a list of values gives."""

from __future__ import annotations

import pytest

from mloop._sequential import MetricSummary


def test_a_summary_from_sums_equals_the_summary_of_the_values() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.5]
    direct = MetricSummary.of(values)
    summed = MetricSummary.of_sums(len(values), sum(values), sum(v * v for v in values))
    assert summed.n == direct.n
    assert summed.mean == pytest.approx(direct.mean)
    assert summed.variance == pytest.approx(direct.variance)
    assert MetricSummary.of_sums(0, 0.0, 0.0) == MetricSummary()
    assert MetricSummary.of_sums(1, 0.7, 0.49) == MetricSummary(1, 0.7, 0.0)
