"""Rules for comparing strategies honestly, shared by the plots (pure functions of the leaderboard).

- Coverage: strategies are compared only over the (ordering, seed) pairs they all have; a
  strategy that shares none with the others, and the runs outside the shared pairs, are listed
  as excluded rather than pooled in (pooling ft over 2 orderings x 2 seeds beside a strategy with
  one run compares orderings, not strategies).
- Intervals: a 95% t-interval over seeds only for n >= 2 (NaN bounds below); an accuracy's
  interval clipped to [0, 1].
- Pareto front under uncertainty: a point is dominated only when another's interval clears it on
  both axes; a point without an interval (n < 2) is never called dominated or dominating.
"""
from __future__ import annotations

import math

import pandas as pd

from . import metrics as M


def shared_coverage(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(the runs of `df`, which has a `label` column, restricted to the strategies compared and the
    (ordering, seed) pairs they all share; one line per exclusion).

    Strategies are taken widest coverage first (then by name) and each one kept while the pairs
    shared so far stay non-empty."""
    if not len(df):
        return df, []
    cover = {lab: set(zip(g["ordering"], g["seed"])) for lab, g in df.groupby("label", sort=True)}
    order = sorted(cover, key=lambda lab: (-len(cover[lab]), lab))
    kept, common, excluded = [order[0]], set(cover[order[0]]), []
    for lab in order[1:]:
        if common & cover[lab]:
            kept.append(lab)
            common &= cover[lab]
        else:
            excluded.append(f"{lab}: no ordering and seed shared with {', '.join(kept)}")
    for lab in kept:
        out = sorted(cover[lab] - common)
        if out:
            excluded.append(f"{lab}: {len(out)} run(s) outside the shared orderings and seeds "
                            f"({'; '.join(f'{o} seed {s}' for o, s in out)})")
    keep = df["label"].isin(kept) & pd.Series([p in common for p in zip(df["ordering"], df["seed"])], index=df.index)
    return df[keep], excluded


def per_seed(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """Mean of `col` per (label, seed) over the label's orderings: the unit that seeds vary."""
    return df.groupby(["label", "seed"])[col].mean().reset_index()


def interval(values, clip: tuple[float, float] | None = None) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of a 95% t-interval; low and high NaN for n < 2; clipped to `clip`."""
    xs = [float(v) for v in values if not math.isnan(float(v))]
    mean, ci = M.mean_ci95(xs)
    if math.isnan(ci):
        return mean, math.nan, math.nan, len(xs)
    lo, hi = mean - ci, mean + ci
    if clip:
        lo, hi = max(clip[0], lo), min(clip[1], hi)
    return mean, lo, hi, len(xs)


def error_bars(stats: list[tuple[float, float, float, int]], scale: float = 100.0) -> list[list[float]]:
    """matplotlib's asymmetric yerr ([below], [above]) from intervals; 0 where there is none (n < 2),
    so that no bar is drawn there (the caller draws no cap either)."""
    below = [0.0 if math.isnan(lo) else (m - lo) * scale for m, lo, _, _ in stats]
    above = [0.0 if math.isnan(hi) else (hi - m) * scale for m, _, hi, _ in stats]
    return [below, above]


def pareto_front_uncertain(points: list[tuple[tuple[float, float, float], tuple[float, float, float]]]) -> list[int]:
    """Indices of points ((x, x_low, x_high), (y, y_low, y_high)), both to be maximised, that no other
    point dominates beyond the intervals: j dominates i when j's lower bounds are at least i's upper
    bounds on both axes (strictly on one). Sorted by x."""
    def known(p):
        return not any(math.isnan(v) for axis in p for v in axis)

    idx = []
    for i, p in enumerate(points):
        dominated = known(p) and any(
            known(q) and q[0][1] >= p[0][2] and q[1][1] >= p[1][2] and (q[0][1] > p[0][2] or q[1][1] > p[1][2])
            for j, q in enumerate(points) if j != i)
        if not dominated:
            idx.append(i)
    return sorted(idx, key=lambda i: points[i][0][0])


def held_out_status(orderings, datasets) -> dict[str, str]:
    """Per dataset: '' when trained in every ordering, 'held-out' when in none, 'held-out in k/m'."""
    orderings = [o.split(">") for o in orderings]
    out = {}
    for d in datasets:
        k = sum(d not in o for o in orderings)
        out[d] = "" if k == 0 else "held-out" if k == len(orderings) else f"held-out in {k}/{len(orderings)}"
    return out
