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
import math
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

Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Score = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Latent = Annotated[float, Field(ge=-50.0, le=50.0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0.0, le=1e12, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, le=1e12, allow_inf_nan=False)]

ETHNICITIES = ("asian", "black", "mixed", "white", "other")
MAX_WATCHLIST = 100_000_000


class ConfigError(ValueError):
    """An experiment that cannot be run: one line per problem, each naming its field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


def _check_shares(shares: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(shares) - set(ETHNICITIES))
    if unknown:
        raise ValueError(f"unknown ethnicity {unknown[0]!r}; allowed: {', '.join(ETHNICITIES)}")
    total = sum(shares.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"shares must sum to 1, got {total:.6g}")
    return {e: float(shares.get(e, 0.0)) for e in ETHNICITIES}


EthnicityShares = dict[str, Probability]


class ExperimentMeta(Frozen):
    """Name, root seed and replications."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    seed: int = Field(default=20251122, ge=0, lt=2**63)
    replications: int = Field(default=10, ge=1, le=100_000)


class Deployment(Frozen):
    """One day's camera deployment at a site.

    The crowd's ethnic mix is ``ethnicity_shares`` if given, else the 2021 census shares of
    ``ward_code`` or ``borough``, else London's. ``footfall_per_hour`` is one rate or an hourly
    profile spread evenly over the deployment.
    """

    site: str = Field(min_length=1)
    date: str = ""
    borough: str = ""
    ward_code: str = ""
    duration_hours: float = Field(gt=0.0, le=24.0, allow_inf_nan=False)
    footfall_per_hour: Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)] | list[
        Annotated[float, Field(ge=0.0, le=1e7, allow_inf_nan=False)]
    ]
    capture_rate: Probability = 1.0
    ethnicity_shares: EthnicityShares | None = None

    @field_validator("footfall_per_hour")
    @classmethod
    def _profile_not_empty(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("an hourly profile needs at least one value")
        return v

    @field_validator("ethnicity_shares")
    @classmethod
    def _shares(cls, v):
        return None if v is None else _check_shares(v)

    @model_validator(mode="after")
    def _known_place(self):
        if self.ward_code and not shipped.has_ward(self.ward_code):
            raise ValueError(f"ward_code {self.ward_code!r} is not a London ward in the 2021 census")
        if self.borough and not shipped.has_borough(self.borough):
            near = difflib.get_close_matches(self.borough, shipped.boroughs(), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"borough {self.borough!r} is not a London borough{hint}")
        return self


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
    footfall_per_hour: float = Field(default=2700.0, ge=0.0, le=1e7, allow_inf_nan=False)
    footfall_cv: float = Field(default=0.0, ge=0.0, le=5.0, allow_inf_nan=False)
    capture_rate: Probability = 1.0

    @field_validator("sites")
    @classmethod
    def _sites_known(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("give at least one borough or ward code, or 'met_2024'")
            for site in v:
                if not (shipped.has_borough(site) or shipped.has_ward(site)):
                    near = difflib.get_close_matches(site, shipped.boroughs(), n=1)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    raise ValueError(f"{site!r} is neither a London borough nor a ward code{hint}")
        return v


class Programme(Frozen):
    """The deployments of one experiment: an explicit list or a generator, not both."""

    deployments: list[Deployment] = Field(default_factory=list, max_length=100_000)
    generator: ProgrammeGenerator | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if bool(self.deployments) == (self.generator is not None):
            raise ValueError("give either [[programme.deployments]] or [programme.generator], exactly one")
        return self


class Crowd(Frozen):
    """Who walks past: sex split, watchlisted passers, frames per passer and how faces are counted.

    A passer of group g is on the watchlist with probability
    ``watchlisted_per_passer * (N / prevalence_reference_size) * w_g / p_g``, where w_g is the
    watchlist's share of group g and p_g London's: a larger list, or one over-representing a
    group, puts more of that group's passers on it.
    """

    female_share: Probability = 0.5
    watchlisted_per_passer: float = Field(default=8.0e-4, ge=0.0, le=0.5, allow_inf_nan=False)
    prevalence_reference_size: int = Field(default=15_000, ge=1, le=MAX_WATCHLIST)
    frames_per_passer: float = Field(default=1.0, ge=1.0, le=1000.0, allow_inf_nan=False)
    frame_correlation: Probability = 1.0
    count_faces_as: Literal["passers", "frames"] = "passers"


class Watchlist(Frozen):
    """Size and make-up of the watchlist."""

    size: int = Field(gt=0, le=MAX_WATCHLIST)
    female_share: Probability = 0.15
    ethnicity_shares: EthnicityShares | Literal["london"] = "london"

    @field_validator("ethnicity_shares")
    @classmethod
    def _shares(cls, v):
        return v if v == "london" else _check_shares(v)


class ScoreParameters(Frozen):
    """Latent (logit-scale) parameters of the score model; see ``sim.scores`` and docs/model.md."""

    impostor_location: Latent = -0.90
    impostor_sd: Positive = 0.24
    same_sex_shift: Latent = 0.10
    same_ethnicity_shift: Latent = 0.16
    probe_female_shift: Latent = 0.03
    probe_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: {"asian": 0.03, "black": 0.05, "mixed": 0.02, "white": 0.0, "other": 0.02})
    entry_female_shift: Latent = 0.0
    entry_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: {e: 0.0 for e in ETHNICITIES})
    probe_effect_sd: NonNegative = 0.03
    entry_effect_sd: NonNegative = 0.03
    lamb_share: Probability = 0.01
    lamb_shift: Latent = 0.10
    tail: Literal["gaussian", "pareto"] = "gaussian"
    tail_knot_sd: float = Field(default=3.0, ge=0.0, le=20.0, allow_inf_nan=False)
    tail_shape: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    genuine_location: Latent = 1.02
    genuine_sd: Positive = 0.50
    genuine_female_shift: Latent = 0.0
    genuine_ethnicity_shift: dict[str, Latent] = Field(
        default_factory=lambda: {e: 0.0 for e in ETHNICITIES})

    @field_validator("probe_ethnicity_shift", "entry_ethnicity_shift", "genuine_ethnicity_shift")
    @classmethod
    def _all_ethnicities(cls, v):
        unknown = sorted(set(v) - set(ETHNICITIES))
        if unknown:
            raise ValueError(f"unknown ethnicity {unknown[0]!r}; allowed: {', '.join(ETHNICITIES)}")
        return {e: float(v.get(e, 0.0)) for e in ETHNICITIES}


