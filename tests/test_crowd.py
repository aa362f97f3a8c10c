"""The crowd (sim.crowd): how the watchlisted share follows footfall."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.config import REFERENCE_FOOTFALL_PER_HOUR
from sim.crowd import footfall_factors


@given(st.floats(1e-3, 1e7), st.floats(-2.0, 2.0))
def test_the_footfall_factor_is_the_power_law_in_ordinary_ranges(passers_per_hour, elasticity):
    got = footfall_factors(np.array([passers_per_hour]), elasticity)[0]
    assert got == pytest.approx((passers_per_hour / REFERENCE_FOOTFALL_PER_HOUR) ** elasticity, rel=1e-12)


@given(st.floats(0.0, 1e300), st.floats(-50.0, 50.0))
def test_the_footfall_factor_is_finite_and_zero_where_nobody_passes(passers_per_hour, elasticity):
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # no overflow on the way either
        got = footfall_factors(np.array([passers_per_hour, 0.0]), elasticity)
    assert np.isfinite(got).all() and got[0] >= 0 and got[1] == 0.0
