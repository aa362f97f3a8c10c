"""Reference data shipped with lfrsim, read from the installed package (never from the network).

* ``london_ward_ethnicity_census2021.csv`` — 2021 census residents by ward and borough in five
  broad ethnic groups (data.london.gov.uk, Open Government Licence).
* ``met_lfr_deployments_2020_2024.csv`` — the Met's published LFR deployment records, Feb 2020 to
  Dec 2024 (met.police.uk deployment grids compiled by Zoë Garbett AM; redistributed under MIT
  by github.com/langtonhugh/facial-recognition-doc).
* ``published_figures.toml`` — operating points and outcome figures with their sources
  (NPL 2023, NIST IR 8280, Howard et al. 2019, the Met's statements).
* ``posterior.toml`` — the joint Bayesian calibration (``lfrsim calibrate``): priors, evidence,
  diagnostics, posterior medians in ``ScoreParameters`` form (``[parameters]``), checks, headline.
* ``posterior.npz`` — its equal-weight draws (float32, one array per named quantity, plus
  ``p_arrest``), which forward runs draw from.
* ``score_parameters.toml`` — the earlier MAP fit, superseded by ``posterior.toml``.

See ``PROVENANCE.md`` beside this file.

An experiment names one of these files as ``lfrsim:NAME`` (``grid =
"lfrsim:met_lfr_deployments_2020_2024.csv"``): the same file wherever the experiment file lives,
an installed wheel included (``resolve``).
"""

from __future__ import annotations

import csv
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..groups import ETHNICITIES

SHIPPED = "lfrsim:"    # the prefix that names a shipped data file in an experiment


def path(name: str) -> Path:
    """The installed path of a shipped data file."""
    return Path(str(resources.files(__package__).joinpath(name)))


def names(suffix: str = "") -> list[str]:
    """The shipped data files (ending in ``suffix``, e.g. ``".csv"``), sorted."""
    return sorted(f.name for f in resources.files(__package__).iterdir()
                  if f.is_file() and not f.name.startswith(("_", ".")) and not f.name.endswith(".py")
                  and f.name.endswith(suffix))


def resolve(name: str, base_dir: Path | str | None, available: list[str] | None = None,
            kind: str = "data") -> Path:
    """The file an experiment names: ``lfrsim:NAME`` is the shipped data file ``NAME`` wherever
    the experiment lives; anything else is a path, relative to ``base_dir`` when not absolute.

    ``available`` are the shipped names that fit (default: every shipped file); any other shipped
    name is a ValueError that lists them.
    """
    if name.startswith(SHIPPED):
        file = name[len(SHIPPED):]
        available = names() if available is None else available
        if file not in available:
            listed = ", ".join(f"{SHIPPED}{n}" for n in available) or "none"
            raise ValueError(f"{name!r} is not a {kind} file shipped with lfrsim; the shipped ones: {listed}")
        return path(file)
    file = Path(name)
    return file if file.is_absolute() or base_dir is None else Path(base_dir) / file


@cache
def census() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """Ward rows by ward code, and borough resident counts by ethnicity."""
    wards: dict[str, dict[str, Any]] = {}
    boroughs: dict[str, dict[str, float]] = {}
    with open(path("london_ward_ethnicity_census2021.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            counts = {e: float(row[e]) for e in ETHNICITIES}
            wards[row["ward_code"]] = {"ward_name": row["ward_name"], "borough": row["borough"], **counts}
            b = boroughs.setdefault(row["borough"], {e: 0.0 for e in ETHNICITIES})
            for e in ETHNICITIES:
                b[e] += counts[e]
    return wards, boroughs


def has_ward(code: str) -> bool:
    return code in census()[0]


def has_borough(name: str) -> bool:
    return name in census()[1]


def boroughs() -> list[str]:
    return sorted(census()[1])


def _shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts[e] for e in ETHNICITIES)
    return {e: counts[e] / total for e in ETHNICITIES}


def ward_shares(code: str) -> dict[str, float]:
    """Census ethnic shares of a ward's residents."""
    return _shares(census()[0][code])


def borough_shares(name: str) -> dict[str, float]:
    """Census ethnic shares of a borough's residents."""
    return _shares(census()[1][name])


@cache
def london_shares() -> dict[str, float]:
    """Census ethnic shares of all London residents."""
    totals = {e: sum(b[e] for b in census()[1].values()) for e in ETHNICITIES}
    return _shares(totals)


@cache
def met_records() -> list[dict[str, str]]:
    """The Met's deployment records as rows of strings (empty = not published)."""
    with open(path("met_lfr_deployments_2020_2024.csv"), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@cache
def published_figures() -> dict[str, Any]:
    with open(path("published_figures.toml"), "rb") as fh:
        return tomllib.load(fh)


@cache
def score_parameter_files() -> list[str]:
    """The shipped TOML files with a ``[parameters]`` table (a score model's parameters)."""
    out = []
    for name in names(".toml"):
        with open(path(name), "rb") as fh:
            if isinstance(tomllib.load(fh).get("parameters"), dict):
                out.append(name)
    return out


def score_parameters(name: str, base_dir: Path | str | None = None) -> dict[str, Any]:
    """The ``[parameters]`` table of a score-parameter file.

    ``"inline"`` means none (every parameter is given in the experiment); ``lfrsim:NAME`` is a
    shipped file (``lfrsim:score_parameters.toml``); anything else is a path, relative to
    ``base_dir`` when not absolute. (``"calibrated"``, the shipped posterior, is drawn per
    replicate by ``sim.draws``, not read from here.)
    """
    if name == "inline":
        return {}
    file = resolve(name, base_dir, score_parameter_files() if name.startswith(SHIPPED) else None,
                   "score-parameter")
    with open(file, "rb") as fh:
        data = tomllib.load(fh)
    params = data.get("parameters")
    if not isinstance(params, dict):
        raise ValueError(f"{file} has no [parameters] table")
    return params


@cache
def posterior() -> dict[str, Any]:
    """The shipped calibration's summary file (``posterior.toml``: priors, evidence, diagnostics,
    medians, checks)."""
    with open(path("posterior.toml"), "rb") as fh:
        return tomllib.load(fh)


def posterior_medians() -> dict[str, Any]:
    """The shipped posterior's medians in ``ScoreParameters`` form (``[parameters]``)."""
    return posterior()["parameters"]
