"""The experiment schema: an experiment is data, written in TOML and checked field by field.

An experiment names a deployment programme (where and how long the cameras run), the crowd that
walks past, the watchlist, the matcher and its score model, the officers who review alerts, an
optional sweep over any of those settings, the number of replications and one root seed.

Every model is frozen and refuses unknown keys, so a typo is an error that names the key (and the
nearest valid one), never a silently ignored setting. ``Experiment.to_toml()`` writes the fully
resolved experiment, every default and the seed included, and loads back to an equal object.
"""

from __future__ import annotations

import difflib
import itertools
import math
import numbers
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import data as shipped
from .errors import ConfigError, all_paths, format_errors, shown
from .grid import PERIODS as CALIBRATION_PERIODS
from .grid import read_grid, resolve_path
from .groups import DEFAULT_GROUPS, ETHNICITIES, Group

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Latent = Annotated[float, Field(ge=-50.0, le=50.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, le=1e12, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, le=1e12, allow_inf_nan=False)]
# spreads of latent (logit) scores: beyond these the score model means nothing on a [0, 1] scale
LatentSd = Annotated[float, Field(ge=1e-3, le=10.0, allow_inf_nan=False)]
EffectSd = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]

MAX_WATCHLIST = 100_000_000
MIN_RESOLVABLE = 1e-6

# A setting whose value is the calibration's posterior (``sim.draws``): one draw per replicate.
CALIBRATED = "calibrated"
Calibrated = Literal["calibrated"]
# where the calibration quotes the watchlisted share of passers: a list of this many entries ...
REFERENCE_WATCHLIST_SIZE = 15_000
# ... at a site with this many passers an hour (docs/calibration.md)
REFERENCE_FOOTFALL_PER_HOUR = 1000.0
# the ethnic-minority probe shift's pattern (Black = the shift; NIST IR 8280's ordering of
# differentials: largest for Black, then Asian, smaller for Mixed and Other); the calibration
# estimates the shift, the pattern is fixed
MINORITY_PATTERN = {"asian": 0.6, "black": 1.0, "mixed": 0.4, "white": 0.0, "other": 0.4}
# counting regimes of the Met's records (``sim.records``): what one recorded "face" counts
COUNTING_REGIMES = ("2023", "2024 low count", "2024 high count")


class Frozen(BaseModel):
    """A frozen section that refuses unknown keys and values of the wrong type.

    Types are strict: ``size = "16000"`` or ``capture_rate = true`` are errors, not silently
    converted. A float that is a whole number is accepted where a count is due, because TOML
    writes ``3e6`` as a float.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or field.annotation is not int or isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        return value


def _check_shares(shares: dict[str, float]) -> dict[str, float]:
    _known_ethnicities(shares)
    total = sum(shares.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"shares must sum to 1, got {total:.6g} ({_listed(shares)})")
    return {e: float(shares.get(e, 0.0)) for e in ETHNICITIES}


def _known_ethnicities(values: dict[str, float]) -> None:
    unknown = sorted(set(values) - set(ETHNICITIES))
    if unknown:
        near = difflib.get_close_matches(unknown[0], ETHNICITIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"keys must be among {', '.join(ETHNICITIES)}, got {unknown[0]!r}{hint} "
                         "(other groups: declare them in [[groups]])")


def _listed(values: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in values.items()) or "no groups"


EthnicityShares = dict[str, Probability]
Share = Annotated[float, Field(ge=0.0, le=0.5, allow_inf_nan=False)]


# An experiment's name is an identifier: it names the default results folder, results/NAME, so
# it must be one plain folder name (no separators, no '..', no control characters, not hidden).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_RULE = "letters, digits, '_', '-' and '.', starting with a letter or digit, without '..'"


class ExperimentMeta(Frozen):
    """Name, root seed and replications."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(default=20251122, ge=0, lt=2**63)
    replications: int = Field(default=10, ge=1, le=100_000)

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not NAME_PATTERN.fullmatch(v) or ".." in v:
            raise ValueError(f"must be an identifier ({NAME_RULE}), got {shown(v)}")
        return v


