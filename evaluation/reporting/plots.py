"""PNG plots from record files (run by the collector; every plot is optional: a failure is one warning).

File names are built only from run ids (the run folder's name, checked against the hash of its
config) and fixed words, plus strategy labels passed through `safe_name`: a string inside a
record can never choose where a file is written.

Longer than 300 lines because the helpers every plot module imports (`_save`, `safe_name`, `_n_label`,
`_footer`) live here with the plots that first needed them.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import compare as C  # noqa: E402
from ..storage.records import Records  # noqa: E402
from benchmark.files import atomic_write_bytes  # noqa: E402

from .noise import natural_key  # noqa: E402
from .optional import optional_output  # noqa: E402

DPI = 120


def safe_name(text: str, limit: int = 60) -> str:
    """A file-name fragment: letters, digits, '.', '-', '=' and '_' only, no leading dot, bounded length."""
    s = re.sub(r"[^A-Za-z0-9.=-]+", "_", str(text)).strip("._")[:limit]
    return s or "x"


def run_file_name(rec: Records, rid: str) -> str:
    """What one run's plot shows, for its file name: `<strategy>[_<params>]__<ordering>__seed<N>__<run id>`
    (the run id last: unique, and what scripts look files up by)."""
    params = ",".join(f"{k}={v}" for k, v in rec.params.items())
    return "__".join([safe_name(rec.strategy_name + (f"_{params}" if params else ""), 60),
                      safe_name("-".join(rec.ordering), 80), f"seed{int(rec.seed)}", safe_name(rid)])


def _save(fig, path: Path) -> None:
    """Atomic PNG write (through records.atomic_write_bytes: a temporary a crash strands is cleaned
    up by the next start)."""
    buf = io.BytesIO()
    try:
        # the tight box of what is drawn, computed here so that savefig does not draw the figure a first
        # time only to measure it (bbox_inches="tight" does): the same box, one draw instead of two
        fig.set_dpi(DPI)  # text is measured at the resolution it is drawn at
        box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches=box)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _run_title(rec: Records, rid: str) -> str:
    params = ",".join(f"{k}={v}" for k, v in rec.params.items())
    return f"{rec.strategy_name}{' ' + params if params else ''}, {' > '.join(rec.ordering)}, seed {rec.seed} [{rid}]"


def accuracy_matrix(rec: Records, rid: str, path: Path) -> None:
    """Heatmap of R: rows = after each step, columns = the ordering's tasks."""
    R = np.asarray(rec.R, dtype=float) * 100
    ordering = rec.ordering
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


def task_curves(rec: Records, rid: str, path: Path) -> None:
    """Accuracy on each task across the sequence: one line per task, x = training step."""
    R = np.asarray(rec.R, dtype=float) * 100
    ordering = rec.ordering
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


def _footer(fig, excluded: list[str]) -> None:
    """The runs a comparison left out, under the figure (none pooled in silently)."""
    if excluded:
        fig.canvas.draw()  # lay the axes out, so that the note goes below everything drawn
        bottom = min(ax.get_tightbbox(fig.canvas.get_renderer()).y0 for ax in fig.axes) / fig.bbox.height
        fig.text(0.01, bottom - 0.02, "Excluded (not shared by every strategy shown):\n" + "\n".join(excluded),
                 fontsize=7, va="top")


def _n_label(lab: str, n: int) -> str:
    return f"{lab} (n={n} seed{'s' if n != 1 else ''}{', no interval' if n < 2 else ''})"


