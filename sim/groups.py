"""The demographic vocabulary: sexes, ethnic groups, and the passer groups made of them.

Every table in lfrsim is indexed by the same groups in the same order: the census's five broad
ethnic groups (2021 census, England and Wales: Asian, Black, Mixed, White, Other) crossed with
two sexes, sex varying slowest (``female_asian``, ..., ``male_other``). A crowd, a watchlist and
the score model all speak of these groups, so they are defined here once, at the bottom of the
package, and every other module imports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SEXES = ("female", "male")
ETHNICITIES = ("asian", "black", "mixed", "white", "other")


@dataclass(frozen=True)
class Group:
    """A demographic group of passers and of watchlist entries."""

    sex: str
    ethnicity: str

    @property
    def name(self) -> str:
        return f"{self.sex}_{self.ethnicity}"


DEFAULT_GROUPS: tuple[Group, ...] = tuple(Group(s, e) for s in SEXES for e in ETHNICITIES)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in DEFAULT_GROUPS)
_BY_NAME = {g.name: g for g in DEFAULT_GROUPS}


def default_groups() -> tuple[Group, ...]:
    """The ten groups every table is indexed by, in order."""
    return DEFAULT_GROUPS


def group_named(name: str) -> Group:
    """The group called ``name`` (``"female_black"``); KeyError for an unknown name."""
    return _BY_NAME[name]


def ethnicity_array(shares: Mapping[str, float]) -> np.ndarray:
    """Shares keyed by ethnicity as an array in ``ETHNICITIES`` order (missing keys are 0)."""
    return np.array([float(shares.get(e, 0.0)) for e in ETHNICITIES], dtype=float)


def group_shares(female_share: float, ethnicity_shares: Mapping[str, float] | Sequence[float] | np.ndarray,
                 groups: tuple[Group, ...] = DEFAULT_GROUPS) -> np.ndarray:
    """Shares of ``groups`` when sex and ethnicity are independent: P(sex) x P(ethnicity), normalised.

    ``ethnicity_shares`` is a mapping keyed by ethnicity or an array in ``ETHNICITIES`` order.
    """
    eth = (ethnicity_shares if isinstance(ethnicity_shares, Mapping)
           else dict(zip(ETHNICITIES, np.asarray(ethnicity_shares, dtype=float), strict=True)))
    sex = {"female": female_share, "male": 1.0 - female_share}
    shares = np.array([sex[g.sex] * eth[g.ethnicity] for g in groups])
    return shares / shares.sum()