class Deployment(Frozen):
    """One day's camera deployment at a site.

    The crowd's ethnic mix is ``ethnicity_shares`` if given, else the 2021 census shares of
    ``ward_code`` or ``borough``, else London's. The crowd's size is ``footfall_per_hour``
    (passers an hour: one rate or an hourly profile spread evenly over the deployment) or
    ``recorded_faces``, the faces a force's record says the cameras saw, turned into passers by
    ``crowd.faces_per_passer`` (the calibrated counting factor by default).

    A deployment may carry its own operating point: ``watchlist_size`` entries (a list of the
    programme's make-up, ``watchlist.size`` when left out) and ``threshold`` (``matcher.threshold``
    when left out); a sweep over ``matcher.threshold`` or ``watchlist.size`` overrides every
    deployment's value. What its record counted: ``counting_regime`` (one of the records'
    regimes, or a probability for each, drawn per replicate), whose calibrated factor turns its
    ``recorded_faces`` into passers, or ``faces_per_passer`` given outright. ``period`` names the
    calibration period (threshold x calendar) the deployment belongs to, so that its watchlisted
    share carries that period's estimated effect rather than a new period's; or
    ``watchlisted_per_passer`` gives the share outright (at the crowd's reference size and 1,000
    passers an hour). Left out, each comes from the crowd's settings.
    """

    site: str = Field(min_length=1)
    date: str = ""
    borough: str = ""
    ward_code: str = ""
    duration_hours: float = Field(gt=0.0, le=24.0, allow_inf_nan=False)
    footfall_per_hour: Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)] | list[
        Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)]
    ] | None = None
    recorded_faces: float | None = Field(default=None, ge=0.0, le=1e9, allow_inf_nan=False)
    capture_rate: Probability = 1.0
    ethnicity_shares: EthnicityShares | None = None
    watchlist_size: int | None = Field(default=None, gt=0, le=MAX_WATCHLIST)
    threshold: Score | None = None
    counting_regime: Literal[COUNTING_REGIMES] | dict[str, Probability] | None = None  # type: ignore[valid-type]
    faces_per_passer: float | None = Field(default=None, gt=0.0, le=1000.0, allow_inf_nan=False)
    period: Literal[CALIBRATION_PERIODS] | None = None  # type: ignore[valid-type]
    watchlisted_per_passer: Share | None = None

    @field_validator("counting_regime")
    @classmethod
    def _regime_probabilities(cls, v):
        if not isinstance(v, dict):
            return v
        unknown = sorted(set(v) - set(COUNTING_REGIMES))
        if unknown:
            allowed = ", ".join(map(repr, COUNTING_REGIMES))
            raise ValueError(f"keys must be among {allowed}, got {unknown[0]!r}")
        total = sum(v.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"probabilities must sum to 1, got {total:.6g} ({_listed(v)})")
        return v

    @model_validator(mode="after")
    def _one_crowd_size(self):
        if (self.footfall_per_hour is None) == (self.recorded_faces is None):
            got = "both" if self.recorded_faces is not None else "neither"
            raise ValueError(f"footfall_per_hour: give either footfall_per_hour or recorded_faces, got {got}")
        return self

    @field_validator("footfall_per_hour")
    @classmethod
    def _profile_not_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("an hourly profile must have at least one value, got []")
        return v

    @field_validator("ethnicity_shares")
    @classmethod
    def _shares(cls, v):
        return None if v is None else _check_shares(v)

    @model_validator(mode="after")
    def _known_place(self):
        if self.ward_code and not shipped.has_ward(self.ward_code):
            raise ValueError(f"ward_code: must be a London ward code of the 2021 census (e.g. 'E05000026'), "
                             f"got {self.ward_code!r}")
        if self.borough and not shipped.has_borough(self.borough):
            near = difflib.get_close_matches(self.borough, shipped.boroughs(), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"borough: must be a London borough, got {self.borough!r}{hint}")
        return self


# passers an hour of a generated deployment that names no crowd size: the calibration's reference
DEFAULT_FOOTFALL_PER_HOUR = REFERENCE_FOOTFALL_PER_HOUR


class ProgrammeGenerator(Frozen):
    """A programme drawn at random: ``deployments_per_week`` over ``weeks`` weeks.

    ``sites`` is ``"met_2024"`` (the wards of the Met's 2024 deployments, drawn as often as they
    were used), ``"six_zones_2025"`` (the town-centre wards of the six zones named when the Met
    announced its expansion in 2025: Brixton, Kingston, Ealing, Finsbury Park, Southwark and
    Spitalfields, drawn uniformly) or a list of London boroughs or ward codes, drawn uniformly.
    """

    weeks: int = Field(default=52, ge=1, le=520)
    deployments_per_week: int = Field(default=4, ge=1, le=100)
    days_per_week: int = Field(default=2, ge=1, le=7)
    start_date: str = "2025-01-06"
    sites: Literal["met_2024", "six_zones_2025"] | list[str] = "met_2024"
    duration_hours: float = Field(default=5.5, gt=0.0, le=24.0, allow_inf_nan=False)
    footfall_per_hour: float | None = Field(default=None, ge=0.0, le=1e7, allow_inf_nan=False)
    recorded_faces_per_hour: float | None = Field(default=None, ge=0.0, le=1e7, allow_inf_nan=False)
    footfall_cv: float = Field(default=0.0, ge=0.0, le=5.0, allow_inf_nan=False)
    capture_rate: Probability = 1.0

    @model_validator(mode="after")
    def _one_crowd_size(self):
        if self.footfall_per_hour is not None and self.recorded_faces_per_hour is not None:
            raise ValueError("footfall_per_hour: give either footfall_per_hour or recorded_faces_per_hour, "
                             "got both")
        return self

    def passers_per_hour(self, faces_per_passer: float) -> float:
        """Mean passers an hour: ``footfall_per_hour``, or recorded faces turned into passers
        (1,000 an hour when neither is given)."""
        if self.recorded_faces_per_hour is not None:
            return self.recorded_faces_per_hour / faces_per_passer
        return DEFAULT_FOOTFALL_PER_HOUR if self.footfall_per_hour is None else self.footfall_per_hour

    @field_validator("sites")
    @classmethod
    def _sites_known(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("must be 'met_2024' or at least one London borough or ward code, got []")
            for site in v:
                if not (shipped.has_borough(site) or shipped.has_ward(site)):
                    near = difflib.get_close_matches(site, shipped.boroughs(), n=1)
                    hint = f"; did you mean {near[0]!r}?" if near else ""
                    raise ValueError(f"each site must be a London borough or ward code, got {site!r}{hint}")
        return v


class Programme(Frozen):
    """The deployments of one experiment: an explicit list, a grid file, or a generator.

    ``grid = "path.csv"`` (relative to the experiment file; ``"lfrsim:NAME"`` for a grid shipped
    with the package, wherever the file lives) reads a deployment grid in the column
    format of the Met's records (``sim.grid``): each row it can simulate becomes one deployment,
    with its own date, place, duration, recorded faces, watchlist size, threshold, counting
    regime and period. The resolved experiment writes those deployments out, with the file's
    digest ``grid_sha256``, so a re-run never reads the file again.
    """

    deployments: list[Deployment] = Field(default_factory=list, max_length=100_000)
    generator: ProgrammeGenerator | None = None
    grid: str = ""
    grid_sha256: str = ""

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.deployments) == (self.generator is not None):
            got = "both" if self.deployments else "neither"
            raise ValueError("must have either [[programme.deployments]] or [programme.generator], "
                             f"got {got}")
        return self