def forgetting_bars(df: pd.DataFrame, kind: str, path: Path) -> bool:
    """Grouped bars of the final delta (dLP or dZS) per dataset, one bar per strategy, over the
    orderings and seeds every strategy shares; 95% CI across seeds only where n >= 2; held-out
    datasets marked (hatched, and named so on the axis)."""
    cols = [c for c in df.columns if c.startswith(f"{kind}_") and c not in (f"{kind}_heldout", f"{kind}_all")]
    cols = [c for c in cols if df[c].notna().any()]
    if not cols:
        return False
    df, excluded = C.shared_coverage(df[df[cols].notna().any(axis=1)])
    datasets = [c[len(kind) + 1:] for c in cols]
    status = C.held_out_status(sorted(df["ordering"].unique()), datasets)
    labs = sorted(df["label"].unique(), key=natural_key)
    width = 0.8 / len(labs)
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * len(datasets), 3.8))
    x = np.arange(len(datasets))
    for k, lab in enumerate(labs):
        g = df[df["label"] == lab]
        stats = [C.interval(C.per_seed(g, c)[c].dropna()) for c in cols]
        n = max(st[3] for st in stats)
        bars = ax.bar(x + (k - (len(labs) - 1) / 2) * width, [st[0] * 100 for st in stats], width,
                      yerr=C.error_bars(stats), capsize=3 if n >= 2 else 0, label=_n_label(lab, n), color=f"C{k}")
        for b, d in zip(bars, datasets):
            if status[d]:
                b.set_hatch("//")
    for j, d in enumerate(datasets):
        if status[d]:
            ax.axvspan(j - 0.45, j + 0.45, color="0.93", zorder=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, [f"{d}\n({status[d]})" if status[d] else d for d in datasets],
                  rotation=0 if len(datasets) <= 6 else 30, ha="center" if len(datasets) <= 6 else "right")
    ax.set_xlabel("dataset evaluated (shaded, hatched: held out of training)")
    ax.set_ylabel(f"{kind}: change since pre-training (points)")
    what = "linear probe" if kind == "dLP" else "zero-shot"
    ax.set_title(f"Concept forgetting per dataset, {what} ({kind}) after the last task\n"
                 f"mean over orderings {', '.join(sorted(df['ordering'].unique()))}; "
                 "error bars: 95% CI across seeds (none for n < 2)", fontsize=9)
    ax.legend(fontsize=8, title="strategy", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    _footer(fig, excluded)
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
    """Downstream accuracy (ACC) against held-out concept forgetting, one point per strategy over
    the orderings and seeds all share, 95% CIs only for n >= 2 (ACC's clipped to [0, 100]), and the
    front of points no other dominates beyond the intervals; a second panel for dZS."""
    panels = [c for c in ("dLP_heldout", "dZS_heldout") if df[c].notna().any()]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False)
    notes = []
    for ax, col in zip(axes[0], panels):
        g, excluded = C.shared_coverage(df[df[col].notna()])
        notes += [e for e in excluded if e not in notes]
        labs = sorted(g["label"].unique(), key=natural_key)
        pts = []
        for k, lab in enumerate(labs):
            h = g[g["label"] == lab]
            sx = C.interval(C.per_seed(h, col)[col], clip=(-1.0, 1.0))
            sy = C.interval(C.per_seed(h, "ACC")["ACC"], clip=(0.0, 1.0))
            pts.append(((sx[0], sx[1], sx[2]), (sy[0], sy[1], sy[2])))
            ax.errorbar(sx[0] * 100, sy[0] * 100, xerr=np.array(C.error_bars([sx])), yerr=np.array(C.error_bars([sy])),
                        fmt="o", capsize=3 if sx[3] >= 2 else 0, ms=7, color=f"C{k}", label=_n_label(lab, sy[3]))
        front = C.pareto_front_uncertain(pts)
        ax.plot([pts[i][0][0] * 100 for i in front], [pts[i][1][0] * 100 for i in front], "none", marker="s",
                ms=13, mfc="none", mec="k", label="not dominated beyond the CIs\n(n < 2: never dominated)")
        # the line joins only the points no other point dominates on the means: a point dominated on the
        # means but not beyond the intervals keeps its square, off the line
        line = pareto_front([(pts[i][0][0], pts[i][1][0]) for i in range(len(pts))])
        ax.plot([pts[i][0][0] * 100 for i in line], [pts[i][1][0] * 100 for i in line], "k--", lw=1,
                label="front of the means")
        ax.axvline(0, color="0.7", lw=0.8)
        name = "linear probe" if col.startswith("dLP") else "zero-shot"
        ax.set_xlabel(f"{col}: held-out concept forgetting,\n{name} (points; right = less forgetting)")
        ax.set_ylabel("ACC: final accuracy on the sequence's tasks (%)")
        ax.set_title(f"Accuracy vs held-out forgetting ({name})\nmean over the shared orderings "
                     f"({', '.join(sorted(g['ordering'].unique()))}) and seeds; bars: 95% CI", fontsize=9)
        ax.legend(fontsize=7, title="strategy", title_fontsize=8)
    _footer(fig, notes)
    fig.tight_layout()
    _save(fig, path)
    return True


