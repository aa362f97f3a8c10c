"""The settings reference and the metric glossary, generated from the schema itself.

``docs/reference.md`` is ``render()``'s output: every key of an experiment file with its type,
allowed range, default, unit and where its default comes from, then every metric a results folder
holds and what it counts. Types, ranges and defaults are read from the pydantic schema
(``sim.config``), so they cannot drift from the code; the meaning, unit and source of each key are
written below, and a test fails when the schema gains a key, or a run a metric, that this module
does not describe. Regenerate the page with ``python -m sim.reference > docs/reference.md``.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .config import CALIBRATED_SCORES, Experiment, ScoreParameters
from .errors import all_paths
from .replicate import COUNT_METRICS, PROGRAMME_METRICS, RATE_METRICS

MODEL = "docs/model.md"
REVIEW = "docs/review.md"
CALIBRATED = "calibrated: a posterior draw per replicate (docs/calibration.md)"

# dotted key -> (meaning, unit, where the default comes from)
SETTINGS: dict[str, tuple[str, str, str]] = {
    "experiment.name": (
        "identifier of the experiment; names its results folder results/NAME",
        "",
        "required",
    ),
    "experiment.description": ("free text shown at the top of summary.md", "", ""),
    "experiment.seed": ("root seed of every random stream (sim.seeds)", "", "arbitrary, recorded"),
    "experiment.replications": ("replicates of every sweep cell", "", "docs/sweeps.md"),
    "programme.deployments.site": ("name of the site", "", "required"),
    "programme.deployments.date": ("date of the deployment (ISO), for records", "", ""),
    "programme.deployments.borough": (
        "London borough: its census mix if no ward or shares are given",
        "",
        "2021 census",
    ),
    "programme.deployments.ward_code": ("2021 census ward code: its census mix", "", "2021 census"),
    "programme.deployments.duration_hours": ("how long the cameras run", "hours", "required"),
    "programme.deployments.footfall_per_hour": (
        "passers an hour: one rate, or an hourly profile spread evenly over the deployment",
        "passers/hour",
        "this or recorded_faces",
    ),
    "programme.deployments.recorded_faces": (
        "faces the force's record says the cameras saw; passers = recorded_faces / crowd.faces_per_passer",
        "recorded faces",
        "this or footfall_per_hour",
    ),
    "programme.deployments.capture_rate": (
        "share of passers whose face the camera captures",
        "probability",
        "1: every passer (faces seen count captured faces)",
    ),
    "programme.deployments.ethnicity_shares": (
        "the crowd's ethnic mix, overriding the place's census mix",
        "shares summing to 1",
        "the place's 2021 census mix",
    ),
    "programme.deployments.watchlist_size": (
        "entries of this deployment's list (the programme's make-up); a sweep of watchlist.size overrides it",
        "entries",
        "watchlist.size",
    ),
    "programme.deployments.threshold": (
        "this deployment's alert threshold; a sweep of matcher.threshold overrides it",
        "score in [0, 1]",
        "matcher.threshold",
    ),
    "programme.deployments.counting_regime": (
        "what one recorded face counted here: a regime of the records, or a probability for each "
        "(drawn per replicate); sets faces_per_passer from the posterior",
        "regime or probabilities",
        "crowd.counting_regime",
    ),
    "programme.deployments.faces_per_passer": (
        "recorded faces per passer at this deployment",
        "faces/passer",
        "from counting_regime, else crowd.faces_per_passer",
    ),
    "programme.deployments.period": (
        "calibration period (threshold x calendar) whose estimated effect the watchlisted share carries",
        "",
        "none: a new period (sim.draws)",
    ),
    "programme.deployments.watchlisted_per_passer": (
        "this deployment's watchlisted share (at the crowd's reference size and 1,000 passers an hour)",
        "probability",
        "from period, else crowd.watchlisted_per_passer",
    ),
    "programme.grid": (
        "a deployment grid (CSV in the Met records' columns): one deployment per row with faces and a "
        "duration (sim.grid). A path relative to the experiment file, or `lfrsim:NAME` for a grid "
        "shipped with the package wherever the file lives (`lfrsim:met_lfr_deployments_2020_2024.csv`, "
        "the Met's records)",
        "path",
        "none",
    ),
    "programme.grid_sha256": (
        "digest of the grid file, written by the resolved experiment (its deployments are then the grid's)",
        "sha256",
        "computed",
    ),
    "programme.generator.weeks": ("weeks the generated programme runs", "weeks", MODEL),
    "programme.generator.deployments_per_week": ("deployments a week", "", "Met: 4 a week before July 2025"),
    "programme.generator.days_per_week": (
        "days a week the deployments fall on",
        "days",
        "Met: 2 days a week",
    ),
    "programme.generator.start_date": ("date of the first deployment (ISO)", "", ""),
    "programme.generator.sites": (
        "'met_2024' (the wards of the Met's 2024 deployments), 'six_zones_2025', or "
        "a list of boroughs and ward codes",
        "",
        "Met deployment records 2024",
    ),
    "programme.generator.duration_hours": ("hours per deployment", "hours", "2024 median: 5 h 24 min"),
    "programme.generator.footfall_per_hour": (
        "mean passers an hour (1,000 when neither this nor recorded_faces_per_hour is given)",
        "passers/hour",
        "the calibration's reference footfall",
    ),
    "programme.generator.recorded_faces_per_hour": (
        "mean recorded faces an hour, turned into passers by crowd.faces_per_passer",
        "recorded faces/hour",
        "Met 2024: about 2,700 an hour (3 million faces a year)",
    ),
    "programme.generator.footfall_cv": (
        "spread of footfall between deployments (lognormal)",
        "coefficient of variation",
        "2024 faces per hour: cv about 0.55",
    ),
    "programme.generator.capture_rate": ("share of passers whose face is captured", "probability", "1"),
    "crowd.female_share": ("share of passers who are female", "probability", "even split (assumption)"),
    "crowd.watchlisted_per_passer": (
        "share of passers on a list of prevalence_reference_size entries at 1,000 passers an hour",
        "per passer",
        CALIBRATED,
    ),
    "crowd.footfall_elasticity": (
        "how the watchlisted share follows a site's passers an hour: (passers per hour / 1,000)^this",
        "",
        CALIBRATED,
    ),
    "crowd.watchlisted_dispersion": (
        "variance of a deployment's gamma effect (mean 1) on the watchlisted share",
        "",
        CALIBRATED,
    ),
    "crowd.period_sd": (
        "sd of a period's log effect on a calibrated watchlisted share (one draw per replicate)",
        "log units",
        CALIBRATED,
    ),
    "crowd.faces_per_passer": (
        "recorded faces per passer; 'frames' counts every frame",
        "faces/passer",
        CALIBRATED + ", in counting_regime",
    ),
    "crowd.counting_regime": (
        "which of the records' counting regimes recorded faces follow",
        "",
        "2025 assumed to count as late 2024 (docs/calibration.md)",
    ),
    "crowd.prevalence_reference_size": ("list size at which watchlisted_per_passer holds", "entries", MODEL),
    "crowd.prevalence_elasticity": (
        "how the watchlisted share follows list size: 1 in proportion, 0 not at all",
        "",
        MODEL,
    ),
    "crowd.frames_per_passer": ("mean frames the camera takes of one passer (1 + Poisson)", "frames", MODEL),
    "crowd.frame_correlation": (
        "correlation of one passer's frames: 1 = extra frames add nothing",
        "",
        MODEL,
    ),
    "watchlist.size": ("entries on the watchlist", "entries", "required"),
    "watchlist.female_share": ("share of entries who are female", "probability", MODEL),
    "watchlist.ethnicity_shares": (
        "the list's ethnic make-up, or 'london' for London's census mix",
        "shares summing to 1",
        MODEL,
    ),
    "matcher.threshold": (
        "alert threshold on the vendor's similarity scale",
        "score in [0, 1]",
        "Met: 0.64 since July 2024",
    ),
    "matcher.score_floor": (
        "passers below this best score are never scored one by one; 'auto' = lowest threshold in use",
        "score in [0, 1]",
        "lowest threshold of the experiment",
    ),
    "matcher.parameters": (
        "'calibrated' (a posterior draw per replicate), 'inline', or a score-parameter file: a path "
        "relative to the experiment file, or `lfrsim:NAME` for a shipped one "
        "(`lfrsim:score_parameters.toml`)",
        "",
        "lfrsim calibrate",
    ),
    "matcher.scores.impostor_location": ("mean latent impostor score", "logit", CALIBRATED),
    "matcher.scores.impostor_sd": ("spread of one impostor comparison's noise", "logit", CALIBRATED),
    "matcher.scores.same_sex_shift": ("impostor shift when probe and entry share sex", "logit", MODEL),
    "matcher.scores.same_ethnicity_shift": (
        "impostor shift when probe and entry share ethnicity",
        "logit",
        CALIBRATED + "; prior Howard et al. 2019",
    ),
    "matcher.scores.probe_female_shift": ("impostor shift of female probes", "logit", MODEL),
    "matcher.scores.probe_ethnicity_shift": (
        "impostor shift of probes of each ethnicity",
        "logit",
        CALIBRATED + " (minority pattern)",
    ),
    "matcher.scores.entry_female_shift": ("impostor shift of female entries", "logit", MODEL),
    "matcher.scores.entry_ethnicity_shift": ("impostor shift of entries of each ethnicity", "logit", MODEL),
    "matcher.scores.probe_effect_sd": ("spread of probe effects ('wolves')", "logit", MODEL),
    "matcher.scores.entry_effect_sd": ("spread of entry effects", "logit", MODEL),
    "matcher.scores.lamb_share": (
        "share of entries whose image attracts false matches ('lambs')",
        "probability",
        MODEL,
    ),
    "matcher.scores.lamb_shift": ("how much higher lambs score", "logit", MODEL),
    "matcher.scores.tail": ("impostor noise: 'gaussian', or 'pareto' above a knot", "", MODEL),
    "matcher.scores.tail_knot_sd": ("where the Pareto tail starts", "impostor sds", MODEL),
    "matcher.scores.tail_shape": ("Pareto tail shape (0: exponential)", "", MODEL),
    "matcher.scores.genuine_location": ("mean latent genuine (mated) score", "logit", CALIBRATED),
    "matcher.scores.genuine_sd": ("spread of genuine scores", "logit", MODEL),
    "matcher.scores.genuine_female_shift": ("genuine shift of female passers", "logit", MODEL),
    "matcher.scores.genuine_ethnicity_shift": ("genuine shift per ethnicity", "logit", MODEL),
    "review.operators": ("operators adjudicating alerts at once", "people", REVIEW),
    "review.officers": ("intervention officers on duty", "people", REVIEW),
    "review.officers_per_engagement": ("officers per team sent to a passer", "people", REVIEW),
    "review.require_operator_review": ("every alert reviewed before officers act", "", "Met statement"),
    "review.review_seconds_mean": ("operator time per alert", "seconds", REVIEW),
    "review.review_seconds_cv": ("spread of operator time (gamma)", "coefficient of variation", REVIEW),
    "review.p_confirm_true": ("P(operator confirms | true match)", "probability", REVIEW),
    "review.p_confirm_false": ("P(operator confirms | false match)", "probability", REVIEW),
    "review.automation_bias": (
        "rise in log-odds of confirming per 0.1 of score above threshold",
        "log-odds",
        REVIEW,
    ),
    "review.zone_length_m": ("length of street within reach of the officers", "metres", REVIEW),
    "review.walking_speed_m_s": ("mean walking speed of passers (gamma)", "m/s", REVIEW),
    "review.walking_speed_cv": ("spread of walking speeds", "coefficient of variation", REVIEW),
    "review.response_seconds_mean": ("time for a team to reach the passer", "seconds", REVIEW),
    "review.response_seconds_cv": ("spread of response times (gamma)", "coefficient of variation", REVIEW),
    "review.engagement_minutes_mean": ("team time per identity check", "minutes", REVIEW),
    "review.engagement_minutes_cv": (
        "spread of engagement times (gamma)",
        "coefficient of variation",
        REVIEW,
    ),
    "review.arrest_minutes_mean": ("team time per arrest", "minutes", REVIEW),
    "review.p_arrest": ("P(arrest | true match engaged)", "probability",
                        CALIBRATED + "; the records' arrests per true alert"),
    "review.p_other_disposal": ("P(other disposal | true match engaged)", "probability", REVIEW),
    "review.p_wrongful_arrest": ("P(wrongful arrest | false match engaged)", "probability", REVIEW),
    "sweep.mode": ("'product' (every combination) or 'zip' (i-th values together)", "", "docs/sweeps.md"),
    "sweep.parameters": ("dotted setting -> list of values, or {start, stop, step}", "", "docs/sweeps.md"),
    "sweep.parameters.start": ("first value of a range", "", ""),
    "sweep.parameters.stop": ("last value of a range (inclusive)", "", ""),
    "sweep.parameters.step": ("step of a range", "", ""),
    "comparison.label": ("what the reported figure is", "", "Met 2025 statement"),
    "comparison.faces": ("faces the report counts", "faces", "Met 2025: over 3 million"),
    "comparison.false_alerts": ("false alerts the report counts", "alerts", "Met 2025: 12"),
    "comparison.threshold": ("threshold behind the reported figure", "score in [0, 1]", "Met: 0.64"),
    "sensitivity.method": ("'sobol' (first-order and total indices) or 'morris' (a cheap screen)", "",
                           "docs/sensitivity.md"),
    "sensitivity.parameters.low": ("lowest value of a setting's range (dotted setting -> {low, high} or "
                                   "'posterior', its calibrated marginal)", "the setting's unit", "required"),
    "sensitivity.parameters.high": ("highest value of a setting's range", "the setting's unit", "required"),
    "sensitivity.samples": ("base sample: Sobol points are samples x (D + 2); Morris trajectories",
                            "", "docs/sensitivity.md"),
    "sensitivity.replicates": ("replicates per design point (0 to R - 1, the experiment's seed)", "",
                               "docs/sensitivity.md"),
    "sensitivity.outputs": ("outputs whose indices are estimated", "", "every output"),
    "sensitivity.seed": ("seed of the design and of the bootstrap", "", "arbitrary, recorded"),
    "sensitivity.conf_level": ("level of SALib's bootstrap intervals", "probability", "95%"),
    "sensitivity.bootstrap": ("bootstrap resamples of each index", "", "SALib's recommendation"),
    "sensitivity.morris_levels": ("grid levels of the Morris design", "", "SALib's default"),
    "sensitivity.calibration": ("add the calibration's joint posterior (which draw) as one input",
                                "", "docs/sensitivity.md"),
    "sensitivity.explain.parameters.low": ("lowest value of a grid axis (2 or 3 dotted settings)",
                                           "the setting's unit", "required"),
    "sensitivity.explain.parameters.high": ("highest value of a grid axis", "the setting's unit", "required"),
    "sensitivity.explain.points": ("values per grid axis", "", "docs/sensitivity.md"),
    "sensitivity.explain.level": ("level of the predictive interval the reported count is set against",
                                  "probability", "95%"),
    "sensitivity.explain.replicates": ("replicates (posterior draws) per grid point", "",
                                       "docs/sensitivity.md"),
    "groups.name": ("[[groups]]: the experiment's own passer groups, in place of the census's sex x "
                    "ethnicity; a group's name in every table (an identifier, not 'all')", "",
                    "left out: the census groups (docs/model.md, Declared groups)"),
    "groups.share": ("the group's share of passers at every deployment (summing to 1 over the groups)",
                     "share", "required"),
    "groups.watchlist_share": ("the group's share of watchlist entries (summing to 1)", "share", "required"),
    "groups.sex": ("the group's sex, if it has one: it then takes the score model's same-sex and "
                   "female shifts", "", "none"),
    "groups.probe_shift": ("shift of the impostor location of the group's probes (higher: more false "
                           "matches)", "logit", "docs/model.md"),
    "groups.entry_shift": ("shift of the impostor location against the group's watchlist entries",
                           "logit", "docs/model.md"),
    "groups.genuine_shift": ("shift of the genuine (mated) location of the group's watchlisted passers",
                             "logit", "docs/model.md"),
}

# metric -> what it is (counts are per programme per replicate unless a rate)
METRICS: dict[str, str] = {
    "passers": "people who walked past the cameras (captured or not)",
    "faces": "recorded faces: captured passers times crowd.faces_per_passer (or their frames)",
    "watchlisted_passers": "captured passers who are on the watchlist",
    "nonmated_passers": "captured passers who are not on the watchlist",
    "alerts": "searches whose best candidate reached the threshold",
    "true_alerts": "alerts whose best candidate is the passer's own entry",
    "false_alerts": "alerts whose best candidate is someone else's entry (watchlisted passers included)",
    "nonmated_false_alerts": "false alerts on passers not on the watchlist (FPIR's numerator)",
    "expected_false_alerts": "exact expectation of false alerts given the drawn crowd (closed form)",
    "expected_true_alerts": "exact expectation of true alerts given the drawn crowd (closed form)",
    "operator_rejected": "alerts an operator rejected",
    "lost_alerts": "confirmed alerts no team reached before the passer left the zone",
    "lost_true_alerts": "lost alerts that were true matches",
    "engagements": "alerts on which officers stopped the passer",
    "arrests": "engagements of a true match ending in arrest",
    "other_disposals": "engagements of a true match ending in another disposal",
    "no_action": "engagements of a true match ending with no action",
    "wrongful_stops": "engagements of a false match: a person stopped who is not the one sought",
    "wrongful_arrests": "engagements of a false match ending in arrest",
    "operator_busy_seconds": "operator-seconds spent reviewing",
    "officer_busy_seconds": "officer-seconds spent on engagements",
    "operator_wait_seconds_total": "summed wait from alert to operator",
    "officer_wait_seconds_total": "summed wait from confirmation to a team setting off",
    "seconds_to_engagement_total": "summed time from alert to officers reaching the passer",
    "false_alert_rate": "false alerts per face (false_alerts / faces)",
    "fpir": "false-positive identification rate: nonmated_false_alerts / nonmated_passers",
    "tpir": "true-positive identification rate: true_alerts / watchlisted_passers",
    "ppv": "precision of alerts: true_alerts / alerts",
    "deployments": "deployments in the programme",
    "officer_utilisation": "officer busy time over officer time on duty",
    "operator_utilisation": "operator busy time over operator time on duty",
    "mean_seconds_to_engagement": "mean time from alert to officers reaching the passer",
    "implied_threshold": "threshold at which this crowd's expected false alerts per face match the "
    "reported figure's rate",
    "mean_operator_wait_seconds": "mean wait from alert to operator",
    "mean_officer_wait_seconds": "mean wait from confirmation to a team setting off",
    "black_share_of_false_alerts": "Black passers' share of the exact expected false alerts (census "
    "groups only: no row for an experiment's own [[groups]])",
    "black_white_false_alert_ratio": "exact expected false alerts per recorded face, Black over White "
    "passers (both sexes; census groups only)",
}


def _field(path: str) -> Any:
    """The pydantic field behind a dotted key."""
    model: Any = Experiment
    field = None
    for key in path.split("."):
        fields = getattr(model, "model_fields", {})
        field = fields[key]
        model = next(
            (a for a in _members(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)), None
        )
    return field


def _members(annotation: Any) -> list[Any]:
    stack, out = [annotation], []
    while stack:
        a = stack.pop(0)
        out.append(a)
        stack.extend(typing.get_args(a))
    return out


def _type(annotation: Any) -> str:
    names = []
    for a in _members(annotation):
        if a is type(None):
            continue
        if typing.get_origin(a) is typing.Literal:
            names.append("one of " + ", ".join(repr(v) for v in typing.get_args(a)))
        elif a in (int, float, str, bool):
            names.append({int: "integer", float: "number", str: "text", bool: "true/false"}[a])
        elif typing.get_origin(a) is list:
            names.append("list")
        elif typing.get_origin(a) is dict:
            names.append("table")
    unique = []
    for n in names:
        if n not in unique:
            unique.append(n)
    return " or ".join(unique[:3]) or "table"


def _range(field: Any) -> str:
    words = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    found = [
        f"{words[k]} {_number(getattr(m, k))}"
        for m in field.metadata
        for k in words
        if getattr(m, k, None) is not None
    ]
    return ", ".join(found)


def _number(x: float) -> str:
    """A bound as written in a file: whole numbers with thousands separators, else %g."""
    if float(x).is_integer() and abs(x) < 1e16:
        return f"{int(x):,}"
    return f"{x:g}"


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, dict):
        return (
            ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items()) or "{}"
        )
    return "none" if value is None else repr(value) if isinstance(value, str) else f"{value}"


def _score_default(path: str) -> str:
    """A score parameter's default: a posterior draw, or ``ScoreParameters``' fixed value."""
    name = path.rsplit(".", 1)[-1]
    if name in CALIBRATED_SCORES:
        return "'calibrated'"
    return _default(ScoreParameters.model_fields[name])


def settings_paths() -> list[str]:
    """Every dotted key of the schema that a user can write."""
    return all_paths(Experiment)


def render() -> str:
    """docs/reference.md."""
    lines = [
        "# Reference: settings and metrics (generated)",
        "",
        "Generated by `python -m sim.reference > docs/reference.md` from the schema (`sim/config.py`):",
        "types, ranges and defaults are the code's own. A test fails when this page is out of date.",
        "A default of 'calibrated' is a draw of the calibrated posterior, one per replicate",
        "(docs/calibration.md); a value given in the experiment is used for every draw. Score",
        "parameters the posterior does not set default to the fixed values listed.",
        "",
        "An experiment is `Experiment.from_toml(text)` or `sim.load_experiment(path)`;",
        '`Experiment.with_values({"matcher.threshold": 0.6})` is a copy with dotted settings',
        "replaced and validated again (one sweep cell); `Experiment.to_toml()` writes every",
        "setting, defaults included.",
        "",
        "## Settings",
        "",
    ]
    section = None
    for path in settings_paths():
        head = path.split(".")[0]
        if head != section:
            section = head
            lines += [
                "",
                f"### [{head}]",
                "",
                "| key | type | allowed | default | unit | meaning | default from |",
                "|---|---|---|---|---|---|---|",
            ]
        field = _field(path)
        meaning, unit, source = SETTINGS[path]
        default = _score_default(path) if path.startswith("matcher.scores.") else _default(field)
        lines.append(
            f"| `{path}` | {_type(field.annotation)} | {_range(field)} | {default} | {unit} "
            f"| {meaning} | {source} |"
        )
    lines += [
        "",
        "## Metrics",
        "",
        "`metrics.parquet` has one row per cell × replicate × group × metric; `summary.csv` one per cell ×",
        "group × metric with `estimate` (counts and programme figures: the mean over replicates;",
        "rates: pooled numerator over pooled denominator) and `ci_low`, `ci_high`: the 2.5th and",
        "97.5th percentiles over replicates, a 95% posterior-predictive interval when settings are",
        "calibrated (one posterior draw per replicate). Counts are per programme. `group` is `all`",
        "or a group's name: a census group (`female_asian`, ..., `male_other`) or, when the",
        "experiment declares `[[groups]]`, one of its own.",
        "",
        "| metric | kind | what it is |",
        "|---|---|---|",
    ]
    kinds = {
        **{m: "count" for m in COUNT_METRICS},
        **{m: "rate" for m in RATE_METRICS},
        **{m: "programme (group all)" for m in PROGRAMME_METRICS},
    }
    for metric, kind in kinds.items():
        lines.append(f"| `{metric}` | {kind} | {METRICS[metric]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates docs/reference.md
    print(render(), end="")