class Matcher(Frozen):
    """The search engine's operating point and score model.

    ``parameters`` names a score-parameter file (``"calibrated"`` is the one shipped in
    ``sim/data``; a path is read relative to the experiment file); ``[matcher.scores]`` overrides
    single parameters. Passers whose best impostor score is below ``score_floor`` are never
    scored one by one: it must not exceed any threshold of interest. Left out (or ``"auto"``), it
    is the lowest threshold the experiment uses, sweep included, and the resolved config records
    the value, so a reviewer's re-run draws exactly the same passers.
    """

    threshold: Score = 0.64
    score_floor: Score = 0.64
    parameters: str = "calibrated"
    scores: ScoreParameters = Field(default_factory=ScoreParameters)

    @model_validator(mode="before")
    @classmethod
    def _merge_parameter_file(cls, data: Any, info: ValidationInfo):
        if not isinstance(data, dict):
            return data
        name = data.get("parameters", "calibrated")
        if not isinstance(name, str):
            return data
        base_dir = (info.context or {}).get("base_dir") if info.context else None
        overrides = data.get("scores", {})
        if not isinstance(overrides, dict):
            return data
        if set(ScoreParameters.model_fields) <= set(overrides):
            return data  # every parameter given (a resolved config): the file cannot add anything
        try:
            from_file = shipped.score_parameters(name, base_dir)
        except (OSError, ValueError) as exc:
            raise ValueError(f"parameters: cannot read score parameters {name!r}: {exc}") from None
        return {**data, "scores": {**from_file, **overrides}}

    @model_validator(mode="after")
    def _floor_below_threshold(self):
        if self.score_floor > self.threshold:
            raise ValueError(
                f"threshold: must be >= matcher.score_floor ({self.score_floor}), got {self.threshold}; "
                "lower score_floor to search below it")
        return self


