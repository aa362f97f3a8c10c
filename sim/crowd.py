"""Deployments and the crowds that pass them.

A deployment is a van with cameras on a high street for a few hours. Passers arrive as a
(non-homogeneous) Poisson process at the footfall rate; each is of a demographic group drawn
from the site's census mix, has their face captured with some probability, gives the camera one
or more frames, and is on the watchlist with a small probability.

Passers are exchangeable given their group and frame count, so a crowd is drawn as counts per
(group, frames) cell: the exact distribution of drawing passers one by one, at a cost that does
not grow with the footfall. ``sim.search`` draws every deployment's counts at once and, of the
few passers who may raise an alert, their scores and arrival times from the footfall profile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from . import data as shipped
from .config import (
    CALIBRATED,
    REFERENCE_FOOTFALL_PER_HOUR,
    Crowd,
    Deployment,
    Programme,
    ProgrammeGenerator,
)
from .groups import (
    Group,
    are_declared,
    declared_passer_shares,
    declared_watchlist_shares,
    ethnicity_array,
    group_shares,
)

# London's residents taken as half female when a group's share of the watchlist is set against its
# share of the population (the 2021 census gives 51% female; the even split is the model's
# documented default for crowds too, ``crowd.female_share``)
POPULATION_FEMALE_SHARE = 0.5


@dataclass(frozen=True)
class Site:
    """One deployment as the simulation runs it."""

    index: int
    site: str
    date: str
    borough: str
    ward_code: str
    duration_hours: float
    footfall_profile: np.ndarray      # passers per hour in equal slices of the deployment
    capture_rate: float
    ethnicity_shares: np.ndarray      # over ETHNICITIES
    # the deployment's own operating point and counting, where it sets them (else the programme's)
    watchlist_size: int | None = None
    threshold: float | None = None
    faces_per_passer: float | None = None
    watchlisted_per_passer: float | None = None

    @property
    def duration_seconds(self) -> float:
        return self.duration_hours * 3600.0

    @property
    def expected_passers(self) -> float:
        return float(np.mean(self.footfall_profile) * self.duration_hours)

    def group_shares(self, groups: tuple[Group, ...], female_share: float) -> np.ndarray:
        """Shares of ``groups`` among this site's passers: the census mix of its place, or the
        declared groups' own shares (the same at every site; ``groups.group_shares``)."""
        return group_shares(female_share, self.ethnicity_shares, groups)


def place_shares(ward_code: str, borough: str) -> np.ndarray:
    """Census ethnic shares of a ward, else of a borough, else of London (``ETHNICITIES`` order)."""
    if ward_code:
        return ethnicity_array(shipped.ward_shares(ward_code))
    if borough:
        return ethnicity_array(shipped.borough_shares(borough))
    return ethnicity_array(shipped.london_shares())


# Town-centre wards of the six zones named in the Met's 2025 expansion announcement
SIX_ZONES_2025 = {
    "Brixton": "E05014098",          # Brixton Windrush, Lambeth
    "Kingston": "E05013938",         # Kingston Town, Kingston upon Thames
    "Ealing": "E05013520",           # Ealing Broadway, Ealing
    "Finsbury Park": "E05013703",    # Finsbury Park, Islington
    "Southwark": "E05011095",        # Borough & Bankside (London Bridge), Southwark
    "Spitalfields": "E05009333",     # Spitalfields & Banglatown, Tower Hamlets
}


def met_2024_sites() -> list[dict[str, str]]:
    """The (site, borough, ward) of each of the Met's 2024 deployments with a known ward."""
    return [{"site": r["deployment"], "borough": r["borough"], "ward_code": r["ward_code"]}
            for r in shipped.met_records()
            if r["date"].startswith("2024") and shipped.has_ward(r["ward_code"])]


def site_pool(generator: ProgrammeGenerator) -> list[dict[str, str]]:
    """The (site, borough, ward_code) places a generated programme draws from, uniformly."""
    if generator.sites == "met_2024":
        return met_2024_sites()
    if generator.sites == "six_zones_2025":
        return [{"site": name, "borough": shipped.census()[0][code]["borough"], "ward_code": code}
                for name, code in SIX_ZONES_2025.items()]
    return [{"site": s, "borough": s if shipped.has_borough(s) else "",
             "ward_code": s if shipped.has_ward(s) else ""} for s in generator.sites]


def faces_per_passer(crowd: Crowd) -> float:
    """Recorded faces per passer: the crowd's counting factor, or its mean frames when every
    frame counts."""
    if crowd.faces_per_passer == CALIBRATED:
        raise ValueError("crowd.faces_per_passer comes from the posterior; resolve the experiment "
                         "for a replicate first (sim.draws.resolve)")
    return crowd.frames_per_passer if crowd.faces_per_passer == "frames" else float(crowd.faces_per_passer)


