"""PNG plots from record files (run by the collector; every plot is optional: a failure is one warning).

File names are built only from run ids (the run folder's name, checked against the hash of its
config) and fixed words, plus strategy labels passed through `safe_name`: a string inside a
record can never choose where a file is written.
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import metrics as M  # noqa: E402
from benchmark.files import atomic_write_bytes  # noqa: E402

DPI = 120


def safe_name(text: str, limit: int = 60) -> str:
    """A file-name fragment: letters, digits, '.', '-', '=' and '_' only, no leading dot, bounded length."""
    s = re.sub(r"[^A-Za-z0-9.=-]+", "_", str(text)).strip("._")[:limit]
    return s or "x"


def _save(fig, path: Path) -> None:
    """Atomic PNG write (through records.atomic_write_bytes: a temporary a crash strands is cleaned
    up by the next start)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _run_title(rec: dict, rid: str) -> str:
    s = rec["config"]["strategy"]
    params = ",".join(f"{k}={v}" for k, v in s.items() if k != "name")
    return f"{s['name']}{' ' + params if params else ''}, {' > '.join(rec['ordering'])}, seed {rec['config']['seed']} [{rid}]"


def accuracy_matrix(rec: dict, rid: str, path: Path) -> None:
    """Heatmap of R: rows = after each step, columns = the ordering's tasks."""
    R = np.asarray(rec["R"], dtype=float) * 100
    ordering = rec["ordering"]
    fig, ax = plt.subplots(figsize=(2.4 + 1.2 * len(ordering), 1.6 + 0.6 * len(R)))
    im = ax.imshow(R, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            ax.text(j, i, f"{R[i, j]:.1f}", ha="center", va="center", color="w" if R[i, j] < 60 else "k", fontsize=9)
    ax.set_xticks(range(len(ordering)), ordering, rotation=30, ha="right")
    ax.set_yticks(range(len(R)), ["pre-trained"] + [f"after {d}" for d in ordering])
    ax.set_xlabel("task evaluated (test set, own head)")
    ax.set_ylabel("model after training step")
    ax.set_title("Accuracy matrix R\n" + _run_title(rec, rid), fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    _save(fig, path)


def task_curves(rec: dict, rid: str, path: Path) -> None:
    """Accuracy on each task across the sequence: one line per task, x = training step."""
    R = np.asarray(rec["R"], dtype=float) * 100
    ordering = rec["ordering"]
    fig, ax = plt.subplots(figsize=(2.8 + 0.9 * len(ordering), 3.4))
    steps = np.arange(len(R))
    for j, d in enumerate(ordering):
        ax.plot(steps, R[:, j], marker="o", label=f"task {j + 1}: {d}")
        ax.axvline(j + 1, color="0.85", lw=0.8, zorder=0)
    ax.set_xticks(steps, ["pre-trained"] + [f"after {d}" for d in ordering], rotation=30, ha="right")
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Accuracy on each task across the sequence\n" + _run_title(rec, rid), fontsize=9)
    ax.legend(fontsize=8, title="task (own head)", title_fontsize=8)
    _save(fig, path)


def _per_seed(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Mean of `col` per (label, seed) over the label's orderings: the unit that seeds vary."""
    return df.groupby(["label", "seed"])[col].mean().reset_index()


def forgetting_bars(df: pd.DataFrame, kind: str, path: Path) -> bool:
    """Grouped bars of the final delta (dLP or dZS) per dataset, one bar per strategy, 95% CI over seeds."""
    cols = [c for c in df.columns if c.startswith(f"{kind}_") and c not in (f"{kind}_heldout", f"{kind}_all")]
    cols = [c for c in cols if df[c].notna().any()]
    if not cols:
        return False
    datasets = [c[len(kind) + 1:] for c in cols]
    labs = sorted(df["label"].unique())
    width = 0.8 / len(labs)
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * len(datasets), 3.8))
    x = np.arange(len(datasets))
    for k, lab in enumerate(labs):
        g = df[df["label"] == lab]
        stats = [M.mean_ci95(_per_seed(g, c)[c].dropna().tolist()) for c in cols]
        means = np.array([m for m, _ in stats]) * 100
        err = np.array([0 if math.isnan(ci) else ci for _, ci in stats]) * 100
        ax.bar(x + (k - (len(labs) - 1) / 2) * width, means, width, yerr=err, capsize=3,
               label=f"{lab} (n={g['seed'].nunique()} seeds)")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, datasets, rotation=30, ha="right")
    ax.set_xlabel("dataset evaluated")
    ax.set_ylabel(f"{kind}: change since pre-training (points)")
    what = "linear probe" if kind == "dLP" else "zero-shot"
    ax.set_title(f"Concept forgetting per dataset, {what} ({kind}) after the last task\n"
                 "mean over orderings; error bars: 95% CI across seeds", fontsize=9)
    ax.legend(fontsize=8, title="strategy", title_fontsize=8)
    _save(fig, path)
    return True


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated when both coordinates are to be maximised, by x."""
    idx = []
    for i, (x, y) in enumerate(points):
        if not any((x2 >= x and y2 >= y) and (x2 > x or y2 > y) for x2, y2 in points):
            idx.append(i)
    return sorted(idx, key=lambda i: points[i][0])


def accuracy_vs_forgetting(df: pd.DataFrame, path: Path) -> bool:
    """Downstream accuracy (ACC) against held-out concept forgetting, one point per strategy,
    with the Pareto front; a second panel for dZS when there are zero-shot scores."""
    panels = [c for c in ("dLP_heldout", "dZS_heldout") if df[c].notna().any()]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False)
    for ax, col in zip(axes[0], panels):
        g = df[df[col].notna()]
        labs = sorted(g["label"].unique())
        pts = []
        for lab in labs:
            h = g[g["label"] == lab]
            (mx, cx), (my, cy) = (M.mean_ci95(_per_seed(h, col)[col].tolist()),
                                  M.mean_ci95(_per_seed(h, "ACC")["ACC"].tolist()))
            pts.append((mx * 100, my * 100))
            ax.errorbar(mx * 100, my * 100, xerr=0 if math.isnan(cx) else cx * 100,
                        yerr=0 if math.isnan(cy) else cy * 100, fmt="o", capsize=3, ms=7, label=lab)
        front = pareto_front(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, marker="s", ms=13, mfc="none",
                label="Pareto front (not dominated)")
        ax.axvline(0, color="0.7", lw=0.8)
        name = "linear probe" if col.startswith("dLP") else "zero-shot"
        ax.set_xlabel(f"{col}: held-out concept forgetting,\n{name} (points; right = less forgetting)")
        ax.set_ylabel("ACC: final accuracy on the sequence's tasks (%)")
        ax.set_title(f"Accuracy vs held-out forgetting ({name})\nmean over orderings and seeds; bars: 95% CI", fontsize=9)
        ax.legend(fontsize=8, title="strategy", title_fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return True


def ordering_sensitivity(df: pd.DataFrame, label: str, path: Path) -> bool:
    """One row of panels per set of tasks run in two or more orders, one panel per metric: each
    ordering's seeds (dots) and mean (bar), with the SD across orderings beside the seed-to-seed SD."""
    from .leaderboard import ORDERING_COLS, ordering_sensitivity as sensitivity, sequences

    g = sequences(df)
    g = g[g["label"] == label]
    sets = [t for t, h in g.groupby("tasks", sort=True) if h["ordering"].nunique() >= 2]
    if not sets:
        return False
    sens = sensitivity(df)
    sens = sens[sens["label"] == label].set_index(["tasks", "metric"])
    fig, axes = plt.subplots(len(sets), len(ORDERING_COLS), figsize=(3.2 * len(ORDERING_COLS), 3.9 * len(sets)),
                             squeeze=False)
    fmt = lambda v: "n/a" if math.isnan(v) else f"{v * 100:.1f}"  # noqa: E731
    for row, tasks in zip(axes, sets):
        h = g[g["tasks"] == tasks]
        orderings = sorted(h["ordering"].unique())
        x = np.arange(len(orderings))
        for ax, col in zip(row, ORDERING_COLS):
            means = [h.loc[h["ordering"] == o, col].mean() * 100 for o in orderings]
            ax.bar(x, means, 0.6, color="0.8", label="mean over seeds")
            for k, o in enumerate(orderings):
                v = h.loc[h["ordering"] == o, col].dropna() * 100
                ax.plot(np.full(len(v), k), v, "o", color="C0", ms=4, label="one seed" if k == 0 else None)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(x, orderings, rotation=30, ha="right", fontsize=8)
            ax.set_xlabel("ordering")
            ax.set_ylabel(f"{col} ({'%' if col == 'ACC' else 'points'})")
            s = sens.loc[(tasks, col)]
            ax.set_title(f"{col}\nSD across orderings {fmt(s['across_orderings_sd'])}, "
                         f"across seeds {fmt(s['across_seeds_sd'])}", fontsize=8)
        row[0].legend(fontsize=7)
    fig.suptitle(f"Ordering sensitivity: {label} (SDs in points)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


def write_plots(experiment_dir: Path, runs: list[tuple[str, dict]], df: pd.DataFrame) -> list[Path]:
    """Every plot of an experiment into plots/; returns the files written. A plot that fails is
    skipped with one warning line naming it."""
    from .leaderboard import labels, warn

    out = Path(experiment_dir) / "plots"
    written: list[Path] = []

    def attempt(path: Path, fn, *args) -> None:
        try:
            if fn(*args, path) is not False:
                written.append(path)
        except Exception as e:  # a plot must never stop the collector
            plt.close("all")
            warn(f"plot {path.name} not written ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")

    for rid, rec in runs:
        name = safe_name(rid)
        attempt(out / f"accuracy_matrix_{name}.png", accuracy_matrix, rec, rid)
        attempt(out / f"task_accuracy_{name}.png", task_curves, rec, rid)
    if len(df):
        df = df.assign(label=labels(df))
        attempt(out / "dLP_per_dataset.png", forgetting_bars, df, "dLP")
        attempt(out / "dZS_per_dataset.png", forgetting_bars, df, "dZS")
        attempt(out / "accuracy_vs_forgetting.png", accuracy_vs_forgetting, df)
        used: set[str] = set()
        for lab in sorted(df["label"].unique()):
            name = safe_name(lab)
            while name in used:
                name += "_"
            used.add(name)
            attempt(out / f"ordering_sensitivity_{name}.png", ordering_sensitivity, df, lab)
    return written
