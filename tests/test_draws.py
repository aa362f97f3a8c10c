"""Posterior draws into forward runs: what a draw sets in the score model."""

from __future__ import annotations

import math

import numpy as np

from sim import draws as dr
from sim.config import ScoreParameters
from sim.groups import default_groups
from sim.scores import GaussianNoise, ParetoTailNoise, score_model

GAUSSIAN_DRAW = {"impostor_location": -2.1, "impostor_sd": 0.38, "genuine_location": 1.0,
                 "same_ethnicity_shift": 0.2, "minority_probe_shift": 0.27}


def test_a_pareto_tail_draw_runs_the_simulators_pareto_noise():
    values = {**GAUSSIAN_DRAW, "tail_shape": 0.04, "tail_knot_sd": 3.0}
    params = ScoreParameters(**dr.score_values(values))
    assert (params.tail, params.tail_knot_sd, params.tail_shape) == ("pareto", 3.0, 0.04)
    noise = score_model(params, default_groups()).noise
    assert isinstance(noise, ParetoTailNoise) and (noise.knot, noise.shape, noise.scale) == (3.0, 0.04, 0.38)


def test_a_gaussian_draw_keeps_the_gaussian_noise():
    for values in (GAUSSIAN_DRAW, {**GAUSSIAN_DRAW, "tail_shape": math.nan, "tail_knot_sd": math.nan}):
        out = dr.score_values(values)
        assert "tail" not in out
        params = ScoreParameters(**out)
        assert isinstance(score_model(params, default_groups()).noise, GaussianNoise)
        assert np.isclose(params.probe_ethnicity_shift["black"], 0.27)