def deployment_faces_per_passer(deployment: Deployment, crowd: Crowd) -> float:
    """Recorded faces per passer at a deployment: its own counting factor, else the crowd's."""
    if deployment.faces_per_passer is not None:
        return deployment.faces_per_passer
    return faces_per_passer(crowd)


def footfall_profile(deployment: Deployment, crowd: Crowd) -> np.ndarray:
    """Passers an hour over a deployment: its footfall, or its recorded faces turned into passers."""
    if deployment.recorded_faces is not None:
        passers = deployment.recorded_faces / deployment_faces_per_passer(deployment, crowd)
        rate = passers / deployment.duration_hours
        return np.array([rate])
    return np.atleast_1d(np.asarray(deployment.footfall_per_hour, dtype=float))


def generator_passers_per_hour(generator: ProgrammeGenerator, crowd: Crowd) -> float:
    """Mean passers an hour of a generated deployment (recorded faces turned into passers)."""
    if generator.recorded_faces_per_hour is not None:
        return generator.passers_per_hour(faces_per_passer(crowd))
    return generator.passers_per_hour(1.0)


def realise_programme(programme: Programme, crowd: Crowd, rng: np.random.Generator) -> list[Site]:
    """The deployments of a programme; a generated programme draws its sites with ``rng``."""
    if programme.deployments:
        return [Site(index=i, site=d.site, date=d.date, borough=d.borough, ward_code=d.ward_code,
                     duration_hours=d.duration_hours,
                     footfall_profile=footfall_profile(d, crowd),
                     capture_rate=d.capture_rate,
                     ethnicity_shares=(ethnicity_array(d.ethnicity_shares) if d.ethnicity_shares
                                       else place_shares(d.ward_code, d.borough)),
                     watchlist_size=d.watchlist_size, threshold=d.threshold,
                     faces_per_passer=d.faces_per_passer, watchlisted_per_passer=d.watchlisted_per_passer)
                for i, d in enumerate(programme.deployments)]
    gen = programme.generator
    assert gen is not None
    n = gen.weeks * gen.deployments_per_week
    pool = site_pool(gen)
    picks = rng.integers(0, len(pool), size=n)
    rate = generator_passers_per_hour(gen, crowd)
    if gen.footfall_cv > 0:
        sigma = np.sqrt(np.log1p(gen.footfall_cv ** 2))
        footfall = rate * rng.lognormal(-sigma ** 2 / 2, sigma, size=n)
    else:
        footfall = np.full(n, rate)
    start = dt.date.fromisoformat(gen.start_date)
    sites = []
    for i in range(n):
        week, slot = divmod(i, gen.deployments_per_week)
        day = start + dt.timedelta(days=7 * week + slot % gen.days_per_week)
        place = pool[picks[i]]
        sites.append(Site(index=i, site=place["site"], date=day.isoformat(), borough=place["borough"],
                          ward_code=place["ward_code"], duration_hours=gen.duration_hours,
                          footfall_profile=np.array([footfall[i]]), capture_rate=gen.capture_rate,
                          ethnicity_shares=place_shares(place["ward_code"], place["borough"])))
    return sites


def frames_distribution(crowd: Crowd) -> tuple[np.ndarray, np.ndarray]:
    """Frame counts 1..M and their probabilities: 1 + Poisson(mean - 1), tail folded into M."""
    extra = crowd.frames_per_passer - 1.0
    if extra <= 0:
        return np.array([1]), np.array([1.0])
    from scipy import stats  # only here: scipy.stats is slow to import and rarely needed

    top = int(stats.poisson.isf(1e-12, extra)) + 1
    k = np.arange(top + 1)
    pmf = stats.poisson.pmf(k, extra)
    pmf[-1] += stats.poisson.sf(top, extra)
    return k + 1, pmf / pmf.sum()


