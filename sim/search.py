"""Fast 1:N search: the best impostor score of each passer without comparing them with N entries.

A live camera compares every face with every watchlist entry and alerts when the best candidate
reaches the threshold. Done literally that is N score draws per face. The simulator needs only the
*best* score, and only for the few passers whose best score could matter.

For a probe of group ``g`` with probe effect ``p``, entries are independent given the probe, so
the best impostor score ``I`` has

    P(I < t | p) = prod_entries F(t - p - mu[g, h] - e_j) = exp(-H_g(t - p)),

with the *hazard* ``H_g(x) = -sum_(h, bins) n[h, b] log F(x - mu[g, h] - e_b)``. ``SearchTable``
tabulates ``log H_g`` once per watchlist on a grid whose step equals the entry-effect bin width,
by one convolution per (probe group, entry group) pair; after that, nothing costs more for a
watchlist of 10^7 entries than for one of 10^2.

A passer is scored one by one only if their best score clears ``score_floor``: the number of such
passers in each (group, looks) cell is binomial with the exact exceedance probability, their
probe effects are drawn from the posterior given the exceedance, and their best score by
inverting the hazard. Everyone else provably raises no alert at any threshold at or above the
floor. Probe effects live on the same grid (a discretised normal), which makes the exact
expectations a convolution too:

    S_g(t) = P(I >= t) = sum_i w_i * (1 - exp(-k * H_g(t - p_i)))   (k looks per passer)

computed with ``expm1`` so that rates down to 1e-300 keep their precision.

Because ``H_g`` is a sum over entries, a watchlist of the same make-up but ``c`` times the size
has exactly ``c * H_g``: one table answers for every size from 10^2 to 10^7. The closed forms a
researcher asks for, per probe group and on the vendor's score scale, are the module functions

* ``fpir(table, g, T, N)``  false-positive identification rate: P(best impostor >= T);
* ``tpir(table, g, T, N)``  true-positive identification rate: P(own entry is best and >= T);
* ``sel(table, g, T, N)``   selectivity: expected entries at or above T per search,
  ``sum_(h, b) n[h, b] E_p[sf(T - p - mu[g, h] - e_b)]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .config import Experiment
from .crowd import (
    Site,
    deployment_watchlisted,
    faces_per_passer,
    frames_distribution,
    realise_programme,
    site_watchlisted_probability,
    watchlist_group_shares,
    watchlisted_probability,
)
from .scores import ScoreModel, effective_looks, score_model, to_latent
from .seeds import STAGE_CROWD, STAGE_PROGRAMME, STAGE_WATCHLIST, stream
from .watchlist import WatchlistEntries, draw_watchlist

HAZARD_HIGH = 50.0     # P(best < x) <= exp(-50) below the grid: treated as certain
HAZARD_LOW = 1e-30     # grid ends where the hazard falls below this; beyond it, log-linear tail
PROBE_SPAN_SD = 8.0
LATENT_TOP = 13.8      # logit(0.999999)


@dataclass(eq=False)
class SearchTable:
    """Tabulated best-impostor hazards for one score model and one watchlist.

    Grid point ``j`` is the latent score ``x0 + j * step``; ``log_hazard[g, j]`` is
    ``log H_g`` there for a probe with zero probe effect. Probe effects are ``offsets * step``
    with probabilities ``weights``. ``floor_index`` is the grid point of the search floor.

    ``build_search_table`` makes it and nothing changes its tabulated arrays afterwards; it is not
    frozen because it memoises what it derives from them (exceedance curves per number of looks,
    the inverse-cdf tables of its draws) in its two caches.
    """

    model: ScoreModel
    watchlist_size: int
    x0: float
    step: float
    log_hazard: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray
    floor_index: int
    _exceed_cache: dict = field(default_factory=dict, compare=False, repr=False)
    _draw_cache: dict = field(default_factory=dict, compare=False, repr=False)
    watchlist: WatchlistEntries | None = field(default=None, compare=False, repr=False)

    @property
    def floor(self) -> float:
        return self.x0 + self.floor_index * self.step

    @property
    def grid(self) -> np.ndarray:
        return self.x0 + self.step * np.arange(self.log_hazard.shape[1])

    # -- the hazard and its inverse -------------------------------------------------------

    def _padded(self, pad: int) -> np.ndarray:
        """log H on the grid extended by ``pad`` points each side (log-linear beyond the top)."""
        lh = self.log_hazard
        lo = np.repeat(lh[:, :1], pad, axis=1)
        slope = lh[:, -1:] - lh[:, -2:-1]
        hi = lh[:, -1:] + slope * np.arange(1, pad + 1)
        return np.concatenate([lo, lh, hi], axis=1)

    def log_hazard_at(self, g: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log H_g(x) at arbitrary latent x (linear interpolation of log H on the grid)."""
        g = np.asarray(g, dtype=np.int64)
        pos = (np.asarray(x, dtype=float) - self.x0) / self.step
        last = self.log_hazard.shape[1] - 1
        j = np.clip(np.floor(np.nan_to_num(pos, posinf=last, neginf=0.0)), 0, last - 1).astype(np.int64)
        frac = pos - j
        a = self.log_hazard[g, j]
        b = self.log_hazard[g, j + 1]
        out = a + (b - a) * frac
        out = np.where(pos < 0, self.log_hazard[g, 0], out)
        with np.errstate(invalid="ignore"):
            out = np.where(np.isposinf(pos), -np.inf, out)
        return out

    def _inversion_keys(self) -> tuple[np.ndarray, float]:
        """All groups' -log H rows end to end, each shifted past the last: one sorted key array."""
        if ("keys",) not in self._draw_cache:
            neg = -self.log_hazard                       # increasing along each row
            span = float(neg.max() - neg.min()) + 1.0
            shift = span * np.arange(neg.shape[0])[:, None]
            self._draw_cache[("keys",)] = ((neg + shift).ravel(), span)
        return self._draw_cache[("keys",)]

    def invert_hazard(self, g: np.ndarray, log_h: np.ndarray) -> np.ndarray:
        """The latent x with log H_g(x) = log_h (H is decreasing); -inf below the grid.

        Linear in log H between grid points, log-linear beyond the top. Every group is found by
        one binary search in the rows laid end to end, then interpolated in its own row.
        """
        g = np.asarray(g, dtype=np.int64)
        log_h = np.asarray(log_h, dtype=float)
        lh = self.log_hazard
        n = lh.shape[1]
        keys, span = self._inversion_keys()
        j = keys.searchsorted(-log_h + span * g, side="right") - g * n - 1
        j = np.clip(j, 0, n - 2)
        a, b = lh[g, j], lh[g, j + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = self.x0 + self.step * (j + (log_h - a) / (b - a))
        top = log_h < lh[g, -1]
        slope = (lh[g, -1] - lh[g, -2]) / self.step
        x = np.where(top, self.x0 + self.step * (n - 1) + (log_h - lh[g, -1]) / slope, x)
        return np.where(log_h > lh[g, 0], -np.inf, x)

    # -- exact probabilities ---------------------------------------------------------------

    def exceedance(self, looks: float) -> np.ndarray:
        """S_g(x_j) = P(best impostor >= x_j) for a random probe of each group; shape (G, J)."""
        key = float(looks)
        if key not in self._exceed_cache:
            pad = int(np.abs(self.offsets).max(initial=0))
            padded = -np.expm1(-looks * np.exp(self._padded(pad)))
            n = self.log_hazard.shape[1]
            # probe effect p = off*step: P(I >= x | p) = a(H(x - p)); averaging over the
            # (symmetric) offsets is a convolution with the weights
            if len(self.offsets) == 1:
                s = padded[:, pad: pad + n].copy()
            else:
                s = np.stack([np.convolve(row, self.weights, mode="valid")[:n] for row in padded])
            # a probability: round-off in the weighted sum must not carry it past 1
            self._exceed_cache[key] = np.minimum(s, 1.0)
        return self._exceed_cache[key]

    def impostor_sf(self, g: int, t: np.ndarray, looks: float = 1.0) -> np.ndarray:
        """P(best impostor score >= t) for a probe of group ``g`` (log-linear between grid points)."""
        return np.exp(self.impostor_logsf(g, t, looks))

    def impostor_logsf(self, g: int, t: np.ndarray, looks: float = 1.0) -> np.ndarray:
        s = self.exceedance(looks)[g]
        with np.errstate(divide="ignore"):
            log_s = np.log(s)
        t = np.asarray(t, dtype=float)
        pos = (t - self.x0) / self.step
        last = len(s) - 1
        finite_pos = np.nan_to_num(pos, posinf=last, neginf=0.0)
        j = np.clip(np.floor(finite_pos), 0, last - 1).astype(np.int64)
        frac = np.clip(finite_pos - j, 0.0, None)
        a, b = log_s[j], log_s[j + 1]
        with np.errstate(invalid="ignore"):
            out = np.where(np.isfinite(a) & np.isfinite(b), a + (b - a) * frac, np.where(frac < 0.5, a, b))
            slope = log_s[-1] - log_s[-2] if np.isfinite(log_s[-2]) else -np.inf
            out = np.where(pos > last, log_s[-1] + slope * (pos - last), out)
        out = np.where(pos < 0, log_s[0], out)
        out = np.where(np.isposinf(t), -np.inf, out)
        return np.minimum(out, 0.0)

    def mated_alert_probabilities(self, g: int, t: float, looks: float = 1.0,
                                  size_scale: float = 1.0) -> tuple[float, float]:
        """(P(true alert), P(false alert)) at threshold t for a watchlisted passer of group g.

        True: own entry is the best candidate and reaches t. False: another entry beats the own
        entry and reaches t. Genuine and impostor scores are independent given the probe.
        ``size_scale`` searches a watchlist of the same make-up ``size_scale`` times as large.
        """
        p_true, p_false = self.mated_alert_curves(g, np.array([float(t)]), looks, size_scale)
        return float(p_true[0]), float(p_false[0])

    def mated_alert_curves(self, g: int, t: np.ndarray, looks: float = 1.0, size_scale: float = 1.0
                           ) -> tuple[np.ndarray, np.ndarray]:
        """``mated_alert_probabilities`` at many latent thresholds ``t`` at once.

        Both are integrals from t up, by the trapezoid rule on the grid points above t: the
        intervals between grid points are summed once from the top (a reversed cumulative sum),
        and each threshold adds its own partial interval from t to the next grid point.
        """
        m = self.model
        t = np.asarray(t, dtype=float)
        grid = self.grid
        hi = max(grid[-1], m.genuine_location[g] + 12 * m.genuine_sd[g])
        pts = np.concatenate([grid[grid < hi], [hi]])
        gen_cdf = m.genuine_cdf(g, pts, looks)
        gen_sf = np.exp(m.genuine_logsf(g, pts, looks))     # exact in the upper tail
        imp_sf = np.exp(self.impostor_logsf(g, pts, looks * size_scale))

        def tail(step_sum: np.ndarray) -> np.ndarray:       # tail[j]: sum of intervals from pts[j] up
            return np.concatenate([np.cumsum(step_sum[::-1])[::-1], [0.0]])

        true_tail = tail(-np.diff(gen_sf) * (1.0 - 0.5 * (imp_sf[:-1] + imp_sf[1:])))
        false_tail = tail(-np.diff(imp_sf) * 0.5 * (gen_cdf[:-1] + gen_cdf[1:]))
        never = np.isposinf(t)
        lo = np.maximum(np.where(never, grid[0], t), grid[0])
        j = np.minimum(np.searchsorted(pts, lo, side="right"), len(pts) - 1)   # first point above lo
        lo_gen_cdf = m.genuine_cdf(g, lo, looks)
        lo_gen_sf = np.exp(m.genuine_logsf(g, lo, looks))
        lo_imp_sf = np.exp(self.impostor_logsf(g, lo, looks * size_scale))
        p_true = ((lo_gen_sf - gen_sf[j]) * (1.0 - 0.5 * (lo_imp_sf + imp_sf[j])) + true_tail[j]
                  + gen_sf[-1])
        p_false = ((lo_imp_sf - imp_sf[j]) * 0.5 * (lo_gen_cdf + gen_cdf[j]) + false_tail[j]
                   + imp_sf[-1])
        return (np.where(never, 0.0, np.clip(p_true, 0.0, 1.0)),
                np.where(never, 0.0, np.clip(p_false, 0.0, 1.0)))

    def true_alert_probabilities(self, t: float, looks: float = 1.0, size_scale: float = 1.0) -> np.ndarray:
        """P(true alert) at latent threshold t for a watchlisted passer of each group, shape (G,).

        The vectorised form of ``mated_alert_probabilities(g, t)[0]``: the own entry's genuine
        score G must reach t and beat the best impostor I, P = int_t^inf f_G(x) P(I < x) dx.
        """
        m = self.model
        if t == np.inf:
            return np.zeros(len(m.groups))
        grid = self.grid
        lo = max(t, grid[0])
        pts = np.concatenate([[lo], grid[grid > lo]])
        if len(pts) == 1:
            pts = np.array([lo, lo + self.step])
        loc = m.genuine_location[:, None]
        sd = m.genuine_sd[:, None]
        # best of k looks: log P(G >= x) = log(1 - Phi(z)^k), exact in the upper tail
        log_cdf = looks * special.log_ndtr((pts[None, :] - loc) / sd)
        gen_sf = -np.expm1(log_cdf)
        imp_sf = np.exp(np.stack([self.impostor_logsf(g, pts, looks * size_scale)
                                  for g in range(len(m.groups))]))
        mid_imp = 0.5 * (imp_sf[:, :-1] + imp_sf[:, 1:])
        p_true = np.sum(-np.diff(gen_sf, axis=1) * (1.0 - mid_imp), axis=1) + gen_sf[:, -1]
        return np.clip(p_true, 0.0, 1.0)

    # -- sampling --------------------------------------------------------------------------

    def floor_exceedance(self, looks: float) -> np.ndarray:
        """P(best impostor >= floor) per probe group, for ``looks`` independent looks."""
        return self.exceedance(looks)[:, self.floor_index]

    def _exceeder_posterior(self, g: int, looks: float) -> tuple[np.ndarray, np.ndarray]:
        """P(clear the floor | probe effect) on the probe grid, and the posterior's cdf."""
        key = ("exceeder", g, float(looks))
        if key not in self._draw_cache:
            j = self.floor_index - self.offsets
            lh = self.log_hazard[g, np.clip(j, 0, self.log_hazard.shape[1] - 1)]
            a = -np.expm1(-looks * np.exp(lh))
            post = self.weights * a
            post = post / post.sum()
            cdf = post.cumsum()
            self._draw_cache[key] = (a, cdf / cdf[-1])
        return self._draw_cache[key]

    def draw_exceeders(self, g: int, looks: float, count: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Probe effects and best impostor scores of ``count`` passers known to clear the floor."""
        _, p, best = self.draw_exceeder_cells([(g, looks, count)], rng)
        return p, best

    def draw_exceeder_cells(self, cells: list[tuple[int, float, int]], rng: np.random.Generator
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Groups, probe effects and best scores of passers known to clear the floor, for several
        (group, looks, count) cells at once.

        Each cell draws its random numbers in turn, as one ``draw_exceeders`` call would; the
        hazard is then inverted once for all of them.
        """
        groups, offsets, targets = [], [], []
        for g, looks, count in cells:
            if count == 0:
                continue
            a, cdf = self._exceeder_posterior(g, looks)
            # inverse-cdf draw, exactly as Generator.choice(p=...) makes it, without re-checking p
            pick = cdf.searchsorted(rng.random(count), side="right")
            v = rng.random(count)
            groups.append(np.full(count, g, dtype=np.int64))
            offsets.append(self.offsets[pick])
            # best score given best >= floor: solve k*H(x) = -log(1 - (1 - v) * a), in log space
            targets.append(np.log(-np.log1p(-(1.0 - v) * a[pick]) / looks))
        if not groups:
            return np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        group = np.concatenate(groups)
        p = np.concatenate(offsets) * self.step
        x = self.invert_hazard(group, np.concatenate(targets))
        return group, p, np.maximum(x + p, self.floor)

    def draw_best_impostor(self, g: np.ndarray, looks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Unconditional best impostor scores (latent) of probes of groups ``g``; -inf below the grid."""
        n = len(g)
        if n == 0:
            return np.empty(0)
        key = ("prior",)
        if key not in self._draw_cache:
            cdf = self.weights.cumsum()
            self._draw_cache[key] = cdf / cdf[-1]
        p = self.offsets[self._draw_cache[key].searchsorted(rng.random(n), side="right")] * self.step
        v = rng.random(n)
        log_target = np.log(-np.log(v) / looks)
        return self.invert_hazard(g, log_target) + p


def _hazard_grid_bounds(model: ScoreModel, watchlist: WatchlistEntries, floor: float) -> tuple[float, float]:
    """The latent range the table must cover: from where a match is certain to where none is.

    At the bottom even a single entry, the least attractive one, would beat the probe with
    probability 1 - exp(-HAZARD_HIGH), so the table stays exact when it is rescaled down to a
    watchlist of one entry; at the top all N entries together give a hazard below HAZARD_LOW.
    """
    n = max(watchlist.size, 1)
    effects = watchlist.effects[watchlist.counts.sum(axis=0) > 0]
    top = float(model.impostor_location.max() + (effects.max() if effects.size else 0.0))
    bottom = float(model.impostor_location.min() + (effects.min() if effects.size else 0.0))
    lo = bottom + float(model.noise.ppf(np.exp(-HAZARD_HIGH))) - PROBE_SPAN_SD * model.probe_effect_sd
    # a heavy (Pareto) tail can put HAZARD_LOW far out; vendor scores above LATENT_TOP
    # (0.999999) are beyond any threshold in use and continue log-linearly
    hi = min(top + float(model.noise.isf(HAZARD_LOW / n)), LATENT_TOP)
    span = PROBE_SPAN_SD * model.probe_effect_sd
    anchor = floor if np.isfinite(floor) and floor >= lo else lo
    return lo, max(hi, anchor + span + 2 * watchlist.bin_width)


def build_search_table(model: ScoreModel, watchlist: WatchlistEntries, floor: float,
                       max_points: int = 200_000) -> SearchTable:
    """Tabulate log H_g for every probe group on a grid anchored at the latent ``floor``."""
    step = watchlist.bin_width
    lo, hi = _hazard_grid_bounds(model, watchlist, floor)
    anchor = floor if np.isfinite(floor) and floor >= lo else lo
    below = int(np.ceil((anchor - lo) / step))
    above = int(np.ceil((hi - anchor) / step))
    if below + above + 1 > max_points:
        raise ValueError(f"search grid of {below + above + 1} points; raise the score floor")
    x0 = anchor - below * step
    n_points = below + above + 1
    counts = watchlist.counts.astype(float)
    n_bins = counts.shape[1]
    e_first = watchlist.first_bin * step
    n_groups = len(model.groups)
    hazard = np.zeros((n_groups, n_points))
    # d_i = x_j - e_k - mu with i = j - k + (K - 1): one kernel per (g, h) shared by all bins
    i = np.arange(n_points + n_bins - 1)
    base = x0 - e_first + (i - (n_bins - 1)) * step
    kernels: dict[float, np.ndarray] = {}
    used = counts.any(axis=1)
    for g in range(n_groups):
        # entry groups at the same location share one convolution (it is linear in the counts)
        row = model.impostor_location[g]
        for mu in np.unique(row[used]):
            mu = float(mu)
            if mu not in kernels:
                kernels[mu] = -model.noise.logcdf(base - mu)
            hazard[g] += np.convolve(counts[used & (row == mu)].sum(axis=0), kernels[mu], mode="valid")
    with np.errstate(divide="ignore"):
        log_hazard = np.log(hazard)
    # below the smallest double the hazard is zero: continue the log-linear tail instead
    for g in range(n_groups):
        row = log_hazard[g]
        bad = ~np.isfinite(row)
        if bad.any() and (~bad).sum() >= 2:
            last_good = np.flatnonzero(~bad)[-1]
            slope = row[last_good] - row[last_good - 1]
            idx = np.flatnonzero(bad)
            row[idx] = row[last_good] + slope * (idx - last_good)
        elif bad.all():
            row[:] = -745.0 - np.arange(len(row))
    sd = model.probe_effect_sd
    if sd > 0:
        half = int(np.ceil(PROBE_SPAN_SD * sd / step))
        offsets = np.arange(-half, half + 1)
        weights = np.exp(-np.square(offsets * step / sd) / 2.0)
        weights /= weights.sum()
    else:
        offsets, weights = np.zeros(1, dtype=np.int64), np.ones(1)
    return SearchTable(model=model, watchlist_size=watchlist.size, x0=x0, step=step,
                       log_hazard=log_hazard, offsets=offsets, weights=weights, floor_index=below,
                       watchlist=watchlist)


# -- closed forms per probe group (vendor-scale thresholds) ---------------------------------------

def _size_scale(table: SearchTable, watchlist_size: float | None) -> float:
    if watchlist_size is None:
        return 1.0
    if table.watchlist_size <= 0:
        raise ValueError("the table's watchlist is empty; it cannot be rescaled")
    return float(watchlist_size) / table.watchlist_size


def log_fpir(table: SearchTable, group: int, threshold: np.ndarray | float,
             watchlist_size: float | None = None, looks: float = 1.0) -> np.ndarray:
    """log FPIR: log P(a non-mated probe of ``group`` has a candidate at or above ``threshold``).

    ``threshold`` is on the vendor's [0, 1] scale (0 gives log 1 = 0, 1 gives -inf).
    ``watchlist_size`` rescales the table's watchlist (same make-up, N entries), which is exact
    because the hazard is a sum over entries. Finite down to rates of 1e-300.
    """
    t = to_latent(threshold)
    return table.impostor_logsf(group, t, looks * _size_scale(table, watchlist_size))


def fpir(table: SearchTable, group: int, threshold: np.ndarray | float,
         watchlist_size: float | None = None, looks: float = 1.0) -> np.ndarray:
    """FPIR(N, T) for probes of ``group``: see ``log_fpir``."""
    return np.exp(log_fpir(table, group, threshold, watchlist_size, looks))


def tpir(table: SearchTable, group: int, threshold: np.ndarray | float,
         watchlist_size: float | None = None, looks: float = 1.0) -> np.ndarray:
    """TPIR(T): P(a watchlisted passer of ``group`` is alerted on their own entry) at ``threshold``.

    The own entry must be the top candidate, so TPIR falls slightly as the watchlist grows.
    """
    scale = _size_scale(table, watchlist_size)
    t = np.atleast_1d(to_latent(threshold))
    out = np.array([table.mated_alert_probabilities(group, float(x), looks, scale)[0] for x in t])
    return out.reshape(np.shape(threshold))


def sel(table: SearchTable, group: int, threshold: np.ndarray | float,
        watchlist_size: float | None = None) -> np.ndarray:
    """Selectivity: the expected number of entries at or above ``threshold`` in one search.

    ``sum_(h, b) n[h, b] * E_p[sf(T - p - mu[g, h] - e_b)]`` over entry groups ``h`` and
    entry-effect bins ``b``, with the probe effect ``p`` averaged over its distribution. Unlike
    FPIR this counts every candidate, so it can exceed 1 at low thresholds.
    """
    wl = table.watchlist
    if wl is None:
        raise ValueError("this table was built without its watchlist; rebuild with build_search_table")
    scale = _size_scale(table, watchlist_size)
    m = table.model
    t = np.atleast_1d(to_latent(threshold)).astype(float)
    p = table.offsets * table.step
    used = np.flatnonzero(wl.counts.sum(axis=1))
    out = np.zeros(t.shape)
    for h in used:
        counts = wl.counts[h].astype(float)
        keep = counts > 0
        e = wl.effects[keep]
        # d[t, b, p] = T - p - mu - e_b; the noise's survival at d, averaged over probe effects
        d = t[:, None, None] - m.impostor_location[group, h] - e[None, :, None] - p[None, None, :]
        with np.errstate(invalid="ignore"):
            tail = np.nan_to_num(m.noise.sf(d), nan=0.0)
        out += (tail @ table.weights) @ counts[keep]
    return (scale * out).reshape(np.shape(threshold))


def brute_force_best_impostor(model: ScoreModel, entry_groups: np.ndarray, entry_effects: np.ndarray,
                              probe_groups: np.ndarray, probe_effects: np.ndarray,
                              rng: np.random.Generator, looks: int = 1) -> np.ndarray:
    """Best impostor scores by comparing each probe with every entry, ``looks`` times: the reference."""
    best = np.full(len(probe_groups), -np.inf)
    for i, (g, p) in enumerate(zip(probe_groups, probe_effects, strict=True)):
        mean = model.impostor_location[g, entry_groups] + p + entry_effects
        for _ in range(looks):
            best[i] = max(best[i], float(np.max(mean + model.noise.rvs(rng, len(mean)))))
    return best


# -- the search stage of one replicate ----------------------------------------------------------

@dataclass(frozen=True)
class Candidates:
    """Passers of one deployment whose best candidate clears the search floor, in arrival order."""

    group: np.ndarray
    mated: np.ndarray          # the passer is on the watchlist
    true_match: np.ndarray     # the best candidate is the passer's own entry
    best: np.ndarray           # latent score of the best candidate
    seconds: np.ndarray        # arrival, seconds from the deployment's start


@dataclass(frozen=True)
class SearchSetup:
    """What a replicate fixes before any passer: its sites, score model, watchlist and hazard table."""

    sites: list[Site]
    model: ScoreModel
    watchlist: WatchlistEntries
    table: SearchTable
    frames: tuple[np.ndarray, np.ndarray]
    watchlisted_probability: np.ndarray     # P(watchlisted) per group at 1,000 passers an hour, before
                                            # each deployment's footfall factor and gamma effect
    watchlist_shares: np.ndarray | None = None   # the list's share of each group

    @property
    def size_scales(self) -> np.ndarray:
        """Per deployment, its list's size over the table's: a list of the same make-up and
        ``c`` times the size has exactly ``c`` times the hazard."""
        n = self.watchlist.size
        return np.array([1.0 if s.watchlist_size is None else s.watchlist_size / n for s in self.sites])

    @property
    def uniform_lists(self) -> bool:
        """Every deployment searches the programme's list (no deployment sets its own size)."""
        return all(s.watchlist_size is None for s in self.sites)


@dataclass
class Search:
    """One replicate's search stage: the crowd, as counts, and the passers who may alert."""

    setup: SearchSetup
    passers: np.ndarray
    faces: np.ndarray
    watchlisted: np.ndarray
    nonmated_cells: dict[float, np.ndarray]     # looks -> non-watchlisted passers per group
    mated_cells: dict[float, np.ndarray]        # looks -> watchlisted passers per group
    flat: Candidates                            # every deployment's candidates, deployment by deployment
    bounds: np.ndarray                          # deployment d's candidates are flat[bounds[d]:bounds[d + 1]]
    # the same crowd per deployment: passers and recorded faces (D,), non-watchlisted passers per
    # (deployment, group, frame count) with the looks of each frame count, and every watchlisted
    # passer's deployment, group and looks
    site_passers: np.ndarray | None = None
    site_faces: np.ndarray | None = None
    site_nonmated: np.ndarray | None = None
    looks: np.ndarray | None = None
    mated_site: np.ndarray | None = None
    mated_group: np.ndarray | None = None
    mated_looks: np.ndarray | None = None

    @property
    def candidates(self) -> list[tuple[Site, Candidates]]:
        """(site, its candidates in arrival order) for every deployment."""
        f, b = self.flat, self.bounds
        return [(site, Candidates(f.group[b[d]:b[d + 1]], f.mated[b[d]:b[d + 1]], f.true_match[b[d]:b[d + 1]],
                                  f.best[b[d]:b[d + 1]], f.seconds[b[d]:b[d + 1]]))
                for d, site in enumerate(self.sites)]

    @property
    def sites(self) -> list[Site]:
        return self.setup.sites


def prepare_search(experiment: Experiment, replicate: int, seed: int) -> SearchSetup:
    """Draw the replicate's programme and watchlist and tabulate the search's hazard."""
    groups = experiment.passer_groups()
    model = score_model(experiment.matcher.score_parameters(), groups)
    sites = realise_programme(experiment.programme, experiment.crowd,
                              stream(seed, replicate, 0, STAGE_PROGRAMME))
    wl_shares = watchlist_group_shares(experiment.watchlist.female_share,
                                       experiment.watchlist.ethnicity_shares, groups)
    watchlist = draw_watchlist(experiment.watchlist.size, wl_shares, model.entry_effects,
                               stream(seed, replicate, 0, STAGE_WATCHLIST))
    table = build_search_table(model, watchlist, float(to_latent(experiment.matcher.score_floor)))
    pi = watchlisted_probability(experiment.crowd, groups, experiment.watchlist.size, wl_shares)
    return SearchSetup(sites, model, watchlist, table, frames_distribution(experiment.crowd), pi, wl_shares)


def _arrival_seconds(sites: list[Site], deployment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (seconds from each deployment's start) of passers of the given deployments.

    Two uniforms per passer, whatever the profile: the first picks the slice of the footfall
    profile (by its weights), the second the moment within the slice.
    """
    n = len(deployment)
    pick, within = rng.random(n), rng.random(n)
    duration = np.array([s.duration_seconds for s in sites])[deployment]
    seconds = within * duration
    for d in np.unique(deployment):
        profile = sites[d].footfall_profile
        if len(profile) == 1 or profile.sum() <= 0:
            continue
        rows = np.flatnonzero(deployment == d)
        cdf = np.cumsum(profile / profile.sum())
        which = np.minimum(cdf.searchsorted(pick[rows], side="right"), len(profile) - 1)
        seconds[rows] = (which + within[rows]) * (sites[d].duration_seconds / len(profile))
    return seconds


def search_deployments(experiment: Experiment, setup: SearchSetup, replicate: int, seed: int) -> Search:
    """Every deployment's crowd and the best scores of the passers who clear the floor.

    All deployments are drawn together, one numpy call per step with a row per deployment, from
    one stream, ``stream(seed, replicate, 0, STAGE_CROWD)`` (``sim.seeds``): a replicate is never
    split between workers, so its draws depend on nothing but its key. Steps, in this order:
    passers per deployment (Poisson), their groups (multinomial by the site's mix), captured,
    each deployment's gamma effect on the watchlisted share, watchlisted (binomial),
    frames (multinomial), the non-watchlisted passers clearing the floor
    per (deployment, group, looks) cell (binomial); the exceeders' probe effects and best scores
    cell by cell over (group, looks), deployments in order within a cell; the watchlisted
    passers' frames, genuine and best impostor scores; every candidate's arrival time.
    """
    table, model, crowd_settings = setup.table, setup.model, experiment.crowd
    sites = setup.sites
    n_groups = len(model.groups)
    rng = stream(seed, replicate, 0, STAGE_CROWD)
    values, pmf = setup.frames
    n_sites = len(sites)
    shares = np.array([s.group_shares(model.groups, crowd_settings.female_share) for s in sites]
                      ).reshape(n_sites, n_groups)
    expected = np.array([s.expected_passers for s in sites])
    capture = np.array([s.capture_rate for s in sites])
    total = rng.poisson(expected)
    passers = rng.multinomial(total, shares) if n_sites else np.zeros((0, n_groups), np.int64)
    captured = rng.binomial(passers, capture[:, None])
    base = setup.watchlisted_probability
    if any(s.watchlist_size is not None or s.watchlisted_per_passer is not None for s in sites):
        base = site_watchlisted_probability(crowd_settings, model.groups, sites, setup.watchlist.size,
                                            setup.watchlist_shares, base)
    watchlisted = deployment_watchlisted(crowd_settings, sites, base, rng)
    mated = rng.binomial(captured, watchlisted)
    if len(values) > 1:
        nonmated = rng.multinomial(captured - mated, pmf)                       # (D, G, M)
    else:
        nonmated = (captured - mated)[:, :, None]
    looks = effective_looks(values, crowd_settings.frame_correlation)
    # a deployment's own list size scales its hazard: its looks count c times (sim.search's header)
    scales = setup.size_scales
    classes = [1.0] if setup.uniform_lists else sorted(set(scales.tolist()))
    if setup.uniform_lists:
        q = np.stack([table.floor_exceedance(k) for k in looks], axis=1)[None, :, :]     # (1, G, M)
    else:
        by_class = {c: np.stack([table.floor_exceedance(k * c) for k in looks], axis=1) for c in classes}
        q = np.stack([by_class[c] for c in scales.tolist()])                           # (D, G, M)
    exceeders = rng.binomial(nonmated, q)
    cells, cell_dep = [], []
    for g, m in zip(*np.nonzero(exceeders.sum(axis=0)), strict=True):
        for c in classes:
            per_dep = exceeders[:, g, m]
            if not setup.uniform_lists:
                per_dep = np.where(scales == c, per_dep, 0)
            if setup.uniform_lists or per_dep.any():
                cells.append((int(g), float(looks[m]) * c, int(per_dep.sum())))
                cell_dep.append(np.repeat(np.arange(n_sites), per_dep))
    nm_group, _, nm_best = table.draw_exceeder_cells(cells, rng)
    nm_dep = np.concatenate(cell_dep) if cell_dep else np.empty(0, np.int64)
    m_dep = np.repeat(np.repeat(np.arange(n_sites), n_groups), mated.ravel())
    m_group = np.tile(np.arange(n_groups), n_sites).repeat(mated.ravel())
    if len(values) > 1:
        cdf = pmf.cumsum()
        m_frames = values[np.minimum(cdf.searchsorted(rng.random(len(m_group)) * cdf[-1], side="right"),
                                     len(values) - 1)]
    else:
        m_frames = np.ones(len(m_group), dtype=np.int64)
    m_looks = effective_looks(m_frames, crowd_settings.frame_correlation)
    genuine = model.genuine_rvs(m_group, m_looks, rng)
    impostor = table.draw_best_impostor(m_group, m_looks if setup.uniform_lists else m_looks * scales[m_dep],
                                        rng)
    m_best = np.maximum(genuine, impostor)
    keep = m_best >= table.floor
    deployment = np.concatenate([nm_dep, m_dep[keep]]).astype(np.int64)
    group = np.concatenate([nm_group, m_group[keep]]).astype(np.int64)
    is_mated = np.concatenate([np.zeros(len(nm_group), bool), np.ones(int(keep.sum()), bool)])
    true_match = np.concatenate([np.zeros(len(nm_group), bool), (genuine >= impostor)[keep]])
    scores = np.concatenate([nm_best, m_best[keep]])
    seconds = _arrival_seconds(sites, deployment, rng)
    order = np.lexsort((seconds, deployment))            # by deployment, then arrival
    flat = Candidates(group[order], is_mated[order], true_match[order], scores[order], seconds[order])
    bounds = np.concatenate([[0], np.cumsum(np.bincount(deployment, minlength=n_sites))])

    own_factor = [s.faces_per_passer is not None for s in sites]
    if crowd_settings.faces_per_passer == "frames":
        site_faces = ((nonmated @ values).sum(axis=1)
                      + np.bincount(m_dep, weights=m_frames, minlength=n_sites)).astype(float)
        faces = (nonmated @ values).sum(axis=0) + np.bincount(m_group, weights=m_frames, minlength=n_groups)
    elif any(own_factor):    # each deployment's captured passers times its own counting factor
        factor = np.array([s.faces_per_passer if s.faces_per_passer is not None
                           else faces_per_passer(crowd_settings) for s in sites])
        faces = (captured * factor[:, None]).sum(axis=0)
        site_faces = captured.sum(axis=1) * factor
    else:     # recorded faces: captured passers times the counting factor
        faces = captured.sum(axis=0) * faces_per_passer(crowd_settings)
        site_faces = captured.sum(axis=1) * faces_per_passer(crowd_settings)
    nonmated_cells: dict[float, np.ndarray] = {}
    per_column = nonmated.sum(axis=0).astype(np.int64)                     # (G, M)
    for m, k in enumerate(looks):     # frame counts with the same looks share a cell
        nonmated_cells[float(k)] = nonmated_cells.get(float(k), 0) + per_column[:, m]
    mated_cells: dict[float, np.ndarray] = {}
    for k in np.unique(m_looks):
        mated_cells[float(k)] = np.bincount(m_group[m_looks == k], minlength=n_groups).astype(np.int64)
    return Search(setup, passers.sum(axis=0).astype(np.int64), faces.astype(float),
                  mated.sum(axis=0).astype(np.int64), nonmated_cells, mated_cells, flat, bounds,
                  site_passers=passers.sum(axis=1).astype(np.int64), site_faces=site_faces.astype(float),
                  site_nonmated=nonmated.astype(np.int64), looks=np.asarray(looks, dtype=float),
                  mated_site=m_dep, mated_group=m_group, mated_looks=m_looks)
