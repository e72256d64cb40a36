"""Feature drift from record files (no torch): where forgetting happens.

- `drift_by_layer_<strategy>.png`: per strategy, the LDIFS distance and linear CKA from the pre-trained
  encoder by layer (x: the taps, stem to last block, then the output embedding), one line per step
  (after task 1, 2, ...), means over seeds, orderings and datasets; datasets trained so far and
  held-out datasets in separate panels.
- `drift_vs_dlp.png`: over all runs, held-out dLP against held-out drift at the last tap (and at the
  embedding), with Pearson's r and its 95% interval (Fisher z).

`drift_section` writes report.md's "Feature drift" section: the figures, per-strategy held-out drift
with 95% t-intervals over seeds, each strategy minus `ft` paired by (ordering, seed) per layer, and the
correlation with a sentence on whether it is beyond noise. Runs without a `drift` key are left out.
Definitions: docs/design.md ("Feature drift").
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import metrics as M  # noqa: E402
from ..storage.records import Records  # noqa: E402
from .noise import MIN_CORRELATION_POINTS, fmt_diff, natural_key, seeds_needed  # noqa: E402
from .optional import optional_output  # noqa: E402
from .plots import _save, safe_name  # noqa: E402
from benchmark.text import markdown as md  # noqa: E402

EMBEDDING = "embedding"  # evaluation/scoring/drift.py's name for the encoder's output


class DriftRecords(Records):
    """A run's records with the settings that vary among the collected runs of its strategy (`with_drift`
    sets them): what its label names."""

    varying: frozenset[str] = frozenset()


def strategy_label(rec: Records) -> str:
    """'ldifs', or 'ldifs:lam=10' where the runs collected differ in it: only the varying hyperparameters
    (`with_drift` sets them), as the leaderboard labels strategies; ' (ZS-init)' where runs of the strategy
    differ in their head init."""
    s = rec.config_strategy
    varying = rec.varying if isinstance(rec, DriftRecords) else frozenset()
    params = ",".join(f"{k}={s[k]}" for k in sorted(s) if k != "name" and k in varying)
    init = rec.head_init if "head_init" in varying else None
    return s["name"] + (f":{params}" if params else "") + (f" ({init.upper()}-init)" if init else "")


def with_drift(runs: list[tuple[str, Records]]) -> list[tuple[str, DriftRecords]]:
    """The runs that recorded drift, each a shallow copy that knows which of its strategy's
    hyperparameters vary across them (for its label)."""
    runs = [(rid, rec) for rid, rec in runs if rec.drift is not None and rec.drift.get("ldifs")]
    out = []
    for rid, rec in runs:
        s = rec.config_strategy
        peers = [r.config_strategy for _, r in runs if r.strategy_name == s["name"]]
        varying = {k for k in s if k != "name" and len({repr(p.get(k)) for p in peers}) > 1}
        inits = {r.head_init for _, r in runs if r.strategy_name == s["name"]}
        if len(inits) > 1:  # ft under LP and ZS init (the paper presets): two methods, never pooled
            varying.add("head_init")
        out.append((rid, DriftRecords.model_construct(**dict(rec), varying=frozenset(varying))))  # checked already
    return out


def groups(rec: Records, step: int) -> dict[str, list[int]]:
    """Suite indices of the datasets trained by `step` and of the held-out ones (never trained)."""
    suite, ordering = rec.suite, rec.ordering
    return {"trained": [suite.index(n) for n in ordering[:step]],
            "held-out": [i for i, n in enumerate(suite) if n not in ordering]}


def group_drift(rec: Records, step: int, group: str, kind: str = "ldifs") -> np.ndarray:
    """[L]: the mean over the group's datasets of drift[kind][step][d][:] (NaN where the group is empty)."""
    m = np.asarray([[np.nan if v is None else v for v in row] for row in rec.drift[kind][step]], dtype=float)
    idx = groups(rec, step)[group]
    return mean_defined(m[idx]) if idx else np.full(m.shape[1], np.nan)


