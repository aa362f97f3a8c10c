"""The fixed numbers' page: current, and each move computed from the model it describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import assumptions

PAGE = Path(__file__).resolve().parents[1] / "docs" / "assumptions.md"


@pytest.mark.slow
def test_the_page_is_current():
    assert PAGE.read_text() == assumptions.render(), \
        "regenerate: python -m sim.assumptions > docs/assumptions.md"


def test_a_number_the_false_alerts_do_not_depend_on_moves_nothing():
    """Genuine scores' spread sets TPIR only: false alerts on non-watchlisted passers ignore it."""
    experiment = assumptions.headline()
    genuine = next(a for a in assumptions.ASSUMPTIONS if a.setting == "matcher.scores.genuine_sd")
    base = assumptions.headline_value(experiment, draws=20)
    assert assumptions.headline_value(experiment, genuine, 2.0, draws=20) == pytest.approx(base, rel=1e-12)


def test_a_larger_same_sex_shift_raises_false_alerts():
    experiment = assumptions.headline()
    shift = next(a for a in assumptions.ASSUMPTIONS if a.setting == "matcher.scores.same_sex_shift")
    low, high = (assumptions.headline_value(experiment, shift, f, draws=20) for f in (0.5, 2.0))
    assert low < assumptions.headline_value(experiment, draws=20) < high
