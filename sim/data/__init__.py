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
"""

from __future__ import annotations

import csv
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..groups import ETHNICITIES


def path(name: str) -> Path:
    """The installed path of a shipped data file."""
    return Path(str(resources.files(__package__).joinpath(name)))


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


def score_parameters(name: str, base_dir: Path | str | None = None) -> dict[str, Any]:
    """The ``[parameters]`` table of a score-parameter file.

    ``"inline"`` means none (every parameter is given in the experiment); anything else is a path,
    relative to ``base_dir`` when not absolute. (``"calibrated"``, the shipped posterior, is drawn
    per replicate by ``sim.draws``, not read from here.)
    """
    if name == "inline":
        return {}
    file = Path(name)
    if not file.is_absolute() and base_dir is not None:
        file = Path(base_dir) / file
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
