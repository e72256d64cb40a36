"""Concept forgetting as fine-tuned-on x evaluated-on matrices, one per method (the paper's heat maps).

For every method (its name as the paper writes it, leaderboard.method_names) and every dataset a run
was fine-tuned on first, the change of linear-probe accuracy (dLP) and of zero-shot accuracy (dZS) on
every dataset of the suite after that fine-tuning (step 1 of the runs, as the single-task tables), as
the mean over seeds: one row per fine-tuning dataset, one column per evaluated dataset. The diagonal
is the fine-tuned dataset itself (a gain, not forgetting); it is outlined in the plots. With the
paper-single preset each map is 10 x 10.

`matrices` computes them (also written to forgetting_matrices.csv, with 95% intervals and n); `write`
draws plots/heatmap_<method>.png, dLP beside dZS, on one colour scale per quantity shared by every method
so that two maps compare by colour (colour_scale: the largest forgetting off the diagonal).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as M
from ..storage.records import Records
from .optional import optional_output
from .plots import _save, plt, safe_name
from .tables import first_step

KINDS = ("dLP", "dZS")
CSV_COLS = ["method", "fine_tuned_on", "evaluated_on", "metric", "mean", "ci95", "n"]


def matrices(runs: list[tuple[str, Records]]) -> pd.DataFrame:
    """Long form: per method, fine-tuning dataset, evaluated dataset and metric (dLP, dZS), the mean over
    seeds of step 1's change, its 95% CI half-width (NaN with one seed) and the number of seeds."""
    df = first_step(runs)
    if not len(df):
        return pd.DataFrame(columns=CSV_COLS)
    suite = list(dict.fromkeys(d for _, rec in runs for d in rec.suite))
    has_zs = any(rec.ZS for _, rec in runs)
    rows = []
    order = {d: i for i, d in enumerate(suite)}  # rows in the suite's order, so the diagonal is one
    groups = sorted(df.groupby(["label", "ft"]), key=lambda kv: (kv[0][0], order.get(kv[0][1], len(order)), kv[0][1]))
    for (method, ft), g in groups:
        for kind in KINDS if has_zs else KINDS[:1]:
            for d in suite:
                vals = g[f"{kind}|{d}"].dropna().astype(float).tolist() if f"{kind}|{d}" in g else []
                mean, ci = M.mean_ci95(vals) if vals else (math.nan, math.nan)
                rows.append({"method": method, "fine_tuned_on": ft, "evaluated_on": d, "metric": kind,
                             "mean": mean, "ci95": ci, "n": len(vals)})
    return pd.DataFrame(rows, columns=CSV_COLS)


def grid(m: pd.DataFrame, method: str, kind: str) -> tuple[list[str], list[str], np.ndarray]:
    """(fine-tuning datasets, evaluated datasets, means [rows, cols]) of one method and metric."""
    g = m[(m["method"] == method) & (m["metric"] == kind)]
    rows = list(dict.fromkeys(g["fine_tuned_on"]))
    cols = list(dict.fromkeys(g["evaluated_on"]))
    a = np.full((len(rows), len(cols)), np.nan)
    for r in g.itertuples():
        a[rows.index(r.fine_tuned_on), cols.index(r.evaluated_on)] = r.mean
    return rows, cols, a


def colour_scale(m: pd.DataFrame, kind: str) -> float:
    """The largest |change| off the diagonal over every method (the forgetting, which the maps are for; the
    diagonal's gains, often larger, saturate the colour and keep their numbers), or over all cells if
    nothing lies off it; 0 without values."""
    g = m[(m["metric"] == kind) & m["mean"].notna()]
    off = g[g["fine_tuned_on"] != g["evaluated_on"]]
    vals = (off if len(off) else g)["mean"].abs()
    return float(vals.max()) if len(vals) else 0.0


def heatmap(m: pd.DataFrame, method: str, scale: dict[str, float], path: Path) -> bool:
    """One method's maps (dLP, and dZS where recorded) side by side, in points, on the shared `scale`."""
    kinds = [k for k in KINDS if ((m["method"] == method) & (m["metric"] == k)).any()]
    if not kinds:
        return False
    n = int(m.loc[m["method"] == method, "n"].max())
    first_rows, first_cols, _ = grid(m, method, kinds[0])
    w = 1.6 + 0.62 * len(first_cols)
    fig, axes = plt.subplots(1, len(kinds), figsize=(w * len(kinds), 1.6 + 0.5 * len(first_rows)), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        rows, cols, a = grid(m, method, kind)
        v = a * 100
        lim = max(scale[kind] * 100, 1e-9)
        im = ax.imshow(v, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        for i in range(v.shape[0]):
            for j in range(v.shape[1]):
                if not math.isnan(v[i, j]):
                    ax.text(j, i, f"{round(v[i, j], 1) + 0.0:+.1f}", ha="center", va="center", fontsize=7,
                            color="w" if abs(v[i, j]) > 0.6 * lim else "k")
                if rows[i] == cols[j]:  # the fine-tuned dataset itself: a gain, not forgetting
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.5, ec="k"))
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel("evaluated on")
        ax.set_ylabel("fine-tuned on")
        ax.set_title(f"{kind} (points)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{method}: change after fine-tuning, mean of up to {n} seed(s); the outlined diagonal is the "
                 "fine-tuned dataset", fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return True


def write(experiment_dir: Path, m: pd.DataFrame) -> list[Path]:
    """plots/heatmap_<method>.png for every method of `m` (matrices); each optional (one warning line)."""
    out: list[Path] = []
    if not len(m):
        return out
    folder = Path(experiment_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    scale = {k: colour_scale(m, k) for k in KINDS}
    for method in sorted(m["method"].unique()):
        path = folder / f"heatmap_{safe_name(method)}.png"
        with optional_output(lambda e: f"plot {path.name} not written ({type(e).__name__}: "
                                       f"{str(e).splitlines()[0] if str(e) else ''})"):
            if heatmap(m, method, scale, path):
                out.append(path)
    return out
