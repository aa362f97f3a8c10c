"""The Met's records as typed rows: periods, counting regimes, quirks, read from the package."""

from __future__ import annotations

import math

import numpy as np

from sim import data as shipped
from sim import groups
from sim import records as rec


def test_fitted_rows_and_their_period_totals():
    rows = rec.fit_rows()
    assert len(rows) == 186
    by = {s["period"]: s for s in rec.period_summary(rows)}
    assert [by[p]["alerts"] for p in rec.PERIODS] == [58, 633, 54, 593]
    assert [by[p]["false_alerts"] for p in rec.PERIODS] == [2, 23, 4, 0]
    assert by["2023 at 0.60"]["deployments"] == 16
    # every fitted row: a period, faces, a duration, a watchlist size, published alerts
    assert all(r.period and r.faces > 0 and r.hours > 0 and r.published_alerts for r in rows)


def test_periods_follow_threshold_and_date():
    for r in rec.load():
        if not r.period:
            assert not math.isfinite(r.threshold)
            continue
        if r.period == "Jul-Dec 2024 at 0.64":
            assert r.date >= "2024-07-25" and round(r.threshold, 2) == 0.64
        if r.period == "Jul 2024 at 0.62":
            assert "2024-07-11" <= r.date <= "2024-07-23"


def test_published_totals_win_where_they_disagree_and_are_flagged():
    flagged = {(r.date, r.site) for r in rec.load() if any("alerts_total" in q for q in r.quirks)}
    assert flagged == {("2024-01-10", "Westminster"), ("2024-10-09", "Broadway, Stratford"),
                       ("2024-10-09", "Kings St, Hammersmith")}
    for r in rec.load():
        if r.published_alerts and math.isfinite(r.alerts_total):
            assert r.alerts == round(r.alerts_total)


def test_regime_comes_from_faces_per_hour_alone():
    mix = rec.regime_mixture()
    assert 150 < math.exp(mix.mean_low) < 400 and 1200 < math.exp(mix.mean_high) < 2500
    rows = [r for r in rec.fit_rows() if r.period == "Jul 2024 at 0.62"]
    # the 0.62 week is the low-count regime except the one 2,500/h deployment
    assert sum(r.regime == "2024 low count" for r in rows) == len(rows) - 1
    assert all(r.p_low_count == 0.0 for r in rec.fit_rows() if r.date < "2024-01-01")


def test_empty_alert_cells_read_as_zero_add_rows_but_not_outcome_only_ones():
    more = rec.fit_rows(empty_as_zero=True)
    assert len(more) > len(rec.fit_rows())
    assert not any("outcomes published without alert figures" in r.quirks for r in more)


def test_vocabulary_and_files_are_the_packages():
    assert rec.GROUPS == groups.GROUP_NAMES and rec.ETHNICITIES == groups.ETHNICITIES
    assert rec.data_dir() == shipped.path(rec.RECORDS_FILE).parent
    np.testing.assert_allclose(rec.london_ethnicity_shares(),
                               [shipped.london_shares()[e] for e in groups.ETHNICITIES], rtol=1e-12)
    r = rec.fit_rows()[0]
    np.testing.assert_array_equal(r.group_shares(0.5), groups.group_shares(0.5, np.array(r.ethnicity_shares)))