def watchlisted_probability(crowd: Crowd, groups: tuple[Group, ...], watchlist_size: int,
                            watchlist_shares: np.ndarray, per_passer: float | None = None) -> np.ndarray:
    """P(a passer of each group is on the watchlist) at a site of 1,000 passers an hour, before
    deployment effects: see ``sim.config.Crowd``. ``per_passer`` replaces the crowd's
    ``watchlisted_per_passer`` (a deployment's own share). A group's share of the population is
    London's census share, or a declared group's share of passers."""
    if per_passer is None:
        if crowd.watchlisted_per_passer == CALIBRATED:
            raise ValueError("crowd.watchlisted_per_passer comes from the posterior; resolve the experiment "
                             "for a replicate first (sim.draws.resolve)")
        per_passer = float(crowd.watchlisted_per_passer)
    scale = (watchlist_size / crowd.prevalence_reference_size) ** crowd.prevalence_elasticity
    if are_declared(groups):
        population = declared_passer_shares(groups)
        # a group nobody in the crowd belongs to: no passer of it to be on the list
        over = np.divide(watchlist_shares, population, out=np.zeros(len(groups)), where=population > 0)
        return per_passer * scale * over
    london = shipped.london_shares()
    population = np.array([POPULATION_FEMALE_SHARE * london[g.ethnicity] for g in groups])
    return per_passer * scale * watchlist_shares / population


def site_watchlisted_probability(crowd: Crowd, groups: tuple[Group, ...], sites: list[Site],
                                 watchlist_size: int, watchlist_shares: np.ndarray,
                                 base: np.ndarray) -> np.ndarray:
    """P(watchlisted) per (deployment, group) before deployment effects: ``base`` (the programme's
    list size and share), or, at a deployment with its own list size or share, that deployment's.

    A longer list puts more passers on it (``crowd.prevalence_elasticity``), as between
    programmes."""
    rows = [base if s.watchlist_size is None and s.watchlisted_per_passer is None
            else watchlisted_probability(crowd, groups, s.watchlist_size or watchlist_size, watchlist_shares,
                                         s.watchlisted_per_passer)
            for s in sites]
    return np.array(rows).reshape(len(sites), len(groups))


MAX_LOG_FOOTFALL_FACTOR = 700.0   # e^700 ~ 1e304: beyond it a factor would overflow to inf


def footfall_factors(passers_per_hour: np.ndarray, elasticity: float) -> np.ndarray:
    """``(passers per hour / 1,000) ** elasticity`` per place, 0 where nobody passes.

    Finite however small the footfall or strong the elasticity: a factor beyond ~1e304 (a place a
    handful of people pass in a century, under a negative elasticity) is held there, and the
    watchlisted share it multiplies is capped at 0.5 anyway."""
    pph = np.asarray(passers_per_hour, dtype=float)
    safe = np.where(pph > 0, pph, REFERENCE_FOOTFALL_PER_HOUR)
    ratio = safe / REFERENCE_FOOTFALL_PER_HOUR
    # a footfall so small that the ratio underflows to 0 still has a finite logarithm
    log_ratio = np.where(ratio > 0, np.log(np.where(ratio > 0, ratio, 1.0)),
                         np.log(safe) - np.log(REFERENCE_FOOTFALL_PER_HOUR))
    return np.where(pph > 0, np.exp(np.minimum(elasticity * log_ratio, MAX_LOG_FOOTFALL_FACTOR)), 0.0)


def footfall_factor(sites: list[Site], elasticity: float) -> np.ndarray:
    """How each deployment's watchlisted share follows its footfall (``footfall_factors`` of each
    site's mean passers per hour)."""
    return footfall_factors(np.array([float(np.mean(s.footfall_profile)) for s in sites]), elasticity)


def deployment_watchlisted(crowd: Crowd, sites: list[Site], base: np.ndarray,
                           rng: np.random.Generator) -> np.ndarray:
    """P(watchlisted) per (deployment, group): the base share (per group, or per deployment and
    group) times each deployment's footfall factor and gamma effect (mean 1, variance
    ``crowd.watchlisted_dispersion``), at most 0.5."""
    for name in ("footfall_elasticity", "watchlisted_dispersion"):
        if getattr(crowd, name) == CALIBRATED:
            raise ValueError(f"crowd.{name} comes from the posterior; resolve the experiment "
                             "for a replicate first (sim.draws.resolve)")
    factor = footfall_factor(sites, float(crowd.footfall_elasticity))
    phi = float(crowd.watchlisted_dispersion)
    if phi > 0 and len(sites):
        factor = factor * rng.gamma(1.0 / phi, phi, size=len(sites))
    base = base[None, :] if base.ndim == 1 else base
    return np.clip(factor[:, None] * base, 0.0, 0.5)


def watchlist_group_shares(female_share: float, ethnicity_shares: dict[str, float] | str,
                           groups: tuple[Group, ...]) -> np.ndarray:
    """Shares of ``groups`` among watchlist entries (``"london"``: London's census mix), or the
    declared groups' own ``watchlist_share``."""
    if are_declared(groups):
        return declared_watchlist_shares(groups)
    eth = shipped.london_shares() if ethnicity_shares == "london" else ethnicity_shares
    return group_shares(female_share, eth, groups)
