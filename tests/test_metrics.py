"""Intervals and the comparison with a reported figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sim.config import Comparison
from sim.metrics import (
    SummaryIndex,
    _disparity_by_cell_frames,
    clopper_pearson,
    compare,
    disparity,
    disparity_by_cell,
    poisson_interval,
    summary_value,
)


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
                indexed = SummaryIndex(summary).value(cell, group, metric)
                if hit.empty:
                    assert all(math.isnan(v) for v in (*got, *indexed))
                else:
                    first = hit.iloc[0]
                    assert got == indexed == (first.estimate, first.ci_low, first.ci_high)
                    assert all(type(v) is float for v in indexed)


def _metrics_frame(seed: int) -> pd.DataFrame:
    """Tidy metrics of two cells: some replicates lack a metric, one value is nan."""
    rng = np.random.default_rng(seed)
    rows = []
    for cell in (0, 1):
        for rep in rng.permutation(7).tolist():
            for group in ("all", "female_black"):
                for metric in ("faces", "false_alerts", "expected_false_alerts", "implied_threshold", "ppv"):
                    if rng.random() < 0.15 and metric != "implied_threshold":
                        continue
                    value = float(rng.gamma(2.0, 10.0)) if metric != "implied_threshold" else rng.random()
                    rows.append((cell, rep, group, metric, value))
    frame = pd.DataFrame(rows, columns=["cell", "replicate", "group", "metric", "value"])
    frame.loc[3, "value"] = math.nan
    return frame.astype({"group": "str", "metric": "str"})


def _compare_by_pivot(metrics: pd.DataFrame, cell: int, comparison: Comparison) -> dict[str, float]:
    """compare's numbers as a pivot of the cell's rows gives them (what it computed before)."""
    wide = metrics[(metrics["cell"] == cell) & (metrics["group"] == "all")].pivot(
        index="replicate", columns="metric", values="value")
    faces, false = float(wide["faces"].sum()), float(wide["false_alerts"].sum())
    expected = float(wide["expected_false_alerts"].sum())
    implied = wide["implied_threshold"].to_numpy(dtype=float)
    return {"simulated_faces": faces, "simulated_false_alerts": false,
            "expected_per_reported_faces": expected * comparison.faces / faces,
            "implied_threshold": float(np.median(implied[np.isfinite(implied)]))}


@pytest.mark.parametrize("seed", range(5))
def test_compare_gives_the_pivots_numbers_to_the_last_bit(seed):
    metrics = _metrics_frame(seed)
    comparison = Comparison(label="report", false_alerts=12, faces=3_000_000, threshold=0.64)
    for cell in (0, 1):
        got = compare(metrics, cell, comparison)
        for key, value in _compare_by_pivot(metrics, cell, comparison).items():
            assert got[key] == value
    with pytest.raises(KeyError):
        compare(metrics[metrics["metric"] != "faces"], 0, comparison)
    with pytest.raises(ValueError, match="duplicate"):
        compare(pd.concat([metrics, metrics.iloc[:1]]), int(metrics["cell"].iloc[0]), comparison)


def _summary_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for cell in (2, 0, 1):
        for group in ("all", "b", "a", "c"):
            for metric in ("expected_false_alerts", "nonmated_passers", "false_alert_rate"):
                pick = rng.random()
                estimate = (0.0 if pick < 0.15 else math.nan if pick < 0.25 and group != "all"
                            else float(rng.gamma(2.0)))
                rows.append((cell, 0.5 + cell / 10, group, metric, estimate, 0.0, 1.0, 3))
    return pd.DataFrame(rows, columns=["cell", "matcher.threshold", "group", "metric", "estimate", "ci_low",
                                       "ci_high", "replicates"]).astype({"group": "str", "metric": "str"})


def _disparity_by_groupby(summary: pd.DataFrame, metric: str = "false_alert_rate") -> pd.DataFrame:
    rows = []
    part = summary[(summary["metric"] == metric) & (summary["group"] != "all")]
    for cell, frame in part.groupby("cell"):
        rates = frame.set_index("group")["estimate"].dropna()
        positive = rates[rates > 0]
        complete = len(positive) == len(rates) and len(rates) > 0
        rows.append({"cell": cell, "metric": metric, "highest_group": rates.idxmax() if len(rates) else "",
                     "lowest_group": rates.idxmin() if len(rates) else "",
                     "ratio": float(positive.max() / positive.min()) if complete else math.nan})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(8))
def test_disparities_are_the_frames_answers(seed):
    """Ties, zeros and nan rates: the same frames, to the types of their values, as groupby's."""
    summary = _summary_frame(seed)
    pd.testing.assert_frame_equal(disparity(summary), _disparity_by_groupby(summary), check_exact=True)
    got, want = disparity_by_cell(summary), _disparity_by_cell_frames(summary)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    for column in got.columns:
        assert [type(v) for v in got[column].tolist()] == [type(v) for v in want[column].tolist()]
