"""The demographic vocabulary: sexes, ethnic groups, and the passer groups made of them.

Every table in lfrsim is indexed by one experiment's groups in one order. By default they are the
census's five broad ethnic groups (2021 census, England and Wales: Asian, Black, Mixed, White,
Other) crossed with two sexes, sex varying slowest (``female_asian``, ..., ``male_other``): the
crowd's mix then comes from the census of each site, the watchlist's from its sex and ethnic
shares, and the score model's effects from sex and ethnicity.

An experiment may declare its own groups instead (``[[groups]]``, ``sim.config.PasserGroup``:
age bands, say). A declared group is a name with what the census would otherwise give: its share
of passers, its share of the watchlist, and its shifts of the latent impostor and genuine scores.
A crowd, a watchlist and the score model all speak of these groups, so they are defined here once,
at the bottom of the package, and every other module imports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SEXES = ("female", "male")
ETHNICITIES = ("asian", "black", "mixed", "white", "other")


@dataclass(frozen=True)
class Group:
    """A demographic group of passers and of watchlist entries.

    A census group has a sex and an ethnicity (and is named by them); a declared group has a
    ``label`` instead, and carries its own shares and score shifts (latent logit units).
    """

    sex: str = ""
    ethnicity: str = ""
    label: str = ""
    share: float = 0.0             # of passers at every deployment (declared groups)
    watchlist_share: float = 0.0   # of watchlist entries (declared groups)
    probe_shift: float = 0.0       # on the impostor location of this group's probes
    entry_shift: float = 0.0       # on the impostor location against this group's entries
    genuine_shift: float = 0.0     # on the genuine location of this group's watchlisted passers

    @property
    def name(self) -> str:
        return self.label or f"{self.sex}_{self.ethnicity}"

    @property
    def declared(self) -> bool:
        return bool(self.label)


DEFAULT_GROUPS: tuple[Group, ...] = tuple(Group(s, e) for s in SEXES for e in ETHNICITIES)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in DEFAULT_GROUPS)
_BY_NAME = {g.name: g for g in DEFAULT_GROUPS}


def default_groups() -> tuple[Group, ...]:
    """The ten groups every table is indexed by, in order."""
    return DEFAULT_GROUPS


def are_declared(groups: Sequence[Group]) -> bool:
    """Whether ``groups`` are an experiment's own declared groups (not the census groups)."""
    return any(g.declared for g in groups)


def group_names(groups: Sequence[Group]) -> tuple[str, ...]:
    return tuple(g.name for g in groups)


def declared_passer_shares(groups: Sequence[Group]) -> np.ndarray:
    """Declared groups' shares of passers, normalised (the schema checks they sum to 1)."""
    shares = np.array([g.share for g in groups], dtype=float)
    return shares / shares.sum()


def declared_watchlist_shares(groups: Sequence[Group]) -> np.ndarray:
    """Declared groups' shares of watchlist entries, normalised."""
    shares = np.array([g.watchlist_share for g in groups], dtype=float)
    return shares / shares.sum()


def group_named(name: str) -> Group:
    """The census group called ``name`` (``"female_black"``); KeyError for any other name."""
    return _BY_NAME[name]


def ethnicity_array(shares: Mapping[str, float]) -> np.ndarray:
    """Shares keyed by ethnicity as an array in ``ETHNICITIES`` order (missing keys are 0)."""
    return np.array([float(shares.get(e, 0.0)) for e in ETHNICITIES], dtype=float)


def group_shares(female_share: float, ethnicity_shares: Mapping[str, float] | Sequence[float] | np.ndarray,
                 groups: tuple[Group, ...] = DEFAULT_GROUPS) -> np.ndarray:
    """Shares of ``groups`` when sex and ethnicity are independent: P(sex) x P(ethnicity), normalised;
    declared groups carry their own shares of passers (the same at every place).

    ``ethnicity_shares`` is a mapping keyed by ethnicity or an array in ``ETHNICITIES`` order.
    """
    if are_declared(groups):
        return declared_passer_shares(groups)
    eth = (ethnicity_shares if isinstance(ethnicity_shares, Mapping)
           else dict(zip(ETHNICITIES, np.asarray(ethnicity_shares, dtype=float), strict=True)))
    sex = {"female": female_share, "male": 1.0 - female_share}
    shares = np.array([sex[g.sex] * eth[g.ethnicity] for g in groups])
    return shares / shares.sum()