def heldout_probe_steps(runs: list[tuple[str, Records]], df: pd.DataFrame, path: Path) -> bool:
    """Linear-probe accuracy on the held-out datasets (mean over them) after every step, one panel
    per ordering shared by the strategies, one line per strategy: mean over seeds, a 95% band where n >= 2."""
    g, excluded = C.shared_coverage(df)
    recs = dict(runs)
    curves = {}
    for _, r in g.iterrows():
        rec = recs[r["run_id"]]
        held = [j for j, d in enumerate(rec.suite) if d not in rec.ordering]
        if held:
            curves.setdefault(r["ordering"], {}).setdefault(r["label"], []).append(
                np.asarray(rec.LP, dtype=float)[:, held].mean(axis=1))
    if not curves:
        return False
    orders = sorted(curves)
    fig, axes = plt.subplots(1, len(orders), figsize=(0.5 + 3.6 * len(orders), 3.6), squeeze=False, sharey=True)
    labs = sorted(g["label"].unique(), key=natural_key)
    for ax, o in zip(axes[0], orders):
        steps = ["pre-trained"] + [f"after {d}" for d in o.split(">")]
        for k, lab in enumerate(labs):
            ys = curves[o].get(lab)
            if not ys:
                continue
            stats = [C.interval([y[t] for y in ys], clip=(0.0, 1.0)) for t in range(len(steps))]
            m = np.array([st[0] for st in stats]) * 100
            ax.plot(range(len(steps)), m, marker="o", color=f"C{k}", label=_n_label(lab, len(ys)))
            if len(ys) >= 2:
                ax.fill_between(range(len(steps)), [st[1] * 100 for st in stats], [st[2] * 100 for st in stats],
                                color=f"C{k}", alpha=0.2, lw=0)
        ax.set_xticks(range(len(steps)), steps, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"ordering {o}", fontsize=9)
        ax.set_xlabel("training step")
    axes[0][0].set_ylabel("held-out linear-probe accuracy (%)\n(mean over the held-out datasets)")
    axes[0][-1].legend(fontsize=7, title="strategy", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Held-out probe accuracy after every step (band: 95% CI across seeds, n >= 2 only)", fontsize=10)
    _footer(fig, excluded)
    fig.tight_layout()
    _save(fig, path)
    return True


def ordering_sensitivity(df: pd.DataFrame, path: Path) -> bool:
    """One figure for every strategy: a row of panels per set of tasks run in two or more orders,
    one panel per metric on a y-scale shared down the column; per ordering, each strategy's mean
    over seeds (bar) and seeds (dots). The SDs across orderings and seeds are in report.md."""
    from .leaderboard import ORDERING_COLS, sequences

    g = sequences(df)
    sets = [t for t, h in g.groupby("tasks", sort=True) if h["ordering"].nunique() >= 2]
    if not sets:
        return False
    labs = sorted(g["label"].unique(), key=natural_key)
    fig, axes = plt.subplots(len(sets), len(ORDERING_COLS), figsize=(3.4 * len(ORDERING_COLS), 3.9 * len(sets)),
                             squeeze=False, sharey="col")
    width = 0.8 / len(labs)
    for row, tasks in zip(axes, sets):
        h = g[g["tasks"] == tasks]
        orderings = sorted(h["ordering"].unique())
        x = np.arange(len(orderings))
        for ax, col in zip(row, ORDERING_COLS):
            for k, lab in enumerate(labs):
                off = (k - (len(labs) - 1) / 2) * width
                vals = [h.loc[(h["ordering"] == o) & (h["label"] == lab), col].dropna() * 100 for o in orderings]
                ax.bar(x + off, [v.mean() if len(v) else np.nan for v in vals], width, color=f"C{k}", alpha=0.45,
                       label=lab)
                for i, v in enumerate(vals):
                    ax.plot(np.full(len(v), x[i] + off), v, "o", color=f"C{k}", ms=3.5,
                            label="one seed (dot)" if (k, i) == (0, 0) else None)
            ax.axhline(0, color="k", lw=0.8)
            ax.set_xticks(x, orderings, rotation=30, ha="right", fontsize=8)
            ax.set_xlabel(f"ordering of {tasks}", fontsize=8)
            ax.set_ylabel(f"{col} ({'%' if col == 'ACC' else 'points'})")
            ax.set_title(col, fontsize=9)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, title="strategy: mean over seeds (bar)", title_fontsize=8,
               loc="upper left", bbox_to_anchor=(1.0, 0.95))
    fig.suptitle("Ordering sensitivity, every strategy on one scale per metric "
                 "(SD across orderings vs across seeds: report.md)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return True


def write_plots(experiment_dir: Path, runs: list[tuple[str, Records]], df: pd.DataFrame) -> list[Path]:
    """Every plot of an experiment into plots/; returns the files written. A plot that fails is
    skipped with one warning line naming it."""
    from .leaderboard import labels

    out = Path(experiment_dir) / "plots"
    written: list[Path] = []

    def attempt(path: Path, fn, *args) -> None:
        with optional_output(lambda e: f"plot {path.name} not written "
                                       f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"):
            if fn(*args, path) is not False:
                written.append(path)

    # one run's task curves only where it is its strategy and ordering's only seed: with two or more, the
    # seed-averaged trajectories and matrices (plots_steps.py) show them, and each run keeps its matrix
    alone = set(df["run_id"]) if not len(df) else {
        rid for _, g in df.assign(label=labels(df)).groupby(["label", "ordering"]) if len(g) == 1 for rid in g["run_id"]}
    for rid, rec in runs:
        name = run_file_name(rec, rid)
        attempt(out / f"accuracy_matrix_{name}.png", accuracy_matrix, rec, rid)
        if rid in alone:
            attempt(out / f"task_accuracy_{name}.png", task_curves, rec, rid)
    if len(df):
        df = df.assign(label=labels(df))
        attempt(out / "dLP_per_dataset.png", forgetting_bars, df, "dLP")
        attempt(out / "dZS_per_dataset.png", forgetting_bars, df, "dZS")
        attempt(out / "accuracy_vs_forgetting.png", accuracy_vs_forgetting, df)
        attempt(out / "heldout_probe_steps.png", heldout_probe_steps, runs, df)
        attempt(out / "ordering_sensitivity.png", ordering_sensitivity, df)
    return written
