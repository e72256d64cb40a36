"""The paper's open questions as report sections (no torch): `lambda`, `layers`, `orderings`.

A section appears when the runs collected vary what it studies (configs/study-*.yaml make them):

- lambda: LDIFS runs at two or more values of `lam` (with `ft` as lambda = 0 when present): task gain
  against held-out dLP per lambda (mean ± 95% t-interval over seeds; the trade-off curve), and each
  lambda minus `ft` paired by (ordering, seed).
- layers: LDIFS runs with two or more `layers` choices: task gain, held-out dLP and held-out drift at
  the last tap per choice, each minus `ft` paired by (ordering, seed).
- orderings: two or more orderings of one strategy: forward transfer, BWT and held-out dLP per ordering
  against the seed-to-seed spread, with a one-way ANOVA over orderings (the spread between orderings
  beyond what seeds give when p < 0.05).

Task gain and held-out dLP as evaluation/reporting/evidence.py defines them; a difference is "beyond noise" when
its 95% interval excludes 0.

Longer than 300 lines because the three studies share their comparison helpers (pairing by seed, the
beyond-noise test, the seeds a within-noise difference needs); split, each would need them all.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import metrics as M  # noqa: E402
from ..storage.records import Records  # noqa: E402
from .evidence import run_figures  # noqa: E402
from .noise import MIN_SEEDS_PER_GROUP, fmt_diff, natural_key, seeds_needed, seeds_needed_unpaired  # noqa: E402
from .optional import optional_output  # noqa: E402
from benchmark.text import markdown as md  # noqa: E402
from .plots import _save  # noqa: E402
from .plots_drift import group_drift, last_tap  # noqa: E402


def _figs(rec: Records) -> dict:
    f = run_figures(rec)
    R = np.asarray(rec.R, dtype=float)
    f["FWT"], f["BWT"] = M.fwt(R), M.bwt(R)
    f["drift_last"] = (float(group_drift(rec, len(rec.ordering), "held-out")[last_tap(rec)])
                       if rec.drift is not None and rec.drift.get("ldifs") else math.nan)
    return f


def _key(rec: Records) -> tuple:
    return tuple(rec.ordering), rec.seed


def _ci_text(xs, scale: float = 100.0, digits: int = 1) -> str:
    """'+4.0 ± 2.1', with more digits where the interval clears 0 by less than the printed precision."""
    m, ci = M.mean_ci95(list(xs))
    return fmt_diff(m, ci, scale, digits)


def _resolve(d: list[float]) -> str:
    """'' for a difference beyond noise; else the seeds that would resolve it ('≈N'), or why none is given."""
    if _beyond(d):
        return ""
    if len(d) < 2:
        return "n < 2"
    n = seeds_needed(d)
    return "no difference" if n is None else f"≈{n}"


def _beyond(xs) -> bool:
    m, ci = M.mean_ci95(list(xs))
    return not math.isnan(ci) and abs(m) > ci


def _groups(runs, name: str, param: str) -> dict:
    """{value of `param` (JSON text): {(ordering, seed): figures}} over the runs of strategy `name`."""
    out: dict = {}
    for _, rec in runs:
        s = rec.config_strategy
        if s["name"] == name and param in s:
            value = s[param] if isinstance(s[param], str) else json.dumps(s[param])  # "last", [0, 1, 2], 30.0
            out.setdefault(value, {})[_key(rec)] = _figs(rec)
    return out


def _base(runs, name: str = "ft") -> dict:
    return {_key(rec): _figs(rec) for _, rec in runs if rec.strategy_name == name}


def _paired(a: dict, b: dict, fig: str) -> list[float]:
    return [a[k][fig] - b[k][fig] for k in sorted(set(a) & set(b), key=str)]


def _comparison_rows(groups: dict, base: dict, label: str, figs=("gain", "dLP_heldout")) -> list[str]:
    """One table row per group: its figures over seeds, then minus ft paired (bold where beyond noise)."""
    head = f"| {label} | n | task gain | held-out dLP | held-out drift, last tap (x1e3) |"
    rows = [head, "|---|---|---|---|---|"]
    if base:
        rows.append(f"| ft | {len(base)} | {_ci_text(v['gain'] for v in base.values())} | "
                    f"{_ci_text(v['dLP_heldout'] for v in base.values())} | "
                    f"{_ci_text((v['drift_last'] for v in base.values()), 1e3, 2)} |")
    for value, g in groups.items():
        rows.append(f"| {md(value)} | {len(g)} | {_ci_text(v['gain'] for v in g.values())} | "
                    f"{_ci_text(v['dLP_heldout'] for v in g.values())} | "
                    f"{_ci_text((v['drift_last'] for v in g.values()), 1e3, 2)} |")
    if base:
        rows += ["", f"Minus `ft`, paired by (ordering, seed); **bold**: the 95% interval excludes 0 (beyond noise). "
                 "For a difference within noise, the last column gives the seeds (pairs) a paired t-test would need "
                 "to resolve it with 80% power if the observed mean and spread held (rough; task gain / held-out dLP).",
                 "", f"| {label} | pairs | task gain - ft | held-out dLP - ft | drift - ft (x1e3) | seeds to resolve |",
                 "|---|---|---|---|---|---|"]
        for value, g in groups.items():
            cells = []
            for fig, scale, digits in (("gain", 100, 1), ("dLP_heldout", 100, 1), ("drift_last", 1e3, 2)):
                d = _paired(g, base, fig)
                t = _ci_text(d, scale, digits)
                cells.append(f"**{t}**" if t and _beyond(d) else t)
            need = " / ".join(_resolve(_paired(g, base, fig)) or "beyond noise" for fig in ("gain", "dLP_heldout"))
            rows.append(f"| {md(value)} | {len(set(g) & set(base))} | " + " | ".join(cells) + f" | {need} |")
    return rows + [""]


def _verdict(groups: dict, base: dict, fig: str, what: str) -> str:
    if not base:
        return ""
    beyond = [v for v, g in groups.items() if _beyond(_paired(g, base, fig))]
    if not beyond:
        return f"No setting's {what} differs from `ft`'s beyond noise (every paired interval includes 0)."
    return f"{what[0].upper() + what[1:]} differs from `ft`'s beyond noise (paired interval excludes 0) for: {', '.join(beyond)}."


def _tradeoff_plot(groups: dict, base: dict, path: Path, title: str, curve: bool = False) -> None:
    """Task gain against held-out dLP per group (mean ± 95% CI); `curve`: the means joined in order
    (ft first, as lambda = 0)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    pts = ([("ft", base)] if base else []) + list(groups.items())
    if curve:
        ax.plot([np.mean([v["gain"] * 100 for v in g.values()]) for _, g in pts],
                [np.mean([v["dLP_heldout"] * 100 for v in g.values()]) for _, g in pts], color="grey", lw=1, zorder=0)
    for k, (value, g) in enumerate(pts):
        gx = [v["gain"] * 100 for v in g.values()]
        gy = [v["dLP_heldout"] * 100 for v in g.values()]
        (mx, cx), (my, cy) = M.mean_ci95(gx), M.mean_ci95(gy)
        ax.errorbar(mx, my, xerr=0 if math.isnan(cx) else cx, yerr=0 if math.isnan(cy) else cy, fmt="o",
                    capsize=3, color=plt.cm.viridis(k / max(len(pts) - 1, 1)), label=str(value))
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("task gain (points)")
    ax.set_ylabel("held-out dLP (points)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def lambda_section(runs, folder: Path) -> list[str]:
    groups = _groups(runs, "ldifs", "lam")
    if len(groups) < 2:
        return []
    groups = dict(sorted(groups.items(), key=lambda kv: float(kv[0])))
    base = _base(runs)
    path = folder / "study_lambda.png"
    _tradeoff_plot(groups, base, path, "LDIFS lambda: task gain against held-out dLP (mean ± 95% CI)", curve=True)
    return (["## Study: lambda", "", "How the strength lambda trades the task gain for retained concepts "
             "(configs/study-lambda.yaml). Mean ± 95% t-interval over seeds, points.", ""]
            + _comparison_rows(groups, base, "lambda")
            + [_verdict(groups, base, "dLP_heldout", "held-out dLP"), "",
               _verdict(groups, base, "gain", "task gain"), ""]
            + _adjacent_rows(groups, "lambda")
            + [f"![study_lambda.png](plots/{path.name})", ""])


def _adjacent_rows(groups: dict, label: str) -> list[str]:
    """Each grid value against the next one (in numeric order), paired by (ordering, seed): whether the
    grid is ordered beyond noise on both axes, and otherwise how many seeds would order it."""
    values = list(groups)
    if len(values) < 2:
        return []
    rows = [f"Neighbouring values of the grid, the larger minus the smaller, paired by (ordering, seed); **bold**: "
            "beyond noise. Within noise, the seeds a paired t-test would need for 80% power at the observed mean "
            "and spread (rough: a few seeds' mean and SD are themselves uncertain).", "",
            f"| {label} | pairs | task gain | held-out dLP | seeds to resolve (gain / dLP) |", "|---|---|---|---|---|"]
    needs = []
    for a, b in zip(values, values[1:]):
        cells, need = [], []
        for fig in ("gain", "dLP_heldout"):
            d = _paired(groups[b], groups[a], fig)
            t = _ci_text(d)
            cells.append(f"**{t}**" if t and _beyond(d) else t)
            r = _resolve(d)
            need.append(r or "beyond noise")
            if r.startswith("≈"):
                needs.append(int(r[1:]))
        rows.append(f"| {b} - {a} | {len(set(groups[a]) & set(groups[b]))} | " + " | ".join(cells)
                    + f" | {' / '.join(need)} |")
    rows.append("")
    if needs:
        rows += [f"Ordering every neighbouring pair of the grid on both axes would take about {min(needs)} to "
                 f"{max(needs)} seeds here (rough), against the {min(len(g) for g in groups.values())} "
                 "seed(s) run per value.", ""]
    else:
        rows += ["Every neighbouring pair of the grid is ordered beyond noise on both axes.", ""]
    return rows


def layers_section(runs, folder: Path) -> list[str]:
    groups = _groups(runs, "ldifs", "layers")
    if len(groups) < 2:
        return []
    groups = dict(sorted(groups.items(), key=lambda kv: natural_key(kv[0])))
    base = _base(runs)
    path = folder / "study_layers.png"
    _tradeoff_plot(groups, base, path, "LDIFS layers: task gain against held-out dLP (mean ± 95% CI)")
    return (["## Study: layers", "", "Which layers LDIFS needs to preserve (configs/study-layers.yaml): "
             "the `layers` choice (tap indices, 0 = stem). Mean ± 95% t-interval over seeds.", ""]
            + _comparison_rows(groups, base, "layers")
            + [_verdict(groups, base, "dLP_heldout", "held-out dLP"), "",
               _verdict(groups, base, "drift_last", "held-out drift at the last tap"), "",
               f"![study_layers.png](plots/{path.name})", ""])


def orderings_section(runs, folder: Path) -> list[str]:
    by: dict = {}
    for _, rec in runs:
        s = rec.config_strategy
        label = s["name"] + "".join(f" {k}={v}" for k, v in sorted(s.items()) if k == "lam")
        by.setdefault(label, {}).setdefault(">".join(rec.ordering), []).append(_figs(rec))
    by = {k: v for k, v in by.items() if len(v) >= 2}
    if not by:
        return []
    lines = ["## Study: orderings", "", "How the order of the tasks changes forward transfer, BWT and held-out "
             "dLP (configs/study-orderings.yaml): per ordering, mean ± 95% t-interval over seeds; the seed "
             "spread is the pooled within-ordering standard deviation; one-way ANOVA over orderings.", ""]
    figs = ("FWT", "BWT", "dLP_heldout")
    fig, axes = plt.subplots(len(by), 3, figsize=(13, 3.6 * len(by)), squeeze=False)
    for row, (label, orders) in enumerate(sorted(by.items(), key=lambda kv: natural_key(kv[0]))):
        names = sorted(orders)
        lines += [f"**{md(label)}** ({len(names)} orderings)", "", "| ordering | n | FWT | BWT | held-out dLP |",
                  "|---|---|---|---|---|"]
        for o in names:
            lines.append(f"| {md(o)} | {len(orders[o])} | " + " | ".join(_ci_text(f[k] for f in orders[o]) for k in figs) + " |")
        lines.append("")
        for col, k in enumerate(figs):
            samples = [[f[k] * 100 for f in orders[o] if not math.isnan(f[k])] for o in names]
            ax = axes[row, col]
            means = [np.mean(s) if s else np.nan for s in samples]
            cis = [M.mean_ci95(s)[1] if len(s) > 1 else 0 for s in samples]
            ax.errorbar(range(len(names)), means, yerr=cis, fmt="o", capsize=3)
            resid = [v - np.mean(s) for s in samples if len(s) > 1 for v in s]
            dof = sum(len(s) - 1 for s in samples if len(s) > 1)
            sd = math.sqrt(sum(r * r for r in resid) / dof) if dof else math.nan
            if not math.isnan(sd):
                mid = np.nanmean(means)
                ax.axhspan(mid - sd, mid + sd, color="grey", alpha=0.2, label="± seed SD (pooled)")
                ax.legend(fontsize=7)
            ax.set_xticks(range(len(names)), [o.replace(">", ">\n") for o in names], fontsize=7)
            ax.set_xlabel("ordering (tasks in training order)", fontsize=8)
            ax.set_ylabel(f"{k} (points; mean ± 95% CI over seeds)", fontsize=8)
            ax.set_title(f"{label}: {k}", fontsize=9)
            ax.grid(alpha=0.3)
            lines.append(_ordering_verdict(k, samples, names, sd))
        lines += [""]
    path = folder / "study_orderings.png"
    _save(fig, path)
    return lines + [f"![study_orderings.png](plots/{path.name})", ""]


def _ordering_verdict(k: str, samples: list[list[float]], names: list[str], sd: float) -> str:
    """One line on whether the orderings differ in `k`: an ANOVA only where every ordering has
    MIN_SEEDS_PER_GROUP seeds; otherwise what is missing. Within noise (or untested), the seeds per
    ordering that would resolve the two most different orderings (rough, unpaired). Orderings where `k`
    is undefined (FWT and BWT of one task) are left out."""
    from scipy.stats import f_oneway

    kept = [(o, s) for o, s in zip(names, samples) if s]
    if len(kept) < 2:
        return f"- {k}: defined for {len(kept)} ordering(s) only; nothing to compare."
    spread = float(np.std([np.mean(s) for _, s in kept], ddof=1))
    head = f"- {k}: SD between orderings {spread:.1f} points" + ("" if math.isnan(sd) else f", seed SD {sd:.1f}")
    ok = [s for _, s in kept if len(s) >= 2]
    pair = sorted(ok, key=np.mean)
    need = seeds_needed_unpaired(pair[-1], pair[0]) if len(pair) >= 2 else None
    hint = ("" if need is None else
            f"; the two most different orderings would take about {need} seeds each to tell apart (rough: "
            "unpaired, 80% power at the observed means and spread)")
    short = [f"{o} ({len(s)})" for o, s in kept if len(s) < MIN_SEEDS_PER_GROUP]
    if short:
        return (head + f"; not tested: an ANOVA over orderings needs at least {MIN_SEEDS_PER_GROUP} seeds in each "
                f"ordering, and {', '.join(short)} {'has' if len(short) == 1 else 'have'} fewer" + hint + ".")
    p = float(f_oneway(*[s for _, s in kept]).pvalue)
    if p < 0.05:
        return head + f"; ANOVA p = {p:.3f}: the orderings differ beyond noise."
    return head + f"; ANOVA p = {p:.3f}: within noise" + hint + "."


def study_sections(experiment_dir: Path, runs: list[tuple[str, Records]]) -> list[str]:
    """The sections of the studies the runs make (each optional: a failure is one warning line)."""
    folder = Path(experiment_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for fn in (layers_section, lambda_section, orderings_section):
        with optional_output(lambda e: f"report section {fn.__name__} failed: {type(e).__name__}: {e}"):
            lines += fn(runs, folder)
    return lines


def analysis_sections(experiment_dir: Path, runs: list[tuple[str, Records]], plots: list[Path] | None = None) -> list[str]:
    """report.md's analysis sections: feature drift (evaluation/reporting/plots_drift.py), then the studies."""
    from .plots_drift import drift_section

    # the study sections draw their figures into plots/: not when the collector was asked for no plots
    return drift_section(experiment_dir, runs, plots) + (study_sections(experiment_dir, runs) if plots else [])
