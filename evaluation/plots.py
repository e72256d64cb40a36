"""PNG plots from record files: the accuracy matrix of every run, and concept forgetting per dataset."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .records import finished_runs, load_records  # noqa: E402


def _save(fig, path: Path) -> None:
    """Atomic PNG write: render to a temporary file beside the target, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def accuracy_matrix(rec: dict, path: Path) -> None:
    R = np.asarray(rec["R"], dtype=float) * 100
    ordering = rec["ordering"]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(ordering), 1.0 + 0.6 * len(R)))
    im = ax.imshow(R, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    for i in range(R.shape[0]):
        for j in range(R.shape[1]):
            ax.text(j, i, f"{R[i, j]:.1f}", ha="center", va="center", color="w" if R[i, j] < 60 else "k", fontsize=9)
    ax.set_xticks(range(len(ordering)), ordering, rotation=30, ha="right")
    ax.set_yticks(range(len(R)), ["pre-trained"] + [f"after {d}" for d in ordering])
    ax.set_xlabel("task (test set, own head)")
    s = rec["config"]["strategy"]
    ax.set_title(f"{s['name']}  seed {rec['config']['seed']}  [{rec['run_id']}]", fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    _save(fig, path)


def forgetting_bars(df: pd.DataFrame, prefix: str, path: Path, title: str) -> None:
    """Grouped bars: the final-step delta per dataset, one bar per strategy (mean over orderings, seeds)."""
    cols = [c for c in df.columns if c.startswith(prefix) and c not in (f"{prefix}heldout", f"{prefix}all")]
    if not cols:
        return
    means = df.assign(_label=run_labels(df)).groupby("_label")[cols].mean() * 100
    datasets = [c[len(prefix):] for c in cols]
    n = len(means)
    width = 0.8 / max(1, n)
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(datasets), 3.6))
    x = np.arange(len(datasets))
    for k, (name, row) in enumerate(means.iterrows()):
        ax.bar(x + (k - (n - 1) / 2) * width, row.values, width, label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, datasets, rotation=30, ha="right")
    ax.set_ylabel("change after the last task (points)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, path)


def run_labels(df: pd.DataFrame) -> pd.Series:
    """'ldifs', or 'ldifs lam=1.0' where runs of one strategy differ: only the varying hyperparameters."""
    params = df["params"].fillna("").map(lambda p: json.loads(p) if p else {})
    labels = []
    for strategy, p in zip(df["strategy"], params):
        peers = params[df["strategy"] == strategy]
        varying = sorted(k for k in p if len({json.dumps(q.get(k)) for q in peers}) > 1)
        labels.append(strategy + ("" if not varying else " " + ",".join(f"{k}={p[k]}" for k in varying)))
    return pd.Series(labels, index=df.index)


def write_plots(experiment_dir: Path, df: pd.DataFrame) -> list[Path]:
    out = Path(experiment_dir) / "plots"
    written = []
    for run_dir in finished_runs(experiment_dir, quiet=True):  # the leaderboard has named the bad ones
        rec = load_records(run_dir)
        p = out / f"accuracy_matrix_{rec['config']['strategy']['name']}_{rec['run_id']}.png"
        accuracy_matrix(rec, p)
        written.append(p)
    for prefix, name, title in (("dLP_", "dLP_per_dataset.png", "Concept forgetting, linear probe (dLP)"),
                                ("dZS_", "dZS_per_dataset.png", "Concept forgetting, zero-shot (dZS)")):
        p = out / name
        forgetting_bars(df, prefix, p, title)
        if p.exists():
            written.append(p)
    return written