Elasticity = Annotated[float, Field(ge=-3.0, le=3.0, allow_inf_nan=False)]
Dispersion = Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]
PeriodSd = Annotated[float, Field(ge=0.0, le=5.0, allow_inf_nan=False)]


class Crowd(Frozen):
    """Who walks past: sex split, watchlisted passers, frames per passer and how faces are counted.

    A passer of group g at deployment d is on the watchlist with probability
    ``watchlisted_per_passer * (N / prevalence_reference_size) ** prevalence_elasticity
    * (passers per hour / 1,000) ** footfall_elasticity * G_d * w_g / p_g``, where w_g is the
    watchlist's share of group g and p_g London's (a larger list, or one over-representing a group,
    puts more of that group's passers on it), and G_d a deployment's gamma effect of mean 1 and
    variance ``watchlisted_dispersion``. A calibrated share also carries the period effect
    ``exp(period_sd * z)``, one z per replicate. Recorded "faces" are passers times
    ``faces_per_passer`` (``"frames"``: every frame counts). Every ``"calibrated"`` value is a
    posterior draw per replicate (``sim.draws``).
    """

    female_share: Probability = 0.5
    watchlisted_per_passer: Share | Calibrated = CALIBRATED
    prevalence_reference_size: int = Field(default=REFERENCE_WATCHLIST_SIZE, ge=1, le=MAX_WATCHLIST)
    # how the watchlisted share follows the list's size: 1 = in proportion (added entries are as
    # likely to pass as those already on it), 0 = not at all (added entries never pass)
    prevalence_elasticity: Probability = 1.0
    footfall_elasticity: Elasticity | Calibrated = CALIBRATED
    watchlisted_dispersion: Dispersion | Calibrated = CALIBRATED
    period_sd: PeriodSd | Calibrated = CALIBRATED
    frames_per_passer: float = Field(default=1.0, ge=1.0, le=1000.0, allow_inf_nan=False)
    frame_correlation: Probability = 1.0
    faces_per_passer: (Annotated[float, Field(gt=0.0, le=1000.0, allow_inf_nan=False)]
                       | Literal["frames", "calibrated"]) = CALIBRATED
    counting_regime: Literal["2023", "2024 low count", "2024 high count"] = "2024 high count"


class Watchlist(Frozen):
    """Size and make-up of the watchlist."""

    size: int = Field(gt=0, le=MAX_WATCHLIST)
    female_share: Probability = 0.15
    ethnicity_shares: EthnicityShares | Literal["london"] = "london"

    @field_validator("ethnicity_shares")
    @classmethod
    def _shares(cls, v):
        return v if v == "london" else _check_shares(v)


def _calibrated_median(name: str) -> Any:
    """The shipped posterior's median of a score parameter: the default of a ScoreParameters built
    by hand (a forward run draws from the posterior instead, ``sim.draws``)."""
    return shipped.posterior_medians()[name]


def _calibrated_tail(name: str, gaussian: Any) -> Any:
    """The shipped posterior's noise field ``name``, or the Gaussian's value if it has none."""
    return shipped.posterior_medians().get(name, gaussian)


class ScoreParameters(Frozen):
    """Latent (logit-scale) parameters of the score model; see ``sim.scores`` and docs/model.md.

    The calibration estimates ``impostor_location``, ``impostor_sd``, ``genuine_location``,
    ``same_ethnicity_shift`` and the minority probe shift (``probe_ethnicity_shift`` in the fixed
    ``MINORITY_PATTERN``); their defaults here are the shipped posterior's medians, for building a
    score model by hand. The other parameters are fixed assumptions (docs/model.md lists them
    with their sources and what halving or doubling each does).
    """

    impostor_location: Latent = Field(default_factory=lambda: _calibrated_median("impostor_location"))
    impostor_sd: LatentSd = Field(default_factory=lambda: _calibrated_median("impostor_sd"))
    same_sex_shift: Latent = 0.10
    same_ethnicity_shift: Latent = Field(default_factory=lambda: _calibrated_median("same_ethnicity_shift"))
    probe_female_shift: Latent = 0.03
    probe_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: dict(_calibrated_median("probe_ethnicity_shift")))
    entry_female_shift: Latent = 0.0
    entry_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: {e: 0.0 for e in ETHNICITIES})
    probe_effect_sd: EffectSd = 0.03
    entry_effect_sd: EffectSd = 0.03
    lamb_share: Probability = 0.01
    lamb_shift: Latent = 0.10
    # the noise family: the shipped posterior's (Gaussian unless a Pareto-tail account is shipped)
    tail: Literal["gaussian", "pareto"] = Field(default_factory=lambda: _calibrated_tail("tail", "gaussian"))
    tail_knot_sd: float = Field(default=3.0, ge=0.0, le=20.0, allow_inf_nan=False)   # the calibration's too
    tail_shape: float = Field(default_factory=lambda: _calibrated_tail("tail_shape", 0.0), ge=0.0, le=1.0,
                              allow_inf_nan=False)
    genuine_location: Latent = Field(default_factory=lambda: _calibrated_median("genuine_location"))
    genuine_sd: LatentSd = 0.50
    genuine_female_shift: Latent = 0.0
    genuine_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: {e: 0.0 for e in ETHNICITIES})

    @field_validator("tail_shape", "probe_effect_sd", "entry_effect_sd")
    @classmethod
    def _zero_or_resolvable(cls, v):
        # 1e-300 is 0 in all but round-off, which turns it into NaN or infinity
        if 0.0 < v < MIN_RESOLVABLE:
            raise ValueError(f"must be 0 or between {MIN_RESOLVABLE:g} and 1, got {v:g}")
        return v

    @field_validator("probe_ethnicity_shift", "entry_ethnicity_shift", "genuine_ethnicity_shift")
    @classmethod
    def _all_ethnicities(cls, v):
        _known_ethnicities(v)
        return {e: float(v.get(e, 0.0)) for e in ETHNICITIES}


