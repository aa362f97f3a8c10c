"""lfrsim replay: the records checked against the shipped posterior, and docs/validation.md."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim import records as rec
from sim import replay
from sim.cli import main

PAGE = Path(__file__).resolve().parents[1] / "docs" / "validation.md"


def test_the_committed_validation_page_is_current():
    text, _ = replay.validation_page()
    assert PAGE.read_text() == text, "docs/validation.md is stale: lfrsim replay --page docs/validation.md"


def test_replay_predicts_every_fitted_deployment_and_period():
    res = replay.posterior_predictive(draws=40, seed=3)
    assert res["draws"] == 40 and len(res["per_deployment"]) == len(rec.fit_rows())
    assert [r["period"] for r in res["by_period"]] == list(rec.PERIODS)
    obs = sum(r["alerts"]["observed"] for r in res["per_deployment"])
    assert obs == sum(r["alerts"]["observed"] for r in res["by_period"]) == 58 + 633 + 54 + 593
    assert set(res["false_given_alerts"]) == set(rec.PERIODS)


def test_the_shipped_draws_become_a_posterior_of_the_shipped_account():
    post = replay.shipped_posterior(draws=10)
    assert post.matrix().shape == (10, post.model.ndim)
    assert np.isfinite([post.model.loglike(x) for x in post.matrix()]).all()


def test_lfrsim_replay_writes_the_page_its_figure_and_the_experiment(tmp_path):
    page, exp = tmp_path / "validation.md", tmp_path / "met.toml"
    assert main(["replay", "--draws", "30", "--page", str(page), "--experiment-file", str(exp)]) == 0
    assert page.read_text().startswith("# Validation against the Met's records")
    assert (tmp_path / "figures" / "predicted_vs_observed.png").stat().st_size > 0
    assert "[[programme.deployments]]" in exp.read_text()


def test_lfrsim_replay_refuses_a_bad_draw_count(capsys):
    assert main(["replay", "--draws", "0"]) == 2
    assert "--draws" in capsys.readouterr().err