class Review(Frozen):
    """Operators who adjudicate alerts and intervention officers who stop passers.

    Defaults and their evidence are in docs/model.md (the Met's 2023-24 records).
    """

    operators: int = Field(default=2, ge=0, le=10_000)
    officers: int = Field(default=8, ge=0, le=10_000)
    require_operator_review: bool = True
    review_seconds_mean: NonNegative = 15.0
    review_seconds_cv: float = Field(default=0.5, ge=0.0, le=10.0, allow_inf_nan=False)
    p_confirm_true: Probability = 0.99
    p_confirm_false: Probability = 0.90
    automation_bias: float = Field(default=0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    zone_length_m: Positive = 120.0
    walking_speed_m_s: Positive = 1.3
    response_seconds_mean: NonNegative = 20.0
    engagement_minutes_mean: NonNegative = 10.0
    p_arrest: Probability = 0.46
    p_other_disposal: Probability = 0.0
    p_wrongful_arrest: Probability = 0.0

    @model_validator(mode="after")
    def _consistent(self):
        if self.p_arrest + self.p_other_disposal > 1.0 + 1e-12:
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
            raise ValueError(f"stop ({self.stop}) must be >= start ({self.start})")
        if (self.stop - self.start) / self.step > 100_000:
            raise ValueError("more than 100,000 values; widen step")
        return self

    def values(self) -> list[float]:
        n = int(math.floor((self.stop - self.start) / self.step + 1e-6)) + 1
        return [round(self.start + i * self.step, 12) for i in range(n)]


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
                raise ValueError(f"{path}: give at least one value")
        return v


class Comparison(Frozen):
    """A reported figure to set the simulation against: false alerts in so many faces."""

    label: str = "Met 2025: 12 false alerts in over 3 million faces"
    faces: int = Field(default=3_000_000, gt=0, le=10**15)
    false_alerts: int = Field(default=12, ge=0, le=10**15)


class Experiment(Frozen):
    """A scenario, a sweep, replications and a root seed."""

    experiment: ExperimentMeta
    programme: Programme
    crowd: Crowd = Field(default_factory=Crowd)
    watchlist: Watchlist
    matcher: Matcher = Field(default_factory=Matcher)
    review: Review = Field(default_factory=Review)
    sweep: Sweep = Field(default_factory=Sweep)
    comparison: Comparison | None = Field(default_factory=Comparison)

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
        """A copy with dotted-path settings replaced (one sweep cell), validated again."""
        data = self.to_dict()
        data["matcher"]["parameters"] = "inline"
        for path, value in values.items():
            _set_path(data, path, value)
        data.pop("sweep", None)
        return from_dict(data)


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


def _field_names(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Experiment
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        fields = getattr(model, "model_fields", {})
        if key not in fields:
            return []
        annotation = fields[key].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for cand in candidates:
            inner = getattr(cand, "__args__", None)
            for c in (cand, *(inner or ())):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    model = c
                    break
            else:
                continue
            break
    return list(getattr(model, "model_fields", {}))


def _format_error(err: dict[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in {
        "list[...]", "constrained-float", "function-after"})))
    # pydantic adds the union member tag to the location (e.g. "float", "list[...]"); drop it
    loc = tuple(p for p in loc if not (isinstance(p, str) and p in {"float", "int", "str", "bool", "Range"}))
    where = ".".join(str(p) for p in loc) or "experiment"
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(str(loc[-1]), _field_names(loc), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        allowed = ", ".join(_field_names(loc)) or "none"
        return f"{where}: unknown key{hint} (allowed here: {allowed})"
    if kind == "missing":
        return f"{where}: required, missing"
    message = err["msg"]
    message = message.removeprefix("Value error, ")
    if isinstance(given, (int, float, str, bool)) and not isinstance(given, dict):
        shown = repr(given) if isinstance(given, str) else given
        if len(str(shown)) <= 60:
            return f"{where}: {message.lower() if message[:1].isupper() and kind != 'value_error' else message}, got {shown}"
    return f"{where}: {message}"


def _resolve_floor(data: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``matcher.score_floor = "auto"`` (or absent) with the lowest threshold in use."""
    matcher = data.get("matcher", {})
    if not isinstance(matcher, dict) or matcher.get("score_floor", "auto") != "auto":
        return data
    thresholds: list[float] = []
    base = matcher.get("threshold", Matcher.model_fields["threshold"].default)
    swept = ((data.get("sweep") or {}).get("parameters") or {}).get("matcher.threshold") \
        if isinstance(data.get("sweep"), dict) else None
    try:
        if isinstance(swept, list):
            thresholds += [float(v) for v in swept]
        elif isinstance(swept, dict):
            thresholds.append(float(swept["start"]))
        else:
            thresholds.append(float(base))
    except (TypeError, ValueError, KeyError):
        return {**data, "matcher": {k: v for k, v in matcher.items() if k != "score_floor"}}
    floor = min(thresholds)
    if not (0.0 <= floor <= 1.0):
        return {**data, "matcher": {k: v for k, v in matcher.items() if k != "score_floor"}}
    return {**data, "matcher": {**matcher, "score_floor": floor}}


def from_dict(data: dict[str, Any], base_dir: Path | None = None) -> Experiment:
    """Validate plain data into an Experiment, or raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(["experiment: expected a table of sections"])
    data = _resolve_floor(data)
    try:
        experiment = Experiment.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            line = _format_error(err)
            if line not in problems:
                problems.append(line)
        raise ConfigError(problems) from None
    _check_sweep(experiment)
    return experiment


def _check_sweep(experiment: Experiment) -> None:
    from .sweep import expand_cells

    if not experiment.sweep.parameters:
        return
    problems: list[str] = []
    for path in experiment.sweep.parameters:
        if not _schema_has(path) or path.split(".")[0] in {"sweep", "experiment"}:
            problems.append(f"sweep.parameters.{path}: no such setting to sweep")
    if problems:
        raise ConfigError(problems)
    try:
        cells = expand_cells(experiment.sweep)
    except ValueError as exc:
        raise ConfigError([f"sweep: {exc}"]) from None
    if len(cells) > 100_000:
        raise ConfigError([f"sweep: {len(cells)} cells; at most 100,000"])
    for cell in cells:
        try:
            experiment.with_values(cell)
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in cell.items())
            raise ConfigError([f"sweep cell ({where}): {p}" for p in exc.problems]) from None


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file; raise ConfigError naming each bad field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not an experiment file"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a text (UTF-8) TOML file"]) from None
    return Experiment.from_toml(text, base_dir=path.parent)