# the score parameters the calibration's posterior sets (``sim.draws``)
CALIBRATED_SCORES = ("impostor_location", "impostor_sd", "genuine_location", "same_ethnicity_shift",
                     "probe_ethnicity_shift")


class ScoreSettings(Frozen):
    """``[matcher.scores]``: score parameters given explicitly. Any left out comes from
    ``matcher.parameters`` (per replicate from the posterior when that is ``"calibrated"``)."""

    impostor_location: Latent | None = None
    impostor_sd: LatentSd | None = None
    same_sex_shift: Latent | None = None
    same_ethnicity_shift: Latent | None = None
    probe_female_shift: Latent | None = None
    probe_ethnicity_shift: dict[str, Latent] | None = None
    entry_female_shift: Latent | None = None
    entry_ethnicity_shift: dict[str, Latent] | None = None
    probe_effect_sd: EffectSd | None = None
    entry_effect_sd: EffectSd | None = None
    lamb_share: Probability | None = None
    lamb_shift: Latent | None = None
    tail: Literal["gaussian", "pareto"] | None = None
    tail_knot_sd: float | None = Field(default=None, ge=0.0, le=20.0, allow_inf_nan=False)
    tail_shape: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    genuine_location: Latent | None = None
    genuine_sd: LatentSd | None = None
    genuine_female_shift: Latent | None = None
    genuine_ethnicity_shift: dict[str, Latent] | None = None

    @field_validator("tail_shape", "probe_effect_sd", "entry_effect_sd")
    @classmethod
    def _zero_or_resolvable(cls, v):
        if v is not None and 0.0 < v < MIN_RESOLVABLE:
            raise ValueError(f"must be 0 or between {MIN_RESOLVABLE:g} and 1, got {v:g}")
        return v

    @field_validator("probe_ethnicity_shift", "entry_ethnicity_shift", "genuine_ethnicity_shift")
    @classmethod
    def _all_ethnicities(cls, v):
        if v is None:
            return v
        _known_ethnicities(v)
        return {e: float(v.get(e, 0.0)) for e in ETHNICITIES}

    def given(self) -> dict[str, Any]:
        """The parameters set explicitly."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Matcher(Frozen):
    """The search engine's operating point and score model.

    ``parameters = "calibrated"`` takes the score model from the calibration's posterior, one
    draw per replicate (``sim.draws``); a path names a file of fixed score parameters (read
    relative to the experiment file; its ``[parameters]`` table). ``[matcher.scores]`` fixes
    single parameters, for every draw. Passers whose best impostor score is below
    ``score_floor`` are never scored one by one: it must not exceed any threshold of interest.
    Left out (or ``"auto"``), it is the lowest threshold the experiment uses, sweep included, and
    the resolved config records the value, so a reviewer's re-run draws exactly the same passers.
    """

    threshold: Score = 0.64
    score_floor: Score = 0.64
    parameters: str = Field(default=CALIBRATED, min_length=1)
    scores: ScoreSettings = Field(default_factory=ScoreSettings)

    @model_validator(mode="before")
    @classmethod
    def _merge_parameter_file(cls, data: Any, info: ValidationInfo):
        if not isinstance(data, dict):
            return data
        name = data.get("parameters", CALIBRATED)
        if not isinstance(name, str) or name == CALIBRATED:
            return data
        base_dir = (info.context or {}).get("base_dir") if info.context else None
        overrides = data.get("scores", {})
        if not isinstance(overrides, dict):
            return data
        if set(ScoreSettings.model_fields) <= set(overrides):
            return data  # every parameter given (a resolved config): the file cannot add anything
        try:
            from_file = shipped.score_parameters(name, base_dir)
        except (OSError, ValueError) as exc:
            raise ValueError(f"parameters: cannot read score parameters {name!r}: {exc}") from None
        known = {k: v for k, v in from_file.items() if k in ScoreSettings.model_fields}
        return {**data, "scores": {**known, **overrides}}

    @model_validator(mode="after")
    def _floor_below_threshold(self):
        if self.score_floor > self.threshold:
            raise ValueError(
                f"threshold: must be >= matcher.score_floor ({self.score_floor}), got {self.threshold}; "
                "lower score_floor to search below it")
        return self

    def score_parameters(self) -> ScoreParameters:
        """The score model's parameters; the calibrated ones must have been drawn (``sim.draws.resolve``)."""
        given = self.scores.given()
        missing = [name for name in CALIBRATED_SCORES if name not in given]
        if self.parameters == CALIBRATED and missing:
            raise ValueError(f"matcher.scores: {', '.join(missing)} come from the posterior; "
                             "resolve the experiment for a replicate first (sim.draws.resolve)")
        return ScoreParameters(**given)


