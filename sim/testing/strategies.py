"""Hypothesis strategies that draw small, valid, fast lfrsim configurations.

A test suite that builds on lfrsim states a property once and lets hypothesis find the
configuration that breaks it::

    from hypothesis import given, settings
    from sim.replicate import simulate_replicate
    from sim.testing.strategies import experiments

    @settings(max_examples=20, deadline=None)
    @given(experiments(threshold=0.6))
    def test_no_more_alerts_than_faces(experiment):
        counts = simulate_replicate(experiment, 0, [0.6])[0.6]["counts"]
        assert counts["alerts"].sum() <= counts["faces"].sum()

Every strategy draws a configuration that validates and that one replicate simulates in well
under a second: one to three deployments of at most an hour, at most 5,000 passers an hour, a
watchlist of at most 5,000 entries, one replication. Keyword arguments pin parts of the draw;
each takes a plain value or a strategy (``experiments(threshold=st.sampled_from([0.6, 0.64]))``).

* ``experiments()`` -> ``sim.config.Experiment``
* ``deployments()`` -> ``sim.config.Deployment``
* ``watchlists()`` -> ``sim.config.Watchlist``
* ``score_models()`` -> ``sim.config.ScoreParameters``
* ``sweeps()`` -> ``sim.config.Sweep``
* ``declared_groups()`` -> a list of ``sim.config.PasserGroup`` (``experiments(groups=...)``)

The section strategies take any of their section's settings by name
(``score_models(tail="pareto")``, ``watchlists(size=1000)``).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..config import (
    ETHNICITIES,
    GROUP_NAME_PATTERN,
    Deployment,
    Experiment,
    PasserGroup,
    ScoreParameters,
    Sweep,
    Watchlist,
    from_dict,
)

__all__ = ["deployments", "experiments", "score_models", "sweeps", "watchlists", "ethnicity_shares",
           "declared_groups", "group_names"]

MAX_WATCHLIST = 5_000
MAX_FOOTFALL_PER_HOUR = 5_000.0
MAX_DURATION_HOURS = 1.0
THRESHOLDS = (0.58, 0.72)     # vendor scores at which these score models raise a few alerts

_BOROUGHS = ("Camden", "Croydon", "Hackney", "Westminster", "Newham", "Bromley")


def _as_strategy(value: Any) -> SearchStrategy:
    return value if isinstance(value, SearchStrategy) else st.just(value)


def _pinned(model: type, pins: dict[str, Any], defaults: dict[str, SearchStrategy]) -> SearchStrategy:
    """A fixed_dictionaries strategy for a config section, with pins taking over their settings."""
    unknown = sorted(set(pins) - set(model.model_fields))
    if unknown:
        raise TypeError(f"{model.__name__} has no setting {unknown[0]!r}; "
                        f"settings: {', '.join(model.model_fields)}")
    fields = {**defaults, **{k: _as_strategy(v) for k, v in pins.items()}}
    return st.fixed_dictionaries(fields)


def _share(lo: float, hi: float) -> SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def ethnicity_shares(draw, allow_empty_groups: bool = True) -> dict[str, float]:
    """Shares over the five census ethnicities that sum to 1 (some may be 0: empty groups)."""
    low = 0 if allow_empty_groups else 1
    weights = draw(st.lists(st.integers(low, 20), min_size=len(ETHNICITIES), max_size=len(ETHNICITIES))
                   .filter(lambda w: sum(w) > 0))
    total = sum(weights)
    shares = {e: w / total for e, w in zip(ETHNICITIES, weights, strict=True)}
    # the last share absorbs rounding so the sum is 1 to the last bit the validator checks
    shares[ETHNICITIES[-1]] = max(0.0, 1.0 - sum(shares[e] for e in ETHNICITIES[:-1]))
    return shares


def _weights_to_shares(weights: list[int]) -> list[float]:
    """Integer weights as shares summing to 1 (the last absorbs rounding)."""
    total = sum(weights)
    shares = [w / total for w in weights]
    shares[-1] = max(0.0, 1.0 - sum(shares[:-1]))
    return shares


def group_names(min_size: int = 1, max_size: int = 6) -> SearchStrategy[list[str]]:
    """Distinct names a declared group may take (identifiers, never ``all``)."""
    name = st.from_regex(GROUP_NAME_PATTERN, fullmatch=True).filter(lambda n: len(n) <= 12 and n != "all")
    return st.lists(name, min_size=min_size, max_size=max_size, unique=True)


@st.composite
def declared_groups(draw, min_groups: int = 1, max_groups: int = 6,
                    names: Any = None) -> list[PasserGroup]:
    """One to six declared groups: shares of passers and of the list, shifts within +-0.08, a sex or
    none. ``names`` pins the names (a list, or a strategy of lists)."""
    chosen = draw(_as_strategy(names) if names is not None else group_names(min_groups, max_groups))
    n = len(chosen)
    weights = st.lists(st.integers(0, 20), min_size=n, max_size=n).filter(lambda w: sum(w) > 0)
    passers = _weights_to_shares(draw(weights))
    listed = _weights_to_shares(draw(weights))
    shift = _share(-0.08, 0.08)
    return [PasserGroup.model_validate({
        "name": name, "share": passers[i], "watchlist_share": listed[i],
        "sex": draw(st.sampled_from([None, "female", "male"])),
        "probe_shift": draw(shift), "entry_shift": draw(shift), "genuine_shift": draw(shift),
    }) for i, name in enumerate(chosen)]


def score_models(**pins: Any) -> SearchStrategy[ScoreParameters]:
    """Score-model parameters around the shipped calibration (gaussian or light pareto tails)."""
    shift = _share(-0.08, 0.08)
    per_ethnicity = st.fixed_dictionaries({e: shift for e in ETHNICITIES})
    defaults = {
        "impostor_location": _share(-1.0, -0.8),
        "impostor_sd": _share(0.20, 0.28),
        "same_sex_shift": _share(0.0, 0.12),
        "same_ethnicity_shift": _share(0.0, 0.18),
        "probe_female_shift": shift,
        "probe_ethnicity_shift": per_ethnicity,
        "entry_female_shift": shift,
        "entry_ethnicity_shift": per_ethnicity,
        "probe_effect_sd": st.one_of(st.just(0.0), _share(1e-3, 0.05)),
        "entry_effect_sd": st.one_of(st.just(0.0), _share(1e-3, 0.05)),
        "lamb_share": _share(0.0, 0.05),
        "lamb_shift": _share(0.0, 0.15),
        "tail": st.sampled_from(["gaussian", "pareto"]),
        "tail_knot_sd": _share(2.5, 4.0),
        "tail_shape": st.one_of(st.just(0.0), _share(1e-3, 0.1)),
        "genuine_location": _share(0.5, 1.5),
        "genuine_sd": _share(0.3, 0.7),
        "genuine_female_shift": shift,
        "genuine_ethnicity_shift": per_ethnicity,
    }
    return _pinned(ScoreParameters, pins, defaults).map(lambda d: ScoreParameters.model_validate(d))


def watchlists(**pins: Any) -> SearchStrategy[Watchlist]:
    """Watchlists of 1 to 5,000 entries, London's mix or an explicit one."""
    defaults = {
        "size": st.integers(1, MAX_WATCHLIST),
        "female_share": _share(0.0, 1.0),
        "ethnicity_shares": st.one_of(st.just("london"), ethnicity_shares()),
    }
    return _pinned(Watchlist, pins, defaults).map(lambda d: Watchlist.model_validate(d))


