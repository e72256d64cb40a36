"""Pictures of the matrices and trajectories, seed-averaged (no torch; run by the collector, each
figure optional: a failure is one warning line).

Per strategy (label, as the leaderboard labels it) and ordering, over its seeds:
- `matrix_R__<label>__<ordering>.png`: the accuracy matrix R (rows: pre-trained, after each task;
  columns: the ordering's tasks, own head), mean over seeds printed in each cell, ± the 95% half-width
  where n >= 2;
- `matrix_ZS__<label>__<ordering>.png`: the zero-shot matrix (rows: steps; columns: every dataset of the
  suite, held-out ones marked), the same way (models with a text tower only).
Per ordering, every strategy on one figure:
- `steps_LP__<ordering>.png`, `steps_ZS__<ordering>.png`: linear-probe (zero-shot) accuracy of every
  dataset after every step, one panel per dataset (the ordering's tasks first, then the held-out ones,
  titled so), one line per strategy: mean over seeds, a 95% band clipped to [0, 100] where n >= 2;
- `loss__<ordering>.png`: the training loss per epoch (records' `steps[k].loss`; runs made before
  records kept it have none) and the mean weighted penalty terms per task, per strategy, mean over seeds
  with a band where n >= 2.

Strategies are compared over the (ordering, seed) pairs they share (evaluation/reporting/compare.py);
file names are fixed words plus `safe_name` fragments of the label and ordering.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import compare as C  # noqa: E402
from ..storage.records import Records  # noqa: E402
from .noise import natural_key  # noqa: E402
from .optional import optional_output  # noqa: E402
from .plots import _n_label, _save, safe_name  # noqa: E402


def _groups(runs: list[tuple[str, Records]], df: pd.DataFrame) -> dict[tuple[str, str], list[Records]]:
    """{(label, ordering): [records of its seeds]}, labels as in the leaderboard."""
    recs = dict(runs)
    out: dict = {}
    for _, r in df.iterrows():
        out.setdefault((r["label"], r["ordering"]), []).append(recs[r["run_id"]])
    return out


def _cell_text(values: list[float]) -> str:
    m, lo, hi, n = C.interval(values, clip=(0.0, 1.0))
    if n < 2:
        return f"{m * 100:.1f}"
    return f"{m * 100:.1f}\n[{lo * 100:.0f}, {hi * 100:.0f}]"


def mean_matrix(recs: list[Records], kind: str, label: str, path: Path) -> bool:
    """Heatmap of the seed-mean of R or ZS, values (and clipped 95% intervals where n >= 2) in the cells."""
    if kind == "ZS" and not all(r.ZS for r in recs):
        return False
    rec0 = recs[0]
    ordering, suite = rec0.ordering, rec0.suite
    stack = np.asarray([getattr(r, kind) for r in recs], dtype=float)  # [n, T+1, cols]
    mean = stack.mean(axis=0) * 100
    cols = ordering if kind == "R" else suite
    held = [d not in ordering for d in cols]
    fig, ax = plt.subplots(figsize=(2.6 + 1.25 * len(cols), 1.8 + 0.75 * mean.shape[0]))
    im = ax.imshow(mean, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            ax.text(j, i, _cell_text(list(stack[:, i, j])), ha="center", va="center", fontsize=8,
                    color="w" if mean[i, j] < 60 else "k")
    ax.set_xticks(range(len(cols)), [f"{d}\n(held out)" if h else d for d, h in zip(cols, held)],
                  rotation=0 if len(cols) <= 4 else 30, ha="center" if len(cols) <= 4 else "right")
    ax.set_yticks(range(mean.shape[0]), ["pre-trained"] + [f"after {d}" for d in ordering])
    what = ("task evaluated (test set, own head)" if kind == "R"
            else "dataset evaluated zero-shot (test set; held out: never trained)")
    ax.set_xlabel(what)
    ax.set_ylabel("model after training step")
    n = len(recs)
    name = "Accuracy matrix R" if kind == "R" else "Zero-shot accuracy matrix"
    ax.set_title(f"{name}: {label}, {' > '.join(ordering)}\nmean over {n} seed{'s' if n != 1 else ''}"
                 + (" (no interval for n = 1)" if n < 2 else "; [95% CI, clipped to 0-100]"), fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    _save(fig, path)
    return True


def _band(ax, x, ys: list, color, label: str, clip=(0.0, 1.0), scale: float = 100.0) -> None:
    stats = [C.interval([y[t] for y in ys if t < len(y) and y[t] is not None], clip=clip) for t in range(len(x))]
    m = np.array([st[0] for st in stats], dtype=float) * scale
    ax.plot(x, m, marker="o", ms=3, color=color, label=_n_label(label, len(ys)))
    if len(ys) >= 2:
        ax.fill_between(x, [st[1] * scale for st in stats], [st[2] * scale for st in stats], color=color, alpha=0.2, lw=0)


def step_curves(groups: dict, ordering: str, kind: str, path: Path) -> bool:
    """`kind` (LP or ZS) of every dataset after every step: one panel per dataset, a line per strategy."""
    mine = {lab: recs for (lab, o), recs in groups.items() if o == ordering and all(getattr(r, kind) for r in recs)}
    if not mine:
        return False
    rec0 = next(iter(mine.values()))[0]
    order, suite = rec0.ordering, rec0.suite
    datasets = [d for d in order] + [d for d in suite if d not in order]
    cols = min(len(datasets), 4)
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.6 + 3.3 * cols, 0.9 + 3.0 * rows), squeeze=False, sharey=True)
    steps = ["pre-trained"] + [f"after {d}" for d in order]
    x = list(range(len(steps)))
    labels = sorted(mine, key=natural_key)
    for k, d in enumerate(datasets):
        ax = axes[k // cols][k % cols]
        j = suite.index(d)
        for c, lab in enumerate(labels):
            _band(ax, x, [[row[j] for row in getattr(r, kind)] for r in mine[lab]], f"C{c}", lab)
        trained = d in order
        ax.set_title(f"trained: {d} (task {order.index(d) + 1})" if trained else f"held out: {d}", fontsize=9)
        if not trained:
            ax.set_facecolor("0.96")
        ax.set_xticks(x, steps, rotation=30, ha="right", fontsize=7)
        ax.set_xlabel("training step", fontsize=8)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel(f"{'linear-probe' if kind == 'LP' else 'zero-shot'} accuracy (%)", fontsize=8)
    for k in range(len(datasets), rows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][-1].legend(fontsize=7, title="strategy", title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    what = "Linear-probe" if kind == "LP" else "Zero-shot"
    fig.suptitle(f"{what} accuracy of every dataset after every step, ordering {' > '.join(order)}\n"
                 "mean over seeds; band: 95% CI across seeds (n >= 2 only), clipped to 0-100; held out: grey panels",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return True


def loss_curves(groups: dict, ordering: str, path: Path) -> bool:
    """Training loss per epoch and penalty terms per task, a line per strategy (mean over seeds)."""
    mine = {lab: recs for (lab, o), recs in groups.items() if o == ordering
            and all(any(s.loss for s in r.steps) for r in recs)}
    if not mine:
        return False
    labels = sorted(mine, key=natural_key)
    order = next(iter(mine.values()))[0].ordering
    has_pen = any(s.penalties for recs in mine.values() for r in recs for s in r.steps)
    fig, axes = plt.subplots(1, 2 if has_pen else 1, figsize=(11 if has_pen else 6.5, 3.8), squeeze=False)
    ax = axes[0][0]
    bounds = []
    for c, lab in enumerate(labels):
        curves = [[v for s in r.steps[1:] for v in (s.loss or [])] for r in mine[lab]]
        n = max(len(y) for y in curves)
        _band(ax, list(range(1, n + 1)), curves, f"C{c}", lab, clip=None, scale=1.0)
        if not bounds:
            per_task = [len(s.loss or []) for s in mine[lab][0].steps[1:]]
            bounds = list(np.cumsum(per_task))[:-1]
    for b, d in zip(bounds, order[1:]):
        ax.axvline(b + 0.5, color="0.7", lw=0.8, ls="--")
        ax.text(b + 0.6, ax.get_ylim()[1], f"task {d}", fontsize=7, va="top", color="0.4")
    ax.set_xlabel(f"epoch (over the run; tasks {' > '.join(order)})")
    ax.set_ylabel("mean training loss of the epoch\n(cross-entropy + weighted penalties)")
    ax.set_title("Training loss", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, title="strategy", title_fontsize=8)
    if has_pen:
        ax = axes[0][1]
        x = list(range(1, len(order) + 1))
        c = 0
        for k, lab in enumerate(labels):
            terms = sorted({t for r in mine[lab] for s in r.steps for t in (s.penalties or {})})
            for t in terms:
                ys = [[p.weighted_mean if (p := (s.penalties or {}).get(t)) else None for s in r.steps[1:]]
                      for r in mine[lab]]
                _band(ax, x, ys, f"C{k}", f"{lab}: {t}", clip=None, scale=1.0)
                c += 1
        ax.set_xticks(x, [f"task {i}: {d}" for i, d in zip(x, order)], rotation=20, ha="right", fontsize=8)
        ax.set_xlabel("task")
        ax.set_ylabel("penalty term x its weight,\nmean over the task's mini-batches")
        ax.set_title("Penalty terms (what the loss received)", fontsize=9)
        ax.grid(alpha=0.3)
        if c:
            ax.legend(fontsize=7)
    fig.suptitle(f"Training curves, ordering {' > '.join(order)} (mean over seeds; band: 95% CI, n >= 2 only)",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path)
    return True


def write_step_plots(experiment_dir: Path, runs: list[tuple[str, Records]], df: pd.DataFrame) -> list[Path]:
    """Every figure of this module into plots/; returns the files written."""
    from .leaderboard import labels

    if not len(df):
        return []
    df = df.assign(label=labels(df))
    groups = _groups(runs, df)  # matrices: each strategy and ordering over all its seeds
    shared = _groups(runs, C.shared_coverage(df)[0])  # comparisons: over the pairs all strategies share
    out, folder = [], Path(experiment_dir) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for (lab, o), recs in sorted(groups.items(), key=lambda kv: (kv[0][1], natural_key(kv[0][0]))):
        stem = f"{safe_name(lab)}__{safe_name(o.replace('>', '-'), 100)}"
        jobs.append((folder / f"matrix_R__{stem}.png", mean_matrix, (recs, "R", lab)))
        jobs.append((folder / f"matrix_ZS__{stem}.png", mean_matrix, (recs, "ZS", lab)))
    for o in sorted({o for _, o in groups}):
        name = safe_name(o.replace(">", "-"), 100)
        jobs.append((folder / f"steps_LP__{name}.png", step_curves, (shared, o, "LP")))
        jobs.append((folder / f"steps_ZS__{name}.png", step_curves, (shared, o, "ZS")))
        jobs.append((folder / f"loss__{name}.png", loss_curves, (shared, o)))
    for path, fn, args in jobs:
        with optional_output(lambda e: f"plot {path.name} not written ({type(e).__name__}: {e})"):
            if fn(*args, path) is not False:
                out.append(path)
    return out


CAPTIONS = [  # file prefix -> caption; the rest of the name (label__ordering) says which
    ("matrix_R__", "Accuracy matrix R, mean over seeds"),
    ("matrix_ZS__", "Zero-shot accuracy matrix, mean over seeds"),
    ("steps_LP__", "Linear-probe accuracy of every dataset after every step"),
    ("steps_ZS__", "Zero-shot accuracy of every dataset after every step"),
    ("loss__", "Training loss and penalty terms"),
]


def is_step_plot(name: str) -> bool:
    return any(name.startswith(prefix) for prefix, _ in CAPTIONS)


def steps_section(plots: list[Path] | None) -> list[str]:
    """report.md's "Matrices and trajectories" section: this module's figures with their captions."""
    names = sorted((Path(p).name for p in plots or [] if is_step_plot(Path(p).name)), key=natural_key)
    if not names:
        return []
    lines = ["## Matrices and trajectories", "",
             "Seed means per strategy and ordering (95% intervals, clipped to 0-100, only where n >= 2); the "
             "strategies compared over the orderings and seeds they share.", ""]
    for prefix, caption in CAPTIONS:
        for n in [n for n in names if n.startswith(prefix)]:
            what = n[len(prefix):-4].replace("__", ", ")
            lines += [f"**{caption}: {what}**", "", f"![{caption}: {what}](plots/{n})", ""]
    return lines