class Review(Frozen):
    """Operators who adjudicate alerts and intervention officers who stop passers.

    Defaults and their evidence (the Met's 2023-24 deployment records) are in docs/review.md;
    the model itself is described in ``sim.review``. Officers work in teams of
    ``officers_per_engagement``; officers left over from the last full team stand idle.
    """

    operators: int = Field(default=2, ge=0, le=10_000)
    officers: int = Field(default=8, ge=0, le=10_000)
    officers_per_engagement: int = Field(default=2, ge=1, le=100)
    require_operator_review: bool = True
    review_seconds_mean: NonNegative = 15.0
    review_seconds_cv: float = Field(default=0.5, ge=0.0, le=10.0, allow_inf_nan=False)
    p_confirm_true: Probability = 0.995
    p_confirm_false: Probability = 0.97
    automation_bias: float = Field(default=0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    zone_length_m: Positive = 120.0
    walking_speed_m_s: Positive = 1.3
    walking_speed_cv: float = Field(default=0.2, ge=0.0, le=2.0, allow_inf_nan=False)
    response_seconds_mean: NonNegative = 20.0
    response_seconds_cv: float = Field(default=0.5, ge=0.0, le=10.0, allow_inf_nan=False)
    engagement_minutes_mean: NonNegative = 10.0
    engagement_minutes_cv: float = Field(default=0.5, ge=0.0, le=10.0, allow_inf_nan=False)
    arrest_minutes_mean: NonNegative = 30.0
    p_arrest: Probability | Calibrated = CALIBRATED
    p_other_disposal: Probability = 0.0
    p_wrongful_arrest: Probability = 0.01

    @model_validator(mode="after")
    def _consistent(self):
        if self.p_arrest != CALIBRATED and self.p_arrest + self.p_other_disposal > 1.0 + 1e-12:
            raise ValueError("p_arrest + p_other_disposal must be <= 1, got "
                             f"{self.p_arrest + self.p_other_disposal:.6g}")
        if self.require_operator_review and self.operators == 0:
            raise ValueError("operators: must be >= 1 when require_operator_review is true, got 0")
        return self


class Range(Frozen):
    """Values ``start, start + step, ...`` up to and including ``stop`` (within step/1e6)."""

    start: float = Field(allow_inf_nan=False)
    stop: float = Field(allow_inf_nan=False)
    step: float = Field(gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _finite_count(self):
        if self.stop < self.start:
            raise ValueError(f"stop: must be >= start ({self.start:g}), got {self.stop:g}")
        count = (self.stop - self.start) / self.step
        if not count <= 100_000:
            raise ValueError(f"step: must give at most 100,000 values, got {self.step:g} "
                             f"(about {count:.3g} values)")
        return self

    def count(self) -> int:
        return int(math.floor((self.stop - self.start) / self.step + 1e-6)) + 1

    def values(self) -> list[float]:
        return [round(self.start + i * self.step, 12) for i in range(self.count())]


SweepValue = int | float | str | bool


class Sweep(Frozen):
    """A grid over dotted config paths (``matcher.threshold``): the product or the zip of values."""

    mode: Literal["product", "zip"] = "product"
    parameters: dict[str, list[SweepValue] | Range] = Field(default_factory=dict)

    @field_validator("parameters")
    @classmethod
    def _non_empty(cls, v):
        for path, values in v.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"{path}: must list at least one value, got []")
        return v

    def size(self) -> int:
        """The number of cells, counted without listing them (a hostile grid may be astronomically big)."""
        lengths = [v.count() if isinstance(v, Range) else len(v) for v in self.parameters.values()]
        if self.mode == "zip":
            if len(set(lengths)) > 1:
                raise ConfigError([f"sweep.mode: 'zip' needs lists of equal length, got lengths "
                                   f"{', '.join(str(n) for n in lengths)}; use mode = 'product' for a grid"])
            return lengths[0] if lengths else 1
        return math.prod(lengths)

    def cells(self) -> list[dict[str, Any]]:
        """The sweep's cells in a fixed order: each a {dotted path: value} dict.

        ``product`` varies the last path fastest (like nested loops in the order written); ``zip``
        pairs the i-th values of every path and needs lists of equal length. No sweep is one cell.
        """
        if not self.parameters:
            return [{}]
        self.size()   # refuses a zip of unequal lengths, by name
        paths = list(self.parameters)
        values = [v.values() if isinstance(v, Range) else list(v) for v in self.parameters.values()]
        combos = zip(*values, strict=True) if self.mode == "zip" else itertools.product(*values)
        return [dict(zip(paths, combo, strict=True)) for combo in combos]


class Bounds(Frozen):
    """A setting's range in a sensitivity analysis: drawn uniformly from ``low`` to ``high``."""

    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.high > self.low:
            raise ValueError(f"high: must be > low ({self.low:g}), got {self.high:g}")
        return self


SENSITIVITY_OUTPUTS = ("false_alerts", "false_alerts_by_group", "black_share", "black_white_ratio",
                       "true_alerts", "ppv", "wrongful_stops", "arrests")


class Explain(Frozen):
    """"What must be true": a grid of settings on which the reported figure is set against the model.

    Each of ``parameters`` (two or three dotted settings) runs over ``points`` evenly spaced
    values from ``low`` to ``high``; at every point of the grid the comparison's reported count
    is inside or outside the model's ``level`` predictive interval.
    """

    parameters: dict[str, Bounds] = Field(min_length=2, max_length=3)
    points: int = Field(default=21, ge=2, le=201)
    level: float = Field(default=0.95, gt=0.0, lt=1.0, allow_inf_nan=False)
    # replicates per grid point: with calibrated settings, that many posterior draws in the interval
    replicates: int = Field(default=1, ge=1, le=1000)


class Sensitivity(Frozen):
    """A global sensitivity analysis: which settings move the outputs (``sim.sensitivity``).

    ``parameters`` maps dotted settings to a range ``{low, high}`` or to ``"posterior"`` (the
    calibration's marginal draws of that setting). ``method = "sobol"`` draws ``samples`` × (D + 2)
    points by Saltelli's scheme on a scrambled Sobol' sequence (``samples`` a power of two);
    ``"morris"`` draws ``samples`` trajectories of D + 1 points, a cheap screen. Every point runs
    replicates 0 to ``replicates`` - 1 under the experiment's seed (common random numbers).
    ``calibration = true`` adds the calibration's joint posterior as one more input (which draw a
    point takes), so its indices are those of everything the calibration estimates, together.
    """

    method: Literal["sobol", "morris"] = "sobol"
    parameters: dict[str, Bounds | Literal["posterior"]] = Field(min_length=1, max_length=30)
    samples: int = Field(default=256, ge=2, le=65_536)
    replicates: int = Field(default=1, ge=1, le=1000)
    outputs: list[Literal[SENSITIVITY_OUTPUTS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(SENSITIVITY_OUTPUTS), min_length=1)
    seed: int = Field(default=0, ge=0, lt=2**32)   # of the sample design and the bootstrap
    conf_level: float = Field(default=0.95, gt=0.0, lt=1.0, allow_inf_nan=False)
    bootstrap: int = Field(default=1000, ge=10, le=100_000)
    morris_levels: int = Field(default=4, ge=2, le=20)
    calibration: bool = False
    explain: Explain | None = None

    @model_validator(mode="after")
    def _design(self):
        if self.method == "sobol" and self.samples & (self.samples - 1):
            raise ValueError(f"samples: must be a power of two for method 'sobol', got {self.samples}")
        return self


# A declared group's name is a column value of summary.csv and a key in every table: a plain
# identifier, and never "all" (the row for everyone)
GROUP_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
GROUP_NAME_RULE = "an identifier: letters, digits and '_', not starting with a digit"
MAX_GROUPS = 40
SHARE_TOLERANCE = 1e-6


class PasserGroup(Frozen):
    """``[[groups]]``: one demographic group an experiment declares, in place of the census groups.

    ``share`` is the group's share of passers at every deployment and ``watchlist_share`` its
    share of watchlist entries (each sums to 1 over the groups). The shifts are in the score
    model's latent (logit) units, as ``ScoreParameters``: ``probe_shift`` raises every impostor
    score of the group's probes (higher false-match rates), ``entry_shift`` every impostor score
    against the group's entries, ``genuine_shift`` the mated scores of its watchlisted passers.
    A probe and an entry of the same declared group share the calibrated same-group uplift
    ``matcher.scores.same_ethnicity_shift``; a group that declares its ``sex`` takes the score
    model's sex effects too (docs/model.md, "Declared groups").
    """

    name: str = Field(min_length=1, max_length=60)
    share: Probability
    watchlist_share: Probability
    sex: Literal["female", "male"] | None = None
    probe_shift: Latent = 0.0
    entry_shift: Latent = 0.0
    genuine_shift: Latent = 0.0

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not GROUP_NAME_PATTERN.fullmatch(v):
            raise ValueError(f"must be {GROUP_NAME_RULE}, got {shown(v)}")
        if v == "all":
            raise ValueError("must not be 'all' (summary.csv's row for everyone), got 'all'")
        return v

    def group(self) -> Group:
        """The group as the simulation indexes it."""
        return Group(sex=self.sex or "", label=self.name, share=self.share,
                     watchlist_share=self.watchlist_share, probe_shift=self.probe_shift,
                     entry_shift=self.entry_shift, genuine_shift=self.genuine_shift)


def _declared_problems(groups: list[PasserGroup]) -> str | None:
    """The first problem of a set of declared groups as a whole (names, shares), or None."""
    seen: dict[str, int] = {}
    for i, g in enumerate(groups):
        if g.name in seen:
            return (f"groups.{i}.name: must be unique among the groups, got {g.name!r} "
                    f"(also groups.{seen[g.name]}.name)")
        seen[g.name] = i
    for field in ("share", "watchlist_share"):
        values = {g.name: getattr(g, field) for g in groups}
        total = math.fsum(values.values())
        if not math.isclose(total, 1.0, abs_tol=SHARE_TOLERANCE):
            return f"groups.{field}: must sum to 1 over the groups, got {total:.6g} ({_listed(values)})"
    return None


class Comparison(Frozen):
    """A reported figure to set the simulation against: false alerts in so many faces."""

    label: str = "Met 2025: 12 false alerts in over 3 million faces"
    faces: int = Field(default=3_000_000, gt=0, le=10**15)
    false_alerts: int = Field(default=12, ge=0, le=10**15)
    threshold: Score = 0.64    # the operating threshold behind the reported figure


class Experiment(Frozen):
    """A scenario, a sweep, replications and a root seed."""

    experiment: ExperimentMeta
    programme: Programme
    crowd: Crowd = Field(default_factory=Crowd)
    watchlist: Watchlist
    matcher: Matcher = Field(default_factory=Matcher)
    review: Review = Field(default_factory=Review)
    sweep: Sweep = Field(default_factory=Sweep)
    comparison: Comparison | None = None   # only experiments that declare [comparison] are compared
    sensitivity: Sensitivity | None = None
    # the experiment's own demographic groups; left out, the census groups (sex x ethnicity)
    groups: list[PasserGroup] | None = Field(default=None, min_length=1, max_length=MAX_GROUPS)

    def passer_groups(self) -> tuple[Group, ...]:
        """The groups every table of a run is indexed by: the declared ones, else the census's ten."""
        return DEFAULT_GROUPS if self.groups is None else tuple(g.group() for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, defaults included, as plain data (``None`` left out)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_toml(self) -> str:
        """The fully resolved experiment as TOML; ``from_toml`` reads it back to an equal object.

        Every score parameter is written out, so the named parameter file is kept as a record only:
        reading the TOML back never opens it.
        """
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str, base_dir: Path | None = None) -> Experiment:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"toml: not valid TOML: {exc}"]) from None
        return from_dict(data, base_dir)

    def with_values(self, values: dict[str, Any]) -> Experiment:
        """A copy with dotted-path settings replaced (one sweep cell), validated again.

        A sweep over ``matcher.threshold`` or ``watchlist.size`` (in ``values`` or in the
        experiment's own sweep) sets every deployment's: their own values are dropped.
        """
        data = self.to_dict()   # every score parameter written out: the named file is not re-read
        for path, value in values.items():
            _set_path(data, path, value)
        _drop_overridden(data, set(values) | set(self.sweep.parameters))
        data.pop("sweep", None)
        return from_dict(data)

    def swept(self, path: str) -> bool:
        return path in self.sweep.parameters

    @model_validator(mode="after")
    def _declared_groups_replace_the_census(self):
        if self.groups is None:
            return self
        problem = _declared_problems(self.groups)
        if problem:
            raise ValueError(problem)
        if self.sensitivity is not None:
            raise ValueError("sensitivity: not available with declared [[groups]] (its outputs are the "
                             "census groups'); leave out [[groups]] or [sensitivity]")
        if not self.programme.grid_sha256:
            for i, d in enumerate(self.programme.deployments):
                if d.ethnicity_shares is not None:
                    raise ValueError(f"programme.deployments.{i}.ethnicity_shares: not used with declared "
                                     "[[groups]] (each group's share is its share of passers at every "
                                     "deployment); leave it out, or leave out [[groups]]")
        return self

    @model_validator(mode="after")
    def _deployments_above_floor(self):
        if self.swept("matcher.threshold"):
            return self
        floor = self.matcher.score_floor
        for i, d in enumerate(self.programme.deployments):
            if d.threshold is not None and d.threshold < floor:
                raise ValueError(f"programme.deployments.{i}.threshold: must be >= matcher.score_floor "
                                 f"({floor}), got {d.threshold}; lower score_floor to search below it")
        return self