def mean_defined(m: np.ndarray) -> np.ndarray:
    """The column means of `m` over its defined (non-NaN) values; NaN for a column with none. A tap can be
    undefined on every dataset (a prompt-tuned ViT's token count changes the tap's shape; CKA of constant
    features): numpy's nanmean gives the same NaN, with a warning that would reach the user."""
    defined = ~np.isnan(m)
    n = defined.sum(axis=0)
    total = np.where(defined, m, 0.0).sum(axis=0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def heldout_dlp(rec: Records) -> float:
    idx = groups(rec, 0)["held-out"]
    lp = np.asarray(rec.LP, dtype=float)
    return float(np.mean(lp[-1, idx] - lp[0, idx])) if idx else math.nan


def last_tap(rec: Records) -> int:
    """Index of the last feature tap (the one before the output embedding)."""
    taps = rec.drift["taps"]
    return len(taps) - 2 if taps[-1] == EMBEDDING and len(taps) > 1 else len(taps) - 1


def pearson_ci(x, y, level: float = 0.95) -> tuple[float, float, float, int]:
    """Pearson's r, its interval by Fisher's z (tanh(atanh r +- z_{.975} / sqrt(n - 3))) and n.
    NaN r and interval below 4 pairs (MIN_CORRELATION_POINTS: two points always give r = +-1, three
    have no interval), NaN r when either variable is constant."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    if n < MIN_CORRELATION_POINTS or x.std() == 0 or y.std() == 0:
        return math.nan, math.nan, math.nan, n
    r = float(np.corrcoef(x, y)[0, 1])
    from scipy.stats import norm

    z, half = math.atanh(min(max(r, -0.999999), 0.999999)), norm.ppf(0.5 + level / 2) / math.sqrt(n - 3)
    return r, math.tanh(z - half), math.tanh(z + half), n


def drift_by_layer(runs: list[tuple[str, Records]], label: str, path: Path) -> bool:
    mine = [rec for _, rec in runs if strategy_label(rec) == label]
    if not mine:
        return False
    taps = mine[0].drift["taps"]
    T = max(len(r.ordering) for r in mine)
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True)
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(T, 1)))
    for row, kind in enumerate(("ldifs", "cka")):
        for col, group in enumerate(("trained", "held-out")):
            ax = axes[row, col]
            for step in range(1, T + 1):
                vals = [group_drift(r, step, group, kind) for r in mine if len(r.ordering) >= step
                        and r.drift["taps"] == taps]
                if not vals:
                    continue
                mean = mean_defined(np.vstack(vals))  # all NaN for a group with no dataset (no held-out set)
                if np.all(np.isnan(mean)):
                    continue
                ax.plot(range(len(taps)), mean, marker="o", color=colors[step - 1], label=f"after task {step}")
            ax.set_title(f"{group} datasets: {'LDIFS distance' if kind == 'ldifs' else 'linear CKA'}", fontsize=10)
            if kind == "ldifs":
                ax.set_yscale("symlog", linthresh=1e-6)
            ax.grid(alpha=0.3)
            if row == 1:
                ax.set_xticks(range(len(taps)), taps, rotation=40, ha="right", fontsize=8)
                ax.set_xlabel("layer (feature tap, stem to output embedding)", fontsize=8)
    axes[0, 0].set_ylabel("distance from pre-trained")
    axes[1, 0].set_ylabel("CKA with pre-trained (1 = same)")
    for ax in axes[:, 1]:
        ax.set_ylabel(ax.get_ylabel() or ("distance from pre-trained" if ax is axes[0, 1] else "CKA with pre-trained"))
    if axes[0, 1].get_legend_handles_labels()[0]:
        axes[0, 1].legend(fontsize=8, title="step", title_fontsize=8)
    orders = sorted({" > ".join(r.ordering) for r in mine})
    n = len({(tuple(r.ordering), r.seed) for r in mine})
    fig.suptitle(f"Feature drift by layer: {label} (mean over {n} run(s); orderings {'; '.join(orders)})", fontsize=10)
    _save(fig, path)
    return True


def drift_vs_dlp(runs: list[tuple[str, Records]], path: Path) -> bool:
    if len(runs) < 2:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    labels = sorted({strategy_label(rec) for _, rec in runs}, key=natural_key)
    for ax, where in zip(axes, ("last tap", EMBEDDING)):
        xs, ys = [], []
        for k, lab in enumerate(labels):
            pts = [(_heldout_at(rec, where), heldout_dlp(rec) * 100) for _, rec in runs if strategy_label(rec) == lab]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=lab, color=plt.cm.tab10(k % 10))
            xs += [p[0] for p in pts]
            ys += [p[1] for p in pts]
        r, lo, hi, n = pearson_ci(xs, ys)
        ax.set_title(f"at the {where}: r = {r:+.2f} [{lo:+.2f}, {hi:+.2f}] (n = {n})" if not math.isnan(lo) else
                     f"at the {where}: no r (n = {n}; a correlation needs {MIN_CORRELATION_POINTS} points)", fontsize=10)
        ax.set_xlabel("held-out LDIFS distance from pre-trained, after the last task")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out dLP (points)")
    axes[0].legend(fontsize=8, title="strategy", title_fontsize=8)
    orders = sorted({" > ".join(rec.ordering) for _, rec in runs})
    fig.suptitle(f"Held-out dLP against held-out drift, one point per run (orderings {'; '.join(orders)})", fontsize=10)
    _save(fig, path)
    return True


def _heldout_at(rec: Records, where: str) -> float:
    T = len(rec.ordering)
    j = last_tap(rec) if where == "last tap" else len(rec.drift["taps"]) - 1
    return float(group_drift(rec, T, "held-out")[j])


def write_drift_plots(experiment_dir: Path, runs: list[tuple[str, Records]]) -> list[Path]:
    """The drift plots into plots/ (each optional: a failure is one warning line)."""
    runs = with_drift(runs)
    out, folder = [], Path(experiment_dir) / "plots"
    if not runs:
        return out
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [(folder / f"drift_by_layer_{safe_name(lab)}.png", drift_by_layer, (runs, lab))
            for lab in sorted({strategy_label(r) for _, r in runs}, key=natural_key)]
    jobs.append((folder / "drift_vs_dlp.png", drift_vs_dlp, (runs,)))
    for path, fn, args in jobs:
        with optional_output(lambda e: f"plot {path.name} failed: {type(e).__name__}: {e}"):
            if fn(*args, path):
                out.append(path)
    return out


def _fmt(v: float, ci: float, scale: float = 1.0, digits: int = 4) -> str:
    if v is None or math.isnan(v):
        return ""
    return f"{v * scale:.{digits}g}" + ("" if math.isnan(ci) else f" ± {ci * scale:.{digits}g}")


def drift_section(experiment_dir: Path, runs: list[tuple[str, Records]], plots: list[Path] | None = None) -> list[str]:
    """report.md's "Feature drift" section (empty when no run recorded drift)."""
    runs = with_drift(runs)
    if not runs:
        return []
    taps = runs[0][1].drift["taps"]
    lines = ["## Feature drift", "",
             f"Distance of each layer's features from the pre-trained encoder's on {runs[0][1].drift['sample']} "
             "fixed test images per dataset (docs/design.md, \"Feature drift\"): the LDIFS distance (x 1e3 here) "
             "after the last task, mean over the held-out datasets, mean ± 95% t-interval over runs.", ""]
    labels = sorted({strategy_label(r) for _, r in runs}, key=natural_key)
    per = {lab: {(tuple(r.ordering), r.seed): r for _, r in runs if strategy_label(r) == lab
                 and r.drift["taps"] == taps} for lab in labels}
    lines += ["| strategy | n | " + " | ".join(md(t) for t in taps) + " |", "|---|---|" + "---|" * len(taps)]
    for lab in labels:
        vals = np.vstack([group_drift(r, len(r.ordering), "held-out") for r in per[lab].values()]) \
            if per[lab] else np.empty((0, len(taps)))
        cells = [_fmt(*M.mean_ci95(vals[:, j].tolist()), scale=1e3, digits=3) for j in range(len(taps))]
        lines.append(f"| {md(lab)} | {len(per[lab])} | " + " | ".join(cells) + " |")
    lines.append("")
    base = next((lab for lab in labels if lab == "ft"), None)
    if base is not None and len(labels) > 1:
        lines += ["Each strategy minus `ft`, paired by (ordering, seed), same units; **bold**: the interval "
                  "excludes 0 (beyond seed noise). Below the table, for the layers where the difference is within "
                  "noise, the seeds (pairs) a paired t-test would need for 80% power at the observed mean and "
                  "spread (rough).", "",
                  "| strategy - ft | pairs | " + " | ".join(md(t) for t in taps) + " |", "|---|---|" + "---|" * len(taps)]
        notes: list[str] = []
        for lab in labels:
            if lab == base:
                continue
            keys = sorted(set(per[lab]) & set(per[base]))
            if not keys:
                continue
            diff = np.vstack([group_drift(per[lab][k], len(k[0]), "held-out")
                              - group_drift(per[base][k], len(k[0]), "held-out") for k in keys])
            cells = []
            for j in range(len(taps)):
                m, ci = M.mean_ci95(diff[:, j].tolist())
                beyond = not math.isnan(ci) and abs(m) > ci
                text = _fmt(m, ci, scale=1e3, digits=3)
                if beyond and text.split(" ± ")[0].lstrip("-+") == text.split(" ± ")[-1]:
                    text = fmt_diff(m, ci, scale=1e3, digits=2, signed=False)  # clears 0 by less than printed
                cells.append(f"**{text}**" if beyond else text)
                if not beyond:
                    need = seeds_needed(diff[:, j].tolist())
                    notes.append(f"{lab} at {taps[j]}: " + (f"≈{need}" if need is not None else "no estimate"))
            lines.append(f"| {md(lab)} | {len(keys)} | " + " | ".join(cells) + " |")
        lines.append("")
        if notes:
            lines += ["Within noise; seeds that would resolve it (rough): " + "; ".join(notes) + ".", ""]
    xs = [_heldout_at(r, "last tap") for _, r in runs]
    ys = [heldout_dlp(r) for _, r in runs]
    r, lo, hi, n = pearson_ci(xs, ys)
    if math.isnan(lo):
        verdict = (f"not computed: {n} run(s), and a correlation and its interval need at least "
                   f"{MIN_CORRELATION_POINTS}" if n < MIN_CORRELATION_POINTS else f"undefined over {n} runs (a constant)")
        lines += [f"Held-out dLP against held-out drift at the last tap ({taps[last_tap(runs[0][1])]}): "
                  f"Pearson's r {verdict}.", ""]
    else:
        beyond = "the interval excludes 0: beyond noise" if lo > 0 or hi < 0 else "the interval includes 0: within noise"
        lines += [f"Held-out dLP against held-out drift at the last tap ({taps[last_tap(runs[0][1])]}), over {n} runs: "
                  f"Pearson's r = {r:+.2f}, 95% interval [{lo:+.2f}, {hi:+.2f}] (Fisher z); {beyond}.", ""]
    for p in sorted(plots or [], key=lambda p: Path(p).name):
        name = Path(p).name
        if name.startswith("drift_"):
            lines += [f"![{name}](plots/{name})", ""]
    return lines