def _footfall() -> SearchStrategy[float | list[float]]:
    rate = _share(0.0, MAX_FOOTFALL_PER_HOUR)
    return st.one_of(rate, st.lists(rate, min_size=1, max_size=4))


def deployments(**pins: Any) -> SearchStrategy[Deployment]:
    """One deployment of at most an hour at up to 5,000 passers an hour."""
    place = st.one_of(
        st.just({}),
        st.sampled_from(_BOROUGHS).map(lambda b: {"borough": b}),
        ethnicity_shares().map(lambda s: {"ethnicity_shares": s}),
    )
    defaults = {
        "site": st.sampled_from(["High Street", "Station", "Market", "Stadium"]),
        "duration_hours": _share(0.05, MAX_DURATION_HOURS),
        "footfall_per_hour": _footfall(),
        "capture_rate": _share(0.3, 1.0),
    }
    pinned_place = {k for k in ("borough", "ward_code", "ethnicity_shares") if k in pins}
    pinned = _pinned(Deployment, pins, defaults)     # refuses an unknown pin now, not at draw time

    @st.composite
    def build(draw) -> Deployment:
        fields = draw(pinned)
        if not pinned_place:
            fields.update(draw(place))
        return Deployment.model_validate(fields)

    return build()


_deployments = deployments     # ``experiments`` takes a ``deployments`` argument of its own