# sweeps that set every deployment's own value: setting -> the deployment's field
DEPLOYMENT_OVERRIDES = {"matcher.threshold": "threshold", "watchlist.size": "watchlist_size"}


def _drop_overridden(data: dict[str, Any], swept: set[str]) -> None:
    for path, key in DEPLOYMENT_OVERRIDES.items():
        if path in swept:
            for d in data.get("programme", {}).get("deployments", []):
                d.pop(key, None)


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        if not isinstance(node.get(key), dict):
            raise ConfigError([f"sweep.parameters.{path}: {key!r} is not a section of the experiment"])
        node = node[key]
    if leaf not in node and not _schema_has(path):
        raise ConfigError([f"sweep.parameters.{path}: no such setting"])
    node[leaf] = value


def _schema_has(path: str) -> bool:
    model: Any = Experiment
    for key in path.split("."):
        fields = getattr(model, "model_fields", None)
        if not fields or key not in fields:
            return False
        annotation = fields[key].annotation
        model = next((a for a in getattr(annotation, "__args__", (annotation,))
                      if isinstance(a, type) and issubclass(a, BaseModel)), annotation)
    return True


def _resolve_floor(data: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``matcher.score_floor = "auto"`` (or absent) with the lowest threshold in use."""
    matcher = data.get("matcher", {})
    if not isinstance(matcher, dict) or matcher.get("score_floor", "auto") != "auto":
        return data
    base = matcher.get("threshold", Matcher.model_fields["threshold"].default)
    sweep = data.get("sweep")
    params = sweep.get("parameters") if isinstance(sweep, dict) else None
    swept = params.get("matcher.threshold") if isinstance(params, dict) else None
    # the base threshold too: every cell overrides it, but it must clear the floor all the same
    if isinstance(swept, list):
        candidates = [base, *swept]
    elif isinstance(swept, dict):
        candidates = [base, swept.get("start"), swept.get("stop")]  # a reversed range is refused by name
    else:   # deployments at their own thresholds (a sweep would override them)
        candidates = [base, *_deployment_thresholds(data)]
    # only what could be a threshold counts; anything else is refused by validation, by name
    thresholds = [float(v) for v in candidates
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0]
    rest = {k: v for k, v in matcher.items() if k != "score_floor"}
    if not thresholds:
        return {**data, "matcher": rest}
    return {**data, "matcher": {**rest, "score_floor": min(thresholds)}}


def _deployment_thresholds(data: dict[str, Any]) -> list[Any]:
    programme = data.get("programme")
    deployments = programme.get("deployments") if isinstance(programme, dict) else None
    if not isinstance(deployments, list):
        return []
    return [d.get("threshold") for d in deployments if isinstance(d, dict) and d.get("threshold") is not None]


def _expand_grid(data: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """``programme.grid``: the grid file's deployments in place (``sim.grid``), with its digest.

    A programme that already holds the grid's digest is a resolved experiment: its deployments
    are the grid's, and the file is not read again.
    """
    programme = data.get("programme")
    if not isinstance(programme, dict) or not programme.get("grid") or programme.get("grid_sha256"):
        return data
    name = programme["grid"]
    if not isinstance(name, str):
        return data   # refused by validation, by name
    if programme.get("deployments") or programme.get("generator"):
        raise ConfigError(["programme.grid: give either grid, [[programme.deployments]] or "
                           "[programme.generator], got more than one"])
    try:
        grid = read_grid(resolve_path(name, base_dir))
    except ConfigError as exc:
        raise ConfigError([f"programme.grid: {p}" for p in exc.problems]) from None
    if not grid.simulated:
        raise ConfigError([f"programme.grid: {name} has no row with both faces_seen and a duration "
                           "published; there is nothing to simulate"])
    return {**data, "programme": {**programme, "deployments": grid.deployments(), "grid_sha256": grid.sha256}}


def from_dict(data: dict[str, Any], base_dir: Path | None = None) -> Experiment:
    """Validate plain data into an Experiment, or raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(["experiment: expected a table of sections"])
    data = _expand_grid(data, base_dir)
    data = _resolve_floor(data)
    try:
        experiment = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(format_errors(Experiment, exc.errors())) from None
    _check_sweep(experiment)
    return experiment


MAX_CELLS = 100_000
FULL_CHECK_CELLS = 1_000


def with_overrides(experiment: Experiment, replications: int | None = None,
                   seed: int | None = None) -> Experiment:
    """The experiment with its replications and root seed replaced (validated again)."""
    update: dict[str, Any] = {}
    if replications is not None:
        update["replications"] = int(replications)
    if seed is not None:
        update["seed"] = int(seed)
    if not update:
        return experiment
    data = experiment.to_dict()
    data["experiment"].update(update)
    return from_dict(data)


def _check_sweep(experiment: Experiment) -> None:
    """Every swept value must make a valid experiment; every cell too, when there are not too many."""
    sweep = experiment.sweep
    if not sweep.parameters:
        return
    problems: list[str] = []
    for path in sweep.parameters:
        if path.split(".")[0] == "groups":
            problems.append(f"sweep.parameters.{path}: declared [[groups]] cannot be swept; write one "
                            "experiment for each set of groups")
            continue
        if not _schema_has(path) or path.split(".")[0] in {"sweep", "experiment"}:
            near = difflib.get_close_matches(path, [p for p in all_paths(Experiment) if p.split(".")[0]
                                                    not in {"sweep", "experiment", "groups"}], n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            problems.append(f"sweep.parameters.{path}: must name a setting of the experiment, "
                            f"got {path!r}{hint}")
    if problems:
        raise ConfigError(problems)
    cells = sweep.size()
    if cells > MAX_CELLS:
        raise ConfigError([f"sweep.parameters: must give at most {MAX_CELLS:,} cells, got {cells:,}"])
    # each value alone (a range only at its ends: the bounds of a setting are an interval) ...
    for path, spec in sweep.parameters.items():
        values = spec.values() if isinstance(spec, Range) else list(spec)
        if isinstance(spec, Range) and len(values) > 50:
            values = [values[0], values[-1]]
        distinct = {(type(v).__name__, repr(v)): v for v in values}
        for value in distinct.values():
            try:
                experiment.with_values({path: value})
            except ConfigError as exc:
                raise ConfigError([_in_sweep(path, p) for p in exc.problems]) from None
    # ... then the combinations, which can clash (two probabilities that must sum to at most 1)
    if len(sweep.parameters) > 1 and cells <= FULL_CHECK_CELLS:
        for cell in sweep.cells():
            try:
                experiment.with_values(cell)
            except ConfigError as exc:
                where = ", ".join(f"{k} = {shown(v)}" for k, v in cell.items())
                raise ConfigError([f"sweep cell ({where}): {p}" for p in exc.problems]) from None


def _in_sweep(path: str, problem: str) -> str:
    """A swept value's problem, named by where the user wrote it."""
    if problem.startswith(f"{path}: "):
        return f"sweep.parameters.{problem}"
    return f"sweep.parameters.{path}: {problem}"


MAX_EXPERIMENT_BYTES = 16 * 2**20
_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def _shown_path(path: Path) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


def read_experiment_bytes(path: str | Path, limit: int = MAX_EXPERIMENT_BYTES) -> bytes:
    """The bytes of an experiment file: a regular file of at most ``limit`` bytes, else ConfigError.

    A named pipe, a device (``/dev/zero``), a socket or a folder is refused at once, never read:
    a pipe would wait for a writer for ever, ``/dev/zero`` never ends. The file is opened without
    blocking and checked again once open, so a file swapped for a pipe in between is refused too.
    """
    path = Path(path)
    where = _shown_path(path)
    try:
        mode = os.stat(path).st_mode      # never blocks, whatever the file is
    except ValueError:   # an embedded NUL byte: no file can have that name
        raise ConfigError([f"{where}: not a file name (it holds a NUL byte)"]) from None
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    if stat.S_ISDIR(mode):
        raise ConfigError([f"{where}: is a folder, not an experiment file"])
    if not stat.S_ISREG(mode):
        raise ConfigError([f"{where}: is {_kind(mode)}, not a regular file; an experiment is read only "
                           "from a regular TOML file"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError([f"{where}: is a folder, not an experiment file"])
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError([f"{where}: is {_kind(info.st_mode)}, not a regular file; an experiment "
                               "is read only from a regular TOML file"])
        if info.st_size > limit:
            raise ConfigError([f"{where}: is {info.st_size / 2**20:,.1f} MiB; an experiment file may be at "
                               f"most {limit / 2**20:g} MiB"])
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:   # it grew while being read
            raise ConfigError([f"{where}: is more than {limit / 2**20:g} MiB; an experiment file may be at "
                               f"most {limit / 2**20:g} MiB"])
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    finally:
        os.close(fd)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; raise ConfigError naming each bad field.

    Only a regular file of at most ``MAX_EXPERIMENT_BYTES`` is read (``read_experiment_bytes``).
    """
    path = Path(path)
    raw = read_experiment_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{_shown_path(path)}: not a text (UTF-8) TOML file"]) from None
    return Experiment.from_toml(text, base_dir=path.parent)
