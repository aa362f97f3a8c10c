"""Tables (markdown) and the slope figure from a calibration output folder.

Usage: ``python report.py OUT_DIR`` -> ``OUT_DIR/report.md`` and ``OUT_DIR/slope.png``.
Everything printed is read from ``results.json`` / ``slope_draws.npz``; nothing is typed in.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _f(v: float, nd: int = 3) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.{max(nd - 2, 1)}f}"
    return f"{v:.{nd}g}"


def _iv(s: dict) -> str:
    return f"{_f(s['median'])} ({_f(s['q2.5'])}–{_f(s['q97.5'])})"


def report(out: Path) -> str:
    r = json.loads((out / "results.json").read_text())
    lines: list[str] = []
    add = lines.append
    add(f"seed {r['seed']}, settings {r['settings']}; runtime {r['runtime_seconds']}")
    add("")
    add("## Evidence")
    add("")
    add("| account | stage | nested log Z (per run) | bridge log Z (±) | log Z used | weight | max log L | PSIS-LOO elpd (se) | Pareto k > 0.7 | Kish ESS (nested) | R-hat max | bulk ESS min | tail ESS min | max tau | headline median (95%) |")
    add("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    order = sorted(r["logz"], key=lambda a: -r["logz"][a])
    for a in order:
        d = r["diagnostics"][a]
        loo = r["loo"].get(a, {})
        h = r["headline"][a]
        nested = d.get("nested") or d
        nz = ", ".join(f"{v:.2f}" for v in nested.get("logz_per_run", []))
        br = d.get("bridge")
        brs = f"{br['logz']:.2f} ({br['logz_err']:.3f})" if br else "—"
        tau = max(d["autocorr_time"].values()) if "autocorr_time" in d else float("nan")
        rh = d.get("rhat_max", float("nan"))
        add(f"| {a} | {r['stage'][a]} | {nz} | {brs} | {r['logz'][a]:.2f} | {r['weights'][a]:.3g} | {d['max_logl']:.1f} | "
            f"{loo.get('elpd_loo', float('nan')):.1f} ({loo.get('se', float('nan')):.1f}) | {loo.get('pareto_k_above_0.7', '')} | "
            f"{', '.join(str(round(k)) for k in nested.get('kish_ess', []))} | "
            f"{rh:.4f} | {d['ess_bulk_min']:.0f} | {d.get('ess_tail_min', float('nan')):.0f} | {tau:.0f} | "
            f"{_f(h['expected_median'])} ({_f(h['expected_interval_95'][0])}–{_f(h['expected_interval_95'][1])}) |")
    add("")
    add(f"Shipped: {r['shipped']}")
    add("")
    add(f"Screened log Z (first pass, every account): {', '.join(f'{a} {v:.2f}' for a, v in r['screened_logz'].items())}")
    add("")
    add("## Key parameters per account (median, 95%)")
    keys = ["faces_per_passer[2023]", "faces_per_passer[2024 low count]", "faces_per_passer[2024 high count]",
            "operator_pass_false", "field_shift", "footfall_elasticity", "watchlisted_per_passer", "impostor_sd",
            "npl_fpir_0.60_n10000", "npl_exposure", "fpir_ratio_0.64_0.60", "nist_differential", "minority_probe_shift",
            "same_ethnicity_shift", "genuine_location", "period_sd", "phi_true", "phi_false", "site_sd", "day_sd",
            "black_white_fpir_0.64", "tpir_0.64"]
    add("")
    add("| quantity | " + " | ".join(order) + " |")
    add("|---|" + "---|" * len(order))
    for k in keys:
        cells = [(_iv(r["summaries"][a][k]) if k in r["summaries"][a] and np.isfinite(r["summaries"][a][k]["median"]) else "—")
                 for a in order]
        add(f"| {k} | " + " | ".join(cells) + " |")
    add("")
    add("## Headline (3,000,000 counted faces at 0.64, 16,000 entries)")
    add("")
    add("| account | mean | median | 95% (expectation) | 95% predictive | P(≤ 12) | P(≤ 12), Poisson only |")
    add("|---|---:|---:|---|---|---:|---:|")
    for a in ["shipped", "model_average", *order]:
        if a not in r["headline"]:
            continue
        h = r["headline"][a]
        add(f"| {a} | {_f(h['expected_mean'])} | {_f(h['expected_median'])} | {_f(h['expected_interval_95'][0])}–"
            f"{_f(h['expected_interval_95'][1])} | {h['predictive_interval_95'][0]:.0f}–{h['predictive_interval_95'][1]:.0f} | "
            f"{h['p_at_most_reported']:.3f} | {h['p_at_most_reported_poisson']:.3f} |")
    add("")
    add(f"## Posterior-predictive checks per period, best account ({r['best']})")
    add("")
    add("| period | deployments | faces | metric | observed | predictive mean (95%) | p | obs / mean per 1,000 faces |")
    add("|---|---:|---:|---|---:|---|---:|---|")
    for row in r["period_checks"]:
        for m in ("alerts", "true_alerts", "false_alerts", "arrests"):
            c = row[m]
            flag = "" if c["within"] else " **miss**"
            add(f"| {row['period']} | {row['deployments']} | {row['faces']:,.0f} | {m} | {c['observed']} | "
                f"{c['mean']:.1f} ({c['interval_95'][0]:.0f}–{c['interval_95'][1]:.0f}){flag} | {c['p_value']:.2f} | "
                f"{c['observed_per_1000_faces']:.3f} / {c['mean_per_1000_faces']:.3f} |")
    add("")
    add("False alerts given the period's observed alerts (face counts cancel), per account:")
    add("")
    add("| account | " + " | ".join(r["false_given_alerts"][order[0]]) + " |")
    add("|---|" + "---|" * len(r["false_given_alerts"][order[0]]))
    for a in order:
        cells = []
        for p, c in r["false_given_alerts"][a].items():
            flag = "" if c["within"] else " **miss**"
            cells.append(f"{c['observed']} of {c['alerts']}: {c['mean']:.1f} ({c['interval_95'][0]:.0f}–{c['interval_95'][1]:.0f}), p={c['p_value']:.2f}{flag}")
        add(f"| {a} | " + " | ".join(cells) + " |")
    add("")
    add("## PPC misses in the other accounts")
    add("")
    for a in order:
        misses = []
        for row in r["period_checks_all"][a]:
            for m in ("alerts", "true_alerts", "false_alerts", "arrests"):
                c = row[m]
                if not c["within"]:
                    misses.append(f"{row['period']} {m}: {c['observed']} vs {c['mean']:.1f} ({c['interval_95'][0]:.0f}–{c['interval_95'][1]:.0f})")
        add(f"- {a}: " + ("; ".join(misses) if misses else "none"))
    add("")
    if r["lopo"]:
        add(f"## Leave-one-period-out ({r['lopo'][0]['account']})")
        add("")
        add("| held out | metric | observed | predictive mean (95%) | inside | p |")
        add("|---|---|---:|---|---|---:|")
        inside = []
        for row in r["lopo"]:
            for m in ("alerts", "true_alerts", "false_alerts"):
                c = row["check"][m]
                inside.append(c["within"])
                add(f"| {row['period']} | {m} | {c['observed']} | {c['mean']:.1f} ({c['interval_95'][0]:.0f}–{c['interval_95'][1]:.0f}) | "
                    f"{'yes' if c['within'] else '**no**'} | {c['p_value']:.2f} |")
            c = row["false_given_alerts"]
            inside.append(c["within"])
            add(f"| {row['period']} | false given {c['alerts']} alerts | {c['observed']} | {c['mean']:.1f} "
                f"({c['interval_95'][0]:.0f}–{c['interval_95'][1]:.0f}) | {'yes' if c['within'] else '**no**'} | {c['p_value']:.2f} |")
        add("")
        add(f"Coverage: {sum(inside)} of {len(inside)} inside their 95% interval.")
        add("")
        add("| held out | k (2024 high count) | headline median (95%) | train log Z | seconds |")
        add("|---|---|---|---:|---:|")
        for row in r["lopo"]:
            add(f"| {row['period']} | {_iv(row['faces_per_passer_high'])} | {_iv(row['headline_expected_false'])} | "
                f"{row['logz_train']:.1f} | {row['seconds']:.0f} |")
        add("")
    add("## Tail slope FPIR(0.64)/FPIR(0.60) (headline crowd, 16,000 entries)")
    add("")
    add("| source | median (95%) |")
    add("|---|---|")
    for k, v in r["slope"].items():
        add(f"| {k} | {_iv(v)} |")
    add("")
    add(f"NPL only: {r['npl_only']['summaries']}, log Z {r['npl_only']['logz']:.2f}")
    if r.get("sensitivity"):
        add("")
        add("## Sensitivity (best account refitted)")
        add("")
        for k, v in r["sensitivity"].items():
            h = v["headline"]
            add(f"- {k}: deployments {v['deployments']}, log Z {v['logz']:.2f}, k_high {_iv(v['faces_per_passer[2024 high count]'])}, "
                f"NPL FPIR(0.60, 10k) {_iv(v['npl_fpir_0.60_n10000'])}, headline {_f(h['expected_median'])} "
                f"({_f(h['expected_interval_95'][0])}–{_f(h['expected_interval_95'][1])}), P(≤12) {h['p_at_most_reported']:.3f}")
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    _figure(out, r)
    return text


def _figure(out: Path, r: dict) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    draws = np.load(out / "slope_draws.npz")
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(-6, 0, 61)
    for k in ["npl_only", r["best"], "a"]:
        if k in draws:
            ax.hist(np.log10(draws[k]), bins=bins, density=True, histtype="step", lw=1.5,
                    label=f"{k} (median {np.median(draws[k]):.3g})")
    ax.set_xlabel("log10 FPIR(0.64) / FPIR(0.60)")
    ax.set_ylabel("posterior density")
    ax.set_title("How well the 0.60 -> 0.64 tail slope is identified")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "slope.png", dpi=110)


if __name__ == "__main__":  # pragma: no cover
    print(report(Path(sys.argv[1] if len(sys.argv) > 1 else "out")))
