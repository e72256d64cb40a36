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
from .evidence import run_figures  # noqa: E402
from .optional import optional_output  # noqa: E402
from .plots import _save  # noqa: E402
from .plots_drift import group_drift, last_tap  # noqa: E402


def _figs(rec: dict) -> dict:
    f = run_figures(rec)
    R = np.asarray(rec["R"], dtype=float)
    f["FWT"], f["BWT"] = M.fwt(R), M.bwt(R)
    f["drift_last"] = (float(group_drift(rec, len(rec["ordering"]), "held-out")[last_tap(rec)])
                       if isinstance(rec.get("drift"), dict) and rec["drift"].get("ldifs") else math.nan)
    return f


def _key(rec: dict) -> tuple:
    return tuple(rec["ordering"]), rec["config"]["seed"]


def _ci_text(xs, scale: float = 100.0, digits: int = 1) -> str:
    m, ci = M.mean_ci95(list(xs))
    if math.isnan(m):
        return ""
    return f"{m * scale:+.{digits}f}" + ("" if math.isnan(ci) else f" ± {ci * scale:.{digits}f}")


def _beyond(xs) -> bool:
    m, ci = M.mean_ci95(list(xs))
    return not math.isnan(ci) and abs(m) > ci


def _groups(runs, name: str, param: str) -> dict:
    """{value of `param` (JSON text): {(ordering, seed): figures}} over the runs of strategy `name`."""
    out: dict = {}
    for _, rec in runs:
        s = rec["config"]["strategy"]
        if s["name"] == name and param in s:
            value = s[param] if isinstance(s[param], str) else json.dumps(s[param])  # "last", [0, 1, 2], 30.0
            out.setdefault(value, {})[_key(rec)] = _figs(rec)
    return out


def _base(runs, name: str = "ft") -> dict:
    return {_key(rec): _figs(rec) for _, rec in runs if rec["config"]["strategy"]["name"] == name}


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
        rows.append(f"| {value} | {len(g)} | {_ci_text(v['gain'] for v in g.values())} | "
                    f"{_ci_text(v['dLP_heldout'] for v in g.values())} | "
                    f"{_ci_text((v['drift_last'] for v in g.values()), 1e3, 2)} |")
    if base:
        rows += ["", f"Minus `ft`, paired by (ordering, seed); **bold**: the 95% interval excludes 0 (beyond noise).", "",
                 f"| {label} | pairs | task gain - ft | held-out dLP - ft | drift - ft (x1e3) |", "|---|---|---|---|---|"]
        for value, g in groups.items():
            cells = []
            for fig, scale, digits in (("gain", 100, 1), ("dLP_heldout", 100, 1), ("drift_last", 1e3, 2)):
                d = _paired(g, base, fig)
                t = _ci_text(d, scale, digits)
                cells.append(f"**{t}**" if t and _beyond(d) else t)
            rows.append(f"| {value} | {len(set(g) & set(base))} | " + " | ".join(cells) + " |")
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
               _verdict(groups, base, "gain", "task gain"), "", f"![study_lambda.png](plots/{path.name})", ""])


def layers_section(runs, folder: Path) -> list[str]:
    groups = _groups(runs, "ldifs", "layers")
    if len(groups) < 2:
        return []
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
    from scipy.stats import f_oneway

    by: dict = {}
    for _, rec in runs:
        s = rec["config"]["strategy"]
        label = s["name"] + "".join(f" {k}={v}" for k, v in sorted(s.items()) if k == "lam")
        by.setdefault(label, {}).setdefault(">".join(rec["ordering"]), []).append(_figs(rec))
    by = {k: v for k, v in by.items() if len(v) >= 2}
    if not by:
        return []
    lines = ["## Study: orderings", "", "How the order of the tasks changes forward transfer, BWT and held-out "
             "dLP (configs/study-orderings.yaml): per ordering, mean ± 95% t-interval over seeds; the seed "
             "spread is the pooled within-ordering standard deviation; one-way ANOVA over orderings.", ""]
    figs = ("FWT", "BWT", "dLP_heldout")
    fig, axes = plt.subplots(len(by), 3, figsize=(13, 3.2 * len(by)), squeeze=False)
    for row, (label, orders) in enumerate(sorted(by.items())):
        names = sorted(orders)
        lines += [f"**{label}** ({len(names)} orderings)", "", "| ordering | n | FWT | BWT | held-out dLP |",
                  "|---|---|---|---|---|"]
        for o in names:
            lines.append(f"| {o} | {len(orders[o])} | " + " | ".join(_ci_text(f[k] for f in orders[o]) for k in figs) + " |")
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
                ax.axhspan(mid - sd, mid + sd, color="grey", alpha=0.2, label="± seed SD")
            ax.set_xticks(range(len(names)), [f"o{i + 1}" for i in range(len(names))])
            ax.set_title(f"{label}: {k}", fontsize=9)
            ax.grid(alpha=0.3)
            ok = [s for s in samples if len(s) > 1]
            if len(ok) >= 2 and not math.isnan(sd):
                p = float(f_oneway(*ok).pvalue)
                spread = float(np.nanstd([np.mean(s) for s in ok], ddof=1))
                lines.append(f"- {k}: SD between orderings {spread:.1f} points, seed SD {sd:.1f}; ANOVA p = {p:.3f}: "
                             + ("the orderings differ beyond noise." if p < 0.05 else "within noise."))
        lines += ["", "Orderings o1.. in the order of the table above.", ""]
    path = folder / "study_orderings.png"
    _save(fig, path)
    return lines + [f"![study_orderings.png](plots/{path.name})", ""]


def study_sections(experiment_dir: Path, runs: list[tuple[str, dict]]) -> list[str]:
    """The sections of the studies the runs make (each optional: a failure is one warning line)."""
    folder = Path(experiment_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for fn in (layers_section, lambda_section, orderings_section):
        with optional_output(lambda e: f"report section {fn.__name__} failed: {type(e).__name__}: {e}"):
            lines += fn(runs, folder)
    return lines


def analysis_sections(experiment_dir: Path, runs: list[tuple[str, dict]], plots: list[Path] | None = None) -> list[str]:
    """report.md's analysis sections: feature drift (evaluation/reporting/plots_drift.py), then the studies."""
    from .plots_drift import drift_section

    # the study sections draw their figures into plots/: not when the collector was asked for no plots
    return drift_section(experiment_dir, runs, plots) + (study_sections(experiment_dir, runs) if plots else [])
