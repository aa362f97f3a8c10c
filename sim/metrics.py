"""Metrics: counts and rates per group, intervals, disparities, and the test against a report.

Every replicate yields counts per demographic group (``metrics.parquet``, one row per cell x
replicate x group x metric). The summary pools them:

* **counts** (alerts, arrests, wrongful stops, ... per programme): the mean over replicates;
* **rates** (``false_alert_rate``, ``fpir``, ``tpir``, ``ppv``): pooled numerator over pooled
  denominator across replicates;
* **programme figures** (utilisation, time to engagement, implied threshold, the Black share of
  false alerts and the Black/White false-alert ratio): the mean over replicates.

Every interval is the 2.5th to 97.5th percentile across replicates: where 95% of simulated
programmes fall. Each replicate runs with its own draw of the calibrated posterior
(``sim.draws``), so for a calibrated experiment this is the **posterior-predictive interval**
(parameters and Monte Carlo together); with every parameter fixed it is the Monte Carlo spread.
A fixed-parameter test of a report (``compare``: pooled counts, the exact Clopper-Pearson interval,
``scipy.stats.binomtest(...).proportion_ci``'s closed form, and a Poisson p-value) is kept as a
footnote to the posterior-predictive comparison (``sim.posterior``). Its quantiles and tail sums
are scipy.special's functions that scipy.stats' beta, chi2 and poisson call (the same numbers to
the last bit, without importing scipy.stats: half a second of a command's start).

Against a reported figure (the Met's 12 false alerts in 3,000,000 faces) the summary gives the
simulated rate scaled to the reported faces with its interval, the exact expectation, a two-sided
Poisson p-value of the report given the model, and the threshold at which the model would expect
the reported count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from . import data as shipped
from .config import Comparison, Experiment
from .crowd import footfall_profile, generator_passers_per_hour, place_shares, site_pool
from .draws import typical
from .groups import DEFAULT_GROUPS, ETHNICITIES, GROUP_NAMES, group_named
from .replicate import COUNT_METRICS, PROGRAMME_METRICS, RATE_METRICS, ratio

METRIC_ORDER = (*COUNT_METRICS, *RATE_METRICS, *PROGRAMME_METRICS)
SUMMARY_COLUMNS = ("cell", "group", "metric", "estimate", "ci_low", "ci_high", "replicates")


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval; (nan, nan) with no trials.

    The same interval as ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``, written
    as its closed form in beta quantiles (Clopper and Pearson 1934) rather than found by root
    search: about a hundred times faster, which matters for a sweep's thousands of intervals.
    """
    if trials <= 0:
        return float("nan"), float("nan")
    k, n = int(successes), int(trials)
    alpha = 1.0 - level
    # stats.beta.ppf(q, a, b) is special.betaincinv(a, b, q)
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def poisson_interval(count: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean given an observed count."""
    alpha = 1 - level
    # stats.chi2.ppf(q, 2c) / 2 is special.gammaincinv(c, q)
    lo = 0.0 if count == 0 else float(special.gammaincinv(count, alpha / 2))
    hi = float(special.gammaincinv(count + 1, 1 - alpha / 2))
    return lo, hi


def summarise(metrics: pd.DataFrame, params: list[dict[str, Any]]) -> pd.DataFrame:
    """summary.csv: per cell x group x metric, the estimate and its 95% interval.

    Per (cell, group), in the order they first appear, the replicates it has (sorted) x metrics:
    a count's estimate is the mean of its finite values, a rate's the sum of its numerator over
    the sum of its denominator (a missing value counts 0), and the interval the 2.5th and 97.5th
    percentiles of the finite values. The values are laid out once as an array (cell-group x
    metric x replicate); of the cell-groups with every replicate (a run's usual case), the rows
    with the same number of finite values have their means, percentiles and rates taken at once,
    row by row as numpy takes them one at a time; the others one by one. (The same numbers as a
    pivot per cell-group, which cost ~10 ms each: seconds for a sweep's hundreds.)
    """
    param_cols = sorted({k for p in params for k in p})
    columns = ["cell", *param_cols, "group", "metric", "estimate", "ci_low", "ci_high", "replicates"]
    order = {m: k for k, m in enumerate(METRIC_ORDER)}
    known = metrics["metric"].isin(list(order)).to_numpy()
    frame = metrics[known]
    if frame.empty:
        return pd.DataFrame([], columns=columns)
    # (cell, group) codes in order of first appearance: each column's codes, then the pairs'
    # (a MultiIndex's factorize builds a tuple per row: ~50 ms for a sweep's 130,000 rows)
    cell_code, cell_of = pd.factorize(frame["cell"], use_na_sentinel=False)
    group_code, group_of = pd.factorize(frame["group"], use_na_sentinel=False)
    n_groups = len(group_of)
    cg, first = pd.factorize(cell_code.astype(np.int64) * n_groups + group_code)
    pairs = [(cell_of[k // n_groups], group_of[k % n_groups]) for k in first.tolist()]
    # each metric's position, looked up once per distinct name (a map looks up every row's)
    metric_code, metric_of = pd.factorize(frame["metric"])
    metric = np.array([order[m] for m in metric_of], dtype=np.int64)[metric_code]
    replicates, rep = np.unique(frame["replicate"].to_numpy(), return_inverse=True)
    n_cg, n_m, n_r = len(pairs), len(METRIC_ORDER), len(replicates)
    values = np.full((n_cg, n_m, n_r), np.nan)
    values[cg, metric, rep] = frame["value"].to_numpy(dtype=float)
    present = np.zeros((n_cg, n_m), dtype=bool)
    present[cg, metric] = True
    has_rep = np.zeros((n_cg, n_r), dtype=bool)
    has_rep[cg, rep] = True
    reps = has_rep.sum(axis=1)
    complete = reps == n_r
    rows = values.reshape(n_cg * n_m, n_r)
    kept = np.flatnonzero(present.ravel())          # the summary's rows, in its order
    full = np.repeat(complete, n_m)[kept]           # of a cell-group with every replicate
    mean = np.full(kept.size, np.nan)
    low = np.full(kept.size, np.nan)
    high = np.full(kept.size, np.nan)
    # A complete cell-group's rows, by how many finite values each has (all of them, in a run's
    # usual case): each such block's means and percentiles in one call each.
    finite = np.isfinite(rows[kept])
    counts = finite.sum(axis=1)
    for c in np.unique(counts[full]).tolist():
        if c == 0:
            continue
        sel = full & (counts == c)
        block = rows[kept[sel]]
        if c < n_r:
            block = block[finite[sel]].reshape(-1, c)
        mean[sel] = np.mean(block, axis=1)
        low[sel] = np.percentile(block, 2.5, axis=1)
        high[sel] = np.percentile(block, 97.5, axis=1)
    # a rate's estimate: its numerator's sum over its denominator's, missing values counting 0
    # (as a Series sums them); complete cell-groups at once, the others over their replicates
    metric_at = kept % n_m
    cg_at = kept // n_m
    rate_of = {order[m]: (order[num], order[den]) for m, (num, den) in RATE_METRICS.items()}
    sums = np.where(np.isnan(values), 0.0, values).sum(axis=2)      # (cell-group, metric)
    for m, (num, den) in rate_of.items():
        sel = (metric_at == m) & full
        at = cg_at[sel]
        with np.errstate(divide="ignore", invalid="ignore"):   # ``ratio``, row by row
            mean[sel] = np.where(sums[at, den] > 0, sums[at, num] / sums[at, den], np.nan)
    for j in np.flatnonzero(~full).tolist():        # a cell-group missing replicates: one by one
        i, m = int(cg_at[j]), int(metric_at[j])
        table = values[i][:, has_rep[i]]            # (metrics, its replicates)
        vals = table[m][np.isfinite(table[m])]
        mean[j] = float(vals.mean()) if vals.size else math.nan
        if vals.size:
            low[j], high[j] = float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))
        if m in rate_of:
            num, den = rate_of[m]
            mean[j] = ratio(_series_sum(table[num]) if present[i, num] else 0.0,
                            _series_sum(table[den]) if present[i, den] else 0.0)
    cells_at = [int(cell_of[first_k // n_groups]) for first_k in first.tolist()]
    out: dict[str, Any] = {"cell": np.array(cells_at, dtype=np.int64)[cg_at]}
    for c in param_cols:
        out[c] = [params[cells_at[i]].get(c) for i in cg_at.tolist()]
    out["group"] = [pairs[i][1] for i in cg_at.tolist()]
    out["metric"] = [METRIC_ORDER[m] for m in metric_at.tolist()]
    out.update(estimate=mean, ci_low=low, ci_high=high, replicates=reps[cg_at].astype(np.int64))
    return pd.DataFrame(out, columns=columns)


def _series_sum(values: np.ndarray) -> float:
    """What ``pandas.Series.sum`` gives: nan counted as 0, then numpy's sum of the row."""
    nan = np.isnan(values)
    return float((np.where(nan, 0.0, values) if nan.any() else values).sum())


def compare(metrics: pd.DataFrame, cell: int, comparison: Comparison) -> dict[str, float]:
    """Set one cell's simulated false alerts against a reported count in so many faces."""
    wide = _cell_columns(metrics, cell,
                         ("faces", "false_alerts", "expected_false_alerts", "implied_threshold"))
    faces = _series_sum(wide["faces"])
    false = _series_sum(wide["false_alerts"])
    expected = _series_sum(wide["expected_false_alerts"])
    scale = comparison.faces / faces if faces > 0 else math.nan
    lo, hi = clopper_pearson(round(false), round(faces))
    mean = expected * scale
    k = comparison.false_alerts
    # stats.poisson.cdf(k, m) is special.pdtr(k, m); its sf(k - 1, m) is pdtrc(k - 1, m), 1 below 0
    p_low = float(special.pdtr(k, mean))
    p_high = 1.0 if k < 1 else float(special.pdtrc(k - 1, mean))
    implied = wide["implied_threshold"]
    implied = implied[np.isfinite(implied)]
    return {
        "reported_false_alerts": float(k), "reported_faces": float(comparison.faces),
        "simulated_per_reported_faces": false * scale,
        "simulated_ci_low": lo * comparison.faces, "simulated_ci_high": hi * comparison.faces,
        "expected_per_reported_faces": mean,
        "p_value_two_sided": min(1.0, 2 * min(p_low, p_high)),
        "p_reported_or_fewer": p_low,
        "implied_threshold": float(np.median(implied)) if implied.size else math.nan,
        "simulated_faces": faces, "simulated_false_alerts": false,
    }


def _cell_columns(metrics: pd.DataFrame, cell: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Columns ``names`` of one cell's everyone rows pivoted wide (replicate x metric): per metric
    its value in each of the rows' replicates (sorted), nan where a replicate has none.

    What ``pivot(index="replicate", columns="metric", values="value")`` of the cell's rows gives,
    without the pivot (~2 ms a cell: a sweep's report compares every cell): the cell's rows found
    by the integers first, then the strings of those rows alone. A missing metric raises KeyError
    and a repeated (replicate, metric) ValueError, as the pivot does.
    """
    hit = np.flatnonzero(metrics["cell"].to_numpy() == cell)
    hit = hit[np.asarray(metrics["group"].array.take(hit) == "all", dtype=bool)]
    metric = np.asarray(metrics["metric"].array.take(hit), dtype=object)
    replicates, rep = np.unique(metrics["replicate"].to_numpy()[hit], return_inverse=True)
    value = metrics["value"].to_numpy(dtype=float)[hit]
    kinds, kind = np.unique(metric, return_inverse=True)
    if len(np.unique(kind * len(replicates) + rep)) < len(hit):
        raise ValueError("Index contains duplicate entries, cannot reshape")
    out: dict[str, np.ndarray] = {}
    position = {name: i for i, name in enumerate(kinds.tolist())}
    for name in names:
        if name not in position:
            raise KeyError(name)
        column = np.full(len(replicates), np.nan)
        mine = kind == position[name]
        column[rep[mine]] = value[mine]
        out[name] = column
    return out


def disparity(summary: pd.DataFrame, metric: str = "false_alert_rate") -> pd.DataFrame:
    """Per cell: highest over lowest group rate of ``metric`` (nan when a group has none)."""
    rows = []
    mask = ((summary["metric"] == metric) & (summary["group"] != "all")).to_numpy(dtype=bool)
    cells = summary["cell"].to_numpy()[mask].tolist()
    groups = summary["group"].to_numpy()[mask].tolist()
    estimates = summary["estimate"].to_numpy(dtype=float)[mask].tolist()
    for cell, part in _by_cell(cells):
        named = [(groups[i], estimates[i]) for i in part if not math.isnan(estimates[i])]
        rates = [r for _, r in named]
        positive = [r for r in rates if r > 0]
        complete = len(positive) == len(rates) and len(rates) > 0
        ratio = float(max(positive) / min(positive)) if complete else math.nan
        rows.append({"cell": cell, "metric": metric, "highest_group": _label_of(named, max),
                     "lowest_group": _label_of(named, min), "ratio": ratio})
    return pd.DataFrame(rows)


def _by_cell(cells: list[Any]) -> list[tuple[Any, list[int]]]:
    """The positions of each cell's rows, in row order, cells sorted (what groupby("cell") gives)."""
    where: dict[Any, list[int]] = {}
    for i, cell in enumerate(cells):
        where.setdefault(cell, []).append(i)
    return sorted(where.items())


def _label_of(named: list[tuple[str, float]], pick) -> str:
    """The label of the first highest (``max``) or lowest (``min``) value, '' for none (idxmax)."""
    return pick(named, key=lambda item: item[1])[0] if named else ""


# -- statistics the report draws, from a summary table -------------------------------------------

class SummaryIndex:
    """A summary table's (estimate, ci_low, ci_high) by (cell, group, metric), built once.

    A report asks for hundreds of values of one summary; looking each up in the frame costs
    ~0.3 ms, in this index a dictionary look-up. The index copies the values when it is built: a
    frame changed afterwards is not seen (build it where the summary is final, look up many times).
    The first row of a key wins, as in ``summary_value``.
    """

    __slots__ = ("_values",)

    def __init__(self, summary: pd.DataFrame) -> None:
        keys = zip(summary["cell"].tolist(), summary["group"].tolist(), summary["metric"].tolist(),
                   strict=True)
        values = zip(*(summary[c].to_numpy(dtype=float).tolist() for c in ("estimate", "ci_low", "ci_high")),
                     strict=True)
        pairs = list(zip(keys, values, strict=True))
        self._values: dict[tuple[Any, Any, Any], tuple[float, float, float]] = dict(reversed(pairs))

    def value(self, cell: int, group: str, metric: str) -> tuple[float, float, float]:
        """(estimate, ci_low, ci_high) of one cell, group and metric (nan if absent)."""
        return self._values.get((cell, group, metric), _ABSENT)


_ABSENT = (math.nan, math.nan, math.nan)


def summary_value(summary: pd.DataFrame | SummaryIndex, cell: int, group: str,
                  metric: str) -> tuple[float, float, float]:
    """(estimate, ci_low, ci_high) of one cell, group and metric of a summary (nan if absent).

    ``summary`` is the table, or its ``SummaryIndex`` for many look-ups of one table."""
    if isinstance(summary, SummaryIndex):
        return summary.value(cell, group, metric)
    # one look-up: the cell's rows first (integers), then the strings of those rows alone (a
    # string column copied out whole costs ~0.4 ms, pandas' masks ~1 ms)
    hit = np.flatnonzero(summary["cell"].to_numpy() == cell)
    for column, value in (("group", group), ("metric", metric)):
        hit = hit[np.asarray(summary[column].array.take(hit) == value, dtype=bool)]
    if not hit.size:
        return _ABSENT
    i = hit[0]
    return (float(summary["estimate"].to_numpy()[i]), float(summary["ci_low"].to_numpy()[i]),
            float(summary["ci_high"].to_numpy()[i]))


def parameter_columns(summary: pd.DataFrame) -> list[str]:
    """The sweep's parameter columns of a summary table."""
    fixed = {"cell", "group", "metric", "estimate", "ci_low", "ci_high", "replicates"}
    return [c for c in summary.columns if c not in fixed]



def expected_false_alert_rate(summary: pd.DataFrame) -> pd.DataFrame:
    """Exact expected false alerts per face, per cell and group, as a summary-shaped frame."""
    return expected_ratio(summary, "expected_false_alerts", "faces", "expected_false_alert_rate")


def expected_ratio(summary: pd.DataFrame, numerator: str, denominator: str, name: str) -> pd.DataFrame:
    e = summary[summary["metric"] == numerator].set_index(["cell", "group"])
    n = summary[summary["metric"] == denominator].set_index(["cell", "group"])["estimate"]
    out = e.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["estimate"] = e["estimate"] / n.reindex(e.index)
    out["metric"] = name
    return out.reset_index()


def expected_fpir(summary: pd.DataFrame) -> pd.DataFrame:
    """Exact expected FPIR per cell and group. Watchlisted passers' false alerts are a negligible
    share of the expectation (prevalence ~1e-3), so dividing by non-mated passers is exact to that."""
    return expected_ratio(summary, "expected_false_alerts", "nonmated_passers", "expected_fpir")


def disparity_by_cell(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell: highest over lowest group FPIR from the exact expectations (no sampling noise)."""
    metric = summary["metric"]
    expected = (metric == "expected_false_alerts").to_numpy(dtype=bool)
    passers = (metric == "nonmated_passers").to_numpy(dtype=bool)
    cell_of, group_of = summary["cell"].to_numpy(), summary["group"].to_numpy()
    estimate = summary["estimate"].to_numpy(dtype=float)
    keys = list(zip(cell_of[passers].tolist(), group_of[passers].tolist(), strict=True))
    if len(set(keys)) < len(keys):     # reindex against repeated labels: pandas' own error
        return _disparity_by_cell_frames(summary)
    denominator = dict(zip(keys, estimate[passers].tolist(), strict=True))
    at = np.flatnonzero(expected)
    cells, groups = cell_of[at].tolist(), group_of[at].tolist()
    den = np.array([denominator.get(key, math.nan) for key in zip(cells, groups, strict=True)], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        fpir = (estimate[at] / den).tolist()            # expected_fpir's estimates, elementwise
    keep = [i for i, g in enumerate(groups) if g != "all"]
    params = parameter_columns(summary)
    columns = {p: summary[p] for p in params}
    rows = []
    for cell, part in _by_cell([cells[i] for i in keep]):
        named = [(groups[keep[i]], fpir[keep[i]]) for i in part]
        named = [(g, r) for g, r in named if r > 0]
        first = at[keep[part[0]]]
        rates = [r for _, r in named]
        rows.append({"cell": cell, **{p: columns[p].iloc[first] for p in params},
                     "estimate": float(max(rates) / min(rates)) if rates else math.nan,
                     "highest": _label_of(named, max), "lowest": _label_of(named, min)})
    return pd.DataFrame(rows)


def _disparity_by_cell_frames(summary: pd.DataFrame) -> pd.DataFrame:
    """``disparity_by_cell`` by pandas' frames (what it answers for a summary with repeated keys)."""
    fpir = expected_fpir(summary)
    fpir = fpir[fpir["group"] != "all"]
    rows = []
    params = parameter_columns(summary)
    for cell, part in fpir.groupby("cell"):
        rates = part.set_index("group")["estimate"]
        rates = rates[rates > 0]
        first = part.iloc[0]
        rows.append({"cell": cell, **{p: first[p] for p in params},
                     "estimate": float(rates.max() / rates.min()) if len(rates) else math.nan,
                     "highest": rates.idxmax() if len(rates) else "",
                     "lowest": rates.idxmin() if len(rates) else ""})
    return pd.DataFrame(rows)


def black_white_ratio(summary: pd.DataFrame) -> dict[int, float]:
    """Per cell: exact expected FPIR of Black over White passers, both sexes pooled (no cell where
    the groups are an experiment's own: the ratio is not defined)."""
    out: dict[int, float] = {}
    if not census_groups(summary):
        return out
    index = SummaryIndex(summary)
    for cell in summary["cell"].unique():
        rate = {}
        for eth in ("black", "white"):
            groups = [g.name for g in DEFAULT_GROUPS if g.ethnicity == eth]
            exp_ = sum(index.value(cell, g, "expected_false_alerts")[0] for g in groups)
            passers = sum(index.value(cell, g, "nonmated_passers")[0] for g in groups)
            rate[eth] = exp_ / passers if passers > 0 else math.nan
        out[int(cell)] = rate["black"] / rate["white"] if rate["white"] > 0 else math.nan
    return out


def census_groups(summary: pd.DataFrame) -> bool:
    """Whether a summary's groups are the census groups (sex x ethnicity), not declared ones."""
    return set(summary["group"].unique()) - {"all"} <= set(GROUP_NAMES)


def exposure_per_head(summary: pd.DataFrame, cell: int = 0) -> pd.DataFrame:
    """Faces scanned per year per London resident of each group (2021 census, sexes split evenly).

    Only the census groups have residents to count: declared groups have no rows."""
    boroughs = shipped.census()[1]
    residents = {e: sum(b[e] for b in boroughs.values()) for e in ETHNICITIES}
    rows = []
    for g in summary["group"].unique():
        if g not in GROUP_NAMES:
            continue
        eth = group_named(g).ethnicity
        faces = summary_value(summary, cell, g, "faces")[0]
        rows.append({"group": g, "faces": faces, "residents": residents[eth] / 2,
                     "scans_per_resident": faces / (residents[eth] / 2)})
    return pd.DataFrame(rows, columns=["group", "faces", "residents", "scans_per_resident"])



def borough_exposure(experiment) -> pd.DataFrame:
    """Expected passers scanned per programme per resident of each borough, by ethnicity.

    From the programme's design, not its draws (calibrated settings at the posterior's medians,
    ``sim.draws.typical``): each deployment's expected passers, spread over
    the boroughs its sites are drawn from and split by the sites' census mix, over the borough's
    residents of each group (2021 census). Residents stand in for the people who pass. Empty for
    an experiment that declares its own groups.
    """
    if experiment.groups is not None:   # declared groups: the crowd's mix is not the census's
        return pd.DataFrame()
    experiment = typical(experiment)
    prog, crowd = experiment.programme, experiment.crowd
    rows: list[tuple[str, float, np.ndarray]] = []   # (borough, expected passers, ethnic shares)
    if prog.generator is not None:
        gen = prog.generator
        pool = [(s["borough"], s["ward_code"]) for s in site_pool(gen)]
        rate = generator_passers_per_hour(gen, crowd)
        faces = gen.weeks * gen.deployments_per_week * rate * gen.duration_hours
        for borough, ward in pool:
            # the census names the borough (records say "Kingston" for Kingston upon Thames)
            home = shipped.census()[0][ward]["borough"] if ward else borough
            rows.append((home, faces / len(pool), place_shares(ward, home)))
    else:
        for d in prog.deployments:
            if not d.borough and not d.ward_code:
                continue
            borough = shipped.census()[0][d.ward_code]["borough"] if d.ward_code else d.borough
            profile = footfall_profile(d, crowd)
            shares = (np.array([d.ethnicity_shares[e] for e in ETHNICITIES]) if d.ethnicity_shares
                      else place_shares(d.ward_code, d.borough))
            rows.append((borough, float(profile.mean() * d.duration_hours), shares))
    residents = shipped.census()[1]
    out: dict[str, np.ndarray] = {}
    for borough, faces, shares in rows:
        out.setdefault(borough, np.zeros(len(ETHNICITIES)))
        out[borough] += faces * shares
    table = {b: {e: v[i] / residents[b][e] if residents[b][e] > 0 else math.nan
                 for i, e in enumerate(ETHNICITIES)} for b, v in out.items()}
    return pd.DataFrame(table).T.sort_index()



def posterior_cell(experiment: Experiment, cells: list[dict[str, Any]]) -> int | None:
    """The cell to set against the reported figure: the one at the report's threshold, else 0."""
    cmp_ = experiment.comparison
    if cmp_ is None:
        return None
    for i, cell in enumerate(cells):
        if abs(float(cell.get("matcher.threshold", experiment.matcher.threshold))
               - cmp_.threshold) < 1e-9:
            return i
    return 0
