"""Intervals and the comparison with a reported figure."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.metrics import clopper_pearson, poisson_interval, summary_value


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 10**7).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_is_binomtests_exact_interval(kn):
    k, n = kn
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n)
    assert low == pytest.approx(ci.low, rel=1e-6, abs=1e-12)
    assert high == pytest.approx(ci.high, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("count", [0, 1, 12, 1000])
def test_poisson_interval_covers_its_count_and_matches_the_chi2_form(count):
    low, high = poisson_interval(count)
    assert low <= count <= high
    # the exact (Garwood) interval: P(X >= count | low) = 0.025 and P(X <= count | high) = 0.025
    if count > 0:
        assert stats.poisson.sf(count - 1, low) == pytest.approx(0.025, rel=1e-6)
    assert stats.poisson.cdf(count, high) == pytest.approx(0.025, rel=1e-6)


@pytest.mark.parametrize("strings", ["object", "str"])
def test_summary_value_is_the_first_row_of_its_cell_group_and_metric(strings):
    """The same answer as pandas' own masks, whether strings are numpy objects or arrow-backed
    (a summary read back from its CSV), with nan for a row that is not there."""
    rows = [(cell, group, metric) for cell in (0, 1, 2) for group in ("all", "female_black")
            for metric in ("faces", "false_alerts")]
    rows.append((1, "all", "faces"))                       # a second row of a key: the first wins
    summary = pd.DataFrame(rows, columns=["cell", "group", "metric"])
    summary["estimate"] = range(len(rows))
    summary["ci_low"] = summary["estimate"] - 0.5
    summary["ci_high"] = summary["estimate"] + 0.5
    summary = summary.astype({"group": strings, "metric": strings})
    for cell in (0, 1, 2, 3):
        for group in ("all", "female_black", "male_white"):
            for metric in ("faces", "false_alerts", "tpir"):
                hit = summary[(summary.cell == cell) & (summary.group == group) & (summary.metric == metric)]
                got = summary_value(summary, cell, group, metric)
                if hit.empty:
                    assert all(math.isnan(v) for v in got)
                else:
                    first = hit.iloc[0]
                    assert got == (first.estimate, first.ci_low, first.ci_high)
