"""The watchlist: N enrolled entries, each with a demographic group and an enrolment effect.

Some enrolment images attract false matches far more than others (Doddington's "lambs"), so a
watchlist is more than its size: it is a histogram of entries by group and by entry effect. The
search never visits entries one by one; it needs only how many entries of each group sit at each
effect level. Effects are binned on a fixed grid (``bin_width`` latent units, centred on
multiples of the width), so adding entries only ever adds counts: a longer list is the shorter
one plus more entries, never a reshuffle.

Entry identities survive the binning: entry ``k`` of cell (group h, bin b) has a stable id, so
false alerts can be traced to the entries that draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scores import EntryEffects

BIN_WIDTH = 0.004


@dataclass(frozen=True)
class WatchlistEntries:
    """Entry counts by entry group (rows) and effect bin (columns).

    ``counts[h, b]`` entries of group ``h`` have an effect in the bin centred at
    ``(first_bin + b) * bin_width``.
    """

    counts: np.ndarray
    first_bin: int
    bin_width: float = BIN_WIDTH

    @property
    def size(self) -> int:
        return int(self.counts.sum())

    @property
    def effects(self) -> np.ndarray:
        """Bin centres (latent units)."""
        return (self.first_bin + np.arange(self.counts.shape[1])) * self.bin_width

    @property
    def group_sizes(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def entry_ids(self, group: np.ndarray, bin_index: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """Stable ids for the ``rank``-th entry of cells (group, bin)."""
        offsets = np.concatenate([[0], np.cumsum(self.counts.ravel())])[:-1].reshape(self.counts.shape)
        return offsets[group, bin_index] + rank

    @classmethod
    def from_entries(cls, groups: np.ndarray, effects: np.ndarray, n_groups: int,
                     bin_width: float = BIN_WIDTH) -> WatchlistEntries:
        """Bin explicit entries (e.g. a real list's, or a test's)."""
        groups = np.asarray(groups, dtype=np.int64)
        bins = np.rint(np.asarray(effects, dtype=float) / bin_width).astype(np.int64)
        if bins.size == 0:
            return cls(np.zeros((n_groups, 1), dtype=np.int64), 0, bin_width)
        first = int(bins.min())
        counts = np.zeros((n_groups, int(bins.max()) - first + 1), dtype=np.int64)
        np.add.at(counts, (groups, bins - first), 1)
        return cls(counts, first, bin_width)


def draw_watchlist(size: int, group_shares: np.ndarray, effects: EntryEffects,
                   rng: np.random.Generator, bin_width: float = BIN_WIDTH) -> WatchlistEntries:
    """A random watchlist of ``size`` entries: groups by ``group_shares``, effects by ``effects``.

    Drawn directly as a histogram (a multinomial over groups, then over effect bins), which has
    exactly the distribution of binning ``size`` independently drawn entries, at a cost that does
    not grow with ``size``.
    """
    lo, hi = effects.support()
    first = int(np.floor(lo / bin_width))
    last = int(np.ceil(hi / bin_width))
    centres = np.arange(first, last + 1) * bin_width
    edges = np.concatenate([[-np.inf], centres[:-1] + bin_width / 2, [np.inf]])
    bin_p = np.diff(effects.cdf(edges))
    bin_p = np.clip(bin_p, 0.0, None)
    bin_p /= bin_p.sum()
    per_group = rng.multinomial(size, np.asarray(group_shares, dtype=float) / np.sum(group_shares))
    counts = np.stack([rng.multinomial(n, bin_p) for n in per_group]).astype(np.int64)
    used = np.flatnonzero(counts.sum(axis=0))
    if used.size == 0:
        return WatchlistEntries(np.zeros((len(per_group), 1), dtype=np.int64), 0, bin_width)
    counts = counts[:, used[0]: used[-1] + 1]
    return WatchlistEntries(counts, first + int(used[0]), bin_width)


def expected_watchlist(size: float, group_shares: np.ndarray, effects: EntryEffects,
                       bin_width: float = BIN_WIDTH) -> WatchlistEntries:
    """The average watchlist: expected (fractional) entry counts per group and effect bin."""
    lo, hi = effects.support()
    first = int(np.floor(lo / bin_width))
    last = int(np.ceil(hi / bin_width))
    centres = np.arange(first, last + 1) * bin_width
    edges = np.concatenate([[-np.inf], centres[:-1] + bin_width / 2, [np.inf]])
    bin_p = np.clip(np.diff(effects.cdf(edges)), 0.0, None)
    counts = size * np.outer(group_shares, bin_p / bin_p.sum())
    return WatchlistEntries(counts, first, bin_width)
