"""The fixed numbers behind the headline: each with its source, and how far it moves the headline.

The calibration (``docs/calibration.md``) estimates the score model's location, spread, genuine
location, minority and same-ethnicity shifts, the watchlisted share, the counting factors and the
arrest probability. Everything else the model needs is a fixed number: the score model's sex
shifts, probe and entry effects, "lambs", genuine spread and minority pattern, and the makeup of
watchlist and crowd. ``table()`` lists each and recomputes the headline (the posterior mean of the
expected false alerts in the Met's 3,000,000 recorded faces at 0.64 with 16,000 entries, the
headline experiment's crowd mix) with the number halved and doubled, every other setting and the
posterior draws unchanged. The calibration is **not** refitted, so a move says how much the
headline leans on the number given the fitted posterior, not what a refit would give.

``python -m sim.assumptions > docs/assumptions.md`` writes the page; a test keeps it current.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from . import examples
from .config import MINORITY_PATTERN, Experiment, ScoreParameters, load_experiment
from .crowd import place_shares, site_pool, watchlist_group_shares
from .draws import comparison_draws, draw, faces_per_passer_for, score_parameters_for
from .groups import ETHNICITIES, default_groups, group_shares
from .posterior import crowd_fpir, expected_false_alerts
from .scores import score_model

HEADLINE = "met_2025_headline"      # the shipped example (sim.examples), in a wheel too
DRAWS = 300


@dataclass(frozen=True)
class Assumption:
    """A fixed number of the model, where it is set and where it comes from."""

    setting: str          # dotted setting, or "minority_pattern.<ethnicity>"
    value: float
    source: str


ASSUMPTIONS = (
    Assumption("matcher.scores.same_sex_shift", 0.10,
               "NIST IR 8280: impostor scores are higher within a sex; size assumed (logit units)"),
    Assumption("matcher.scores.probe_female_shift", 0.03,
               "NIST IR 8280: higher false-match rates for women; size assumed"),
    Assumption("matcher.scores.probe_effect_sd", 0.03,
               "Doddington et al. 1998 ('wolves'): probes differ; size assumed"),
    Assumption("matcher.scores.entry_effect_sd", 0.03, "entries differ ('lambs' in general); size assumed"),
    Assumption("matcher.scores.lamb_share", 0.01,
               "Doddington et al. 1998: a few entries attract matches; assumed"),
    Assumption("matcher.scores.lamb_shift", 0.10, "how much higher lambs score; assumed"),
    Assumption("matcher.scores.genuine_sd", 0.50, "spread of mated scores; sets TPIR's slope; assumed"),
    Assumption("minority_pattern.asian", MINORITY_PATTERN["asian"],
               "NIST IR 8280's ordering of differentials (Black highest, then Asian)"),
    Assumption("minority_pattern.mixed", MINORITY_PATTERN["mixed"], "assumed between White and Asian"),
    Assumption("minority_pattern.other", MINORITY_PATTERN["other"], "assumed between White and Asian"),
    Assumption("watchlist.female_share", 0.15,
               "assumed: the Met does not publish its lists' makeup by sex"),
    Assumption("crowd.female_share", 0.50, "even split (the 2021 census gives 51% of residents female)"),
)


@cache
def headline() -> Experiment:
    """The headline experiment, as shipped with the package (``sim.examples``)."""
    return load_experiment(examples.path(HEADLINE))


def headline_mix(experiment: Experiment) -> np.ndarray:
    """The headline programme's expected crowd mix: its site pool's census mixes, as often as the
    generator draws them."""
    gen = experiment.programme.generator
    assert gen is not None
    pool = site_pool(gen)
    eth = np.mean([place_shares(p["ward_code"], p["borough"]) for p in pool], axis=0)
    return group_shares(experiment.crowd.female_share, dict(zip(ETHNICITIES, eth, strict=True)))


def _with_pattern(experiment: Experiment, ethnicity: str, weight: float, draws: np.ndarray) -> np.ndarray:
    """The headline under a changed minority-pattern weight (the pattern multiplies each draw's shift)."""
    groups = default_groups()
    cmp_ = experiment.comparison
    assert cmp_ is not None
    wl = experiment.watchlist
    shares = watchlist_group_shares(wl.female_share, wl.ethnicity_shares, groups)
    mix = headline_mix(experiment)
    pattern = {**MINORITY_PATTERN, ethnicity: weight}
    out = np.empty(len(draws))
    for i, index in enumerate(draws):
        values = draw(int(index))
        base = score_parameters_for(experiment, values).model_dump()
        base["probe_ethnicity_shift"] = {e: values["minority_probe_shift"] * pattern[e] for e in ETHNICITIES}
        model = score_model(ScoreParameters(**base), groups)
        fp = crowd_fpir(model, shares, wl.size, experiment.matcher.threshold, experiment.crowd)
        out[i] = cmp_.faces / faces_per_passer_for(experiment, values) * float(mix @ fp)
    return out


def headline_value(experiment: Experiment, assumption: Assumption | None = None, factor: float = 1.0,
                   draws: int = DRAWS) -> float:
    """The posterior mean of expected false alerts in the reported faces, with ``assumption``
    scaled by ``factor`` (every other number as shipped)."""
    chosen = comparison_draws(draws)
    cmp_ = experiment.comparison
    assert cmp_ is not None
    if assumption is not None and assumption.setting.startswith("minority_pattern."):
        return float(_with_pattern(experiment, assumption.setting.split(".", 1)[1],
                                   assumption.value * factor, chosen).mean())
    if assumption is not None:
        experiment = experiment.with_values({assumption.setting: assumption.value * factor})
    mix = headline_mix(experiment)
    return float(expected_false_alerts(experiment, mix, cmp_.faces, chosen).mean())


def table(draws: int = DRAWS) -> list[dict[str, Any]]:
    """Per assumption: the headline at the shipped value, halved and doubled."""
    experiment = headline()
    base = headline_value(experiment, draws=draws)
    rows = []
    for a in ASSUMPTIONS:
        half = headline_value(experiment, a, 0.5, draws)
        double = headline_value(experiment, a, 2.0, draws)
        rows.append({"setting": a.setting, "value": a.value, "source": a.source, "baseline": base,
                     "halved": half, "doubled": double})
    return rows


def render(draws: int = DRAWS) -> str:
    rows = table(draws)
    base = rows[0]["baseline"]
    lines = ["# Fixed numbers and how far they move the headline (generated)", "",
             "Generated by `python -m sim.assumptions > docs/assumptions.md`; a test keeps it current.", "",
             "The headline here is the posterior mean of the expected false alerts in 3,000,000 recorded "
             f"faces at 0.64 with 16,000 entries and the headline experiment's crowd: **{base:.2f}** "
             f"({draws} posterior draws). Each row halves and doubles one fixed number, every other "
             "setting and the posterior draws unchanged. The calibration is not refitted: a large move "
             "says the headline leans on that number given the fitted posterior. Quantities the "
             "calibration estimates are in docs/calibration.md, not here.", "",
             "| setting | value | halved | doubled | source |", "|---|---|---|---|---|"]
    for r in rows:
        half, double = r["halved"], r["doubled"]
        lines.append(f"| `{r['setting']}` | {r['value']:g} | {half:.2f} ({half / base - 1:+.0%}) | "
                     f"{double:.2f} ({double / base - 1:+.0%}) | {r['source']} |")
    lines += ["", "`minority_pattern.*` is the weight of an ethnicity's probe shift relative to Black "
              "passers' (the calibration estimates the Black shift; the pattern is fixed). "
              "Review settings (`review.*`) do not enter the matcher's false alerts; docs/review.md "
              "gives their sources.", ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - regenerates docs/assumptions.md
    print(render(), end="")
