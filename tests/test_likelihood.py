"""The calibration's likelihood: closed forms against the package and against brute force."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from scipy import stats

from sim import config
from sim import data as shipped
from sim import likelihood as lk
from sim import records as rec
from sim.config import ScoreParameters
from sim.crowd import watchlist_group_shares
from sim.groups import ETHNICITIES, default_groups, group_shares
from sim.scores import score_model, to_latent
from sim.search import build_search_table
from sim.watchlist import expected_watchlist


@pytest.fixture(scope="module")
def data():
    return lk.Data.from_records(rec.fit_rows())


def test_fixed_score_constants_are_the_packages():
    fields = ScoreParameters.model_fields
    assert (lk.SAME_SEX_SHIFT, lk.PROBE_FEMALE_SHIFT, lk.PROBE_EFFECT_SD, lk.ENTRY_EFFECT_SD, lk.LAMB_SHARE,
            lk.LAMB_SHIFT, lk.GENUINE_SD) == (0.10, 0.03, 0.03, 0.03, 0.01, 0.10, 0.50)
    for name, value in (("same_sex_shift", lk.SAME_SEX_SHIFT), ("genuine_sd", lk.GENUINE_SD),
                        ("lamb_share", lk.LAMB_SHARE), ("lamb_shift", lk.LAMB_SHIFT)):
        assert fields[name].default == value
    assert lk.MINORITY_PATTERN == {"asian": 0.6, "black": 1.0, "mixed": 0.4, "white": 0.0, "other": 0.4}
    assert getattr(config, "MINORITY_PATTERN", lk.MINORITY_PATTERN) == lk.MINORITY_PATTERN
    assert lk.PREVALENCE_REFERENCE_SIZE == 15_000 == getattr(config, "REFERENCE_WATCHLIST_SIZE", 15_000)
    assert lk.REFERENCE_FOOTFALL_PER_HOUR == getattr(config, "REFERENCE_FOOTFALL_PER_HOUR", 1000.0) == 1000.0
    assert lk.WATCHLIST_FEMALE_SHARE == config.Watchlist.model_fields["female_share"].default == 0.15


def test_watchlist_and_npl_crowd_are_londons_mix(data):
    groups = default_groups()
    np.testing.assert_allclose(data.watchlist, watchlist_group_shares(0.15, "london", groups), rtol=1e-12)
    london = np.array([shipped.london_shares()[e] for e in ETHNICITIES])
    np.testing.assert_allclose(data.npl_crowd, group_shares(0.5, london), rtol=1e-12)


def test_closed_form_fpir_and_tpir_agree_with_the_package(data):
    """The closed forms against the package's exact hazard (``fpir_quadrature``: Gauss-Hermite over
    the effects) and its search table (``SearchTable.true_alert_probabilities``)."""
    posterior = pytest.importorskip("sim.posterior")
    fpir_quadrature = getattr(posterior, "fpir_quadrature", None)
    if fpir_quadrature is None:
        pytest.skip("sim.posterior no longer has fpir_quadrature")
    x = np.array([0.41, math.log(0.307), 1.02, 1.8, 0.16])
    s = lk.score_from(*map(float, x))
    model = score_model(ScoreParameters().model_copy(update=s.score_parameters()), default_groups())
    worst_f = 0.0
    for t in (0.56, 0.60, 0.62, 0.64):
        for n in (1_000, 10_000, 16_000):
            ref = fpir_quadrature(model, data.watchlist, n, t, nodes=12)
            mine = s.fpir(lk.logit(np.array([t])), n, data.watchlist)[0]
            worst_f = max(worst_f, float(np.max(np.abs(mine / ref - 1))))
    table = build_search_table(model, expected_watchlist(10_000, data.watchlist, model.entry_effects),
                               float(to_latent(0.56)))
    worst_t = 0.0
    for t in (0.60, 0.64):
        ref = table.true_alert_probabilities(float(to_latent(t)), 1.0, 16_000 / 10_000)
        mine = s.tpir(lk.logit(np.array([t])))[0]
        worst_t = max(worst_t, float(np.max(np.abs(mine / ref - 1))))
    assert worst_f < 3e-3      # the probe-effect Jensen term at N f ~ 1e-3 (module docstring)
    assert worst_t < 1e-3      # an impostor beating the own entry, neglected


def test_nist_differential_is_reproduced_and_the_shift_is_nonnegative():
    for log10_d in (0.5, 1.0, 1.5, 2.5):
        s = lk.score_from(0.4, math.log(0.3), 1.0, log10_d, 0.16)
        assert s.valid and s.minority_shift >= 0
        fmr = s.one_to_one_fmr(float(lk.logit(0.60)))
        assert math.isclose(fmr.max() / fmr.min(), 10 ** log10_d, rel_tol=1e-6)


def test_nb_logpmf_matches_scipy_and_its_poisson_limit():
    y = np.array([0, 1, 3, 7, 20])
    mu = np.array([0.3, 1.5, 2.0, 9.0, 12.0])
    lgy = np.array([math.lgamma(v + 1) for v in y])
    for phi in (0.05, 0.5, 2.0):
        n = 1 / phi
        np.testing.assert_allclose(lk.nb_logpmf(y, mu, phi, lgy, 20), stats.nbinom.logpmf(y, n, n / (n + mu)),
                                   rtol=1e-10)
        np.testing.assert_allclose(lk.nb_logpmf_log(y, np.log(mu), phi, lgy, 20),
                                   lk.nb_logpmf(y, mu, phi, lgy, 20))
    np.testing.assert_allclose(lk.nb_logpmf(y, mu, 1e-12, lgy, 20), stats.poisson.logpmf(y, mu), rtol=1e-8)


def test_footfall_block_equals_the_dense_gaussian(data):
    m = lk.Model(lk.ACCOUNTS["c"], data)
    x = np.array([p.transform(0.5) for p in m.priors])
    x[m.index["site_sd"]], x[m.index["day_sd"]] = 0.6, 0.35
    r = data.ff_y - np.log(m.factors(x))[data.ff_regime]
    z = (data.ff_ward[:, None] == np.arange(data.ff_ward.max() + 1)[None]).astype(float)
    cov = 0.35 ** 2 * np.eye(len(r)) + 0.6 ** 2 * z @ z.T + lk.FOOTFALL_PRIOR[1] ** 2
    ref = stats.multivariate_normal(np.full(len(r), lk.FOOTFALL_PRIOR[0]), cov).logpdf(r)
    assert math.isclose(m.footfall_term(x), ref, rel_tol=1e-10)


def test_regime_mixture_likelihood_equals_the_direct_sum(data):
    m = lk.Model(lk.ACCOUNTS["c+d"], data)
    rng = np.random.default_rng(5)
    while True:
        x = m.prior_transform(rng.random(m.ndim))
        if np.isfinite(m.loglike(x)):
            break
    mt, mf = m.expected(x, data)
    pt, pf = m.get(x, "phi_true"), m.get(x, "phi_false")

    def nb(y, mu, phi):
        n = 1 / phi
        return stats.nbinom.pmf(y, n, n / (n + mu))

    direct = np.log(np.sum(np.exp(data.regime_logp) * nb(data.y_true[:, None], mt, pt)
                           * nb(data.y_false[:, None], mf, pf), axis=1))
    np.testing.assert_allclose(m.records_terms(x, m.score(x)), direct, rtol=1e-9, atol=1e-9)


def test_prior_transform_and_log_prior_agree():
    m = lk.Model(lk.ACCOUNTS["c+d"], lk.Data.from_records(rec.fit_rows()[:5]))
    u = np.full(m.ndim, 0.3)
    x = m.prior_transform(u)
    # the density of the transform is the product of the marginal densities
    expected = 0.0
    for p, v in zip(m.priors, x, strict=True):
        if p.kind == "uniform":
            expected -= math.log(p.b - p.a)
        elif p.kind == "normal":
            expected += stats.norm(p.a, p.b).logpdf(v)
        else:
            expected += stats.halfnorm(scale=p.a).logpdf(v)
    assert math.isclose(m.log_prior(x), expected, rel_tol=1e-12)


def test_met_2025_figure_is_never_an_input(monkeypatch, data):
    src = inspect.getsource(lk.Model) + inspect.getsource(lk.Data)
    assert "met_claims_2025" not in src and "3_000_000" not in src
    m = lk.Model(lk.ACCOUNTS["c2"], data)
    x = np.array([p.transform(0.5) for p in m.priors])
    before = m.loglike(x)
    figures = dict(shipped.published_figures())
    figures["met_claims_2025"] = {**figures["met_claims_2025"], "false_alerts": 1200, "faces_scanned": 10}
    monkeypatch.setattr(shipped, "published_figures", lambda: figures)
    assert lk.Model(lk.ACCOUNTS["c2"], lk.Data.from_records(rec.fit_rows())).loglike(x) == before


def test_arrest_posterior_is_the_conjugate_beta(data):
    a, b = lk.arrest_posterior(data)
    arrests = int(np.minimum(data.arrests, data.y_true).sum())
    assert (a, b) == (1 + arrests, 1 + int(data.y_true.sum()) - arrests)