def sweeps(thresholds: Any = None, watchlist_sizes: Any = None) -> SearchStrategy[Sweep]:
    """A small grid: one to three thresholds, and sometimes one or two watchlist sizes."""
    threshold_lists = st.lists(_share(*THRESHOLDS).map(lambda t: round(t, 4)), min_size=1, max_size=3,
                               unique=True)
    size_lists = st.one_of(st.none(), st.lists(st.integers(1, MAX_WATCHLIST), min_size=1, max_size=2,
                                               unique=True))

    @st.composite
    def build(draw) -> Sweep:
        params: dict[str, Any] = {"matcher.threshold": draw(_as_strategy(thresholds) if thresholds is not None
                                                            else threshold_lists)}
        sizes = draw(_as_strategy(watchlist_sizes) if watchlist_sizes is not None else size_lists)
        if sizes:
            params["watchlist.size"] = sizes
        return Sweep.model_validate({"mode": "product", "parameters": params})

    return build()


def _crowd() -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "female_share": _share(0.0, 1.0),
        "watchlisted_per_passer": _share(0.0, 0.01),
        "frames_per_passer": _share(1.0, 3.0),
        "frame_correlation": _share(0.0, 1.0),
        "footfall_elasticity": _share(-1.0, 0.0),
        "watchlisted_dispersion": st.sampled_from([0.0, 0.2]),
        "period_sd": st.just(0.0),
        "faces_per_passer": st.one_of(st.sampled_from([1.0, "frames"]), _share(0.5, 3.0)),
    })


def _review() -> SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "operators": st.integers(1, 3),
        "officers": st.integers(0, 8),
        "p_confirm_true": _share(0.5, 1.0),
        "p_confirm_false": _share(0.0, 1.0),
        "p_arrest": _share(0.0, 1.0),
    })


def _section(value: Any) -> Any:
    """A config section as plain data (models are dumped; dicts pass through)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[leaf] = value


@st.composite
def experiments(draw, *, threshold: Any = None, score_floor: Any = None, watchlist_size: Any = None,
                deployments: Any = None, watchlist: Any = None, scores: Any = None, crowd: Any = None,
                review: Any = None, sweep: Any = None, seed: Any = None, replications: Any = 1,
                groups: Any = None, settings: dict[str, Any] | None = None) -> Experiment:
    """A runnable experiment: one to three short deployments, a small watchlist, one replication.

    ``threshold``, ``score_floor``, ``watchlist_size``, ``seed`` and ``replications`` pin single
    settings; ``deployments`` (a list), ``watchlist``, ``scores``, ``crowd``, ``review`` and
    ``sweep`` pin whole sections (config models, plain dicts or strategies of them); ``settings``
    pins any dotted setting, e.g. ``{"crowd.faces_per_passer": "frames"}``. ``groups`` declares
    the experiment's own groups (``declared_groups()``; deployments then give no ethnic mix). Every
    setting is fixed (none ``"calibrated"``), so a drawn experiment's replicates differ by Monte
    Carlo alone. The search floor is the lowest threshold in use unless pinned. No sweep unless one
    is given (``sweep=sweeps()``).
    """
    deps = draw(_as_strategy(deployments) if deployments is not None
                else st.lists(_deployments(), min_size=1, max_size=3))
    wl = draw(_as_strategy(watchlist) if watchlist is not None
              else watchlists(**({"size": watchlist_size} if watchlist_size is not None else {})))
    data: dict[str, Any] = {
        "experiment": {
            "name": "drawn",
            "seed": draw(_as_strategy(seed) if seed is not None else st.integers(0, 2**63 - 1)),
            "replications": draw(_as_strategy(replications)),
        },
        "programme": {"deployments": [_section(d) for d in deps]},
        "crowd": _section(draw(_as_strategy(crowd) if crowd is not None else _crowd())),
        "watchlist": _section(wl),
        "matcher": {
            "threshold": draw(_as_strategy(threshold) if threshold is not None else _share(*THRESHOLDS)),
            "scores": _section(draw(_as_strategy(scores) if scores is not None else score_models())),
        },
        "review": _section(draw(_as_strategy(review) if review is not None else _review())),
    }
    if watchlist is not None and watchlist_size is not None:
        data["watchlist"]["size"] = draw(_as_strategy(watchlist_size))
    if score_floor is not None:
        data["matcher"]["score_floor"] = draw(_as_strategy(score_floor))
    if sweep is not None:
        data["sweep"] = _section(draw(_as_strategy(sweep)))
    if groups is not None:
        data["groups"] = [_section(g) for g in draw(_as_strategy(groups))]
        for d in data["programme"]["deployments"]:
            d.pop("ethnicity_shares", None)     # declared groups bring their own shares
    for path, value in (settings or {}).items():
        _set(data, path, draw(_as_strategy(value)))
    return from_dict(data)

