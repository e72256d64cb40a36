"""The three figures that say whether a preset shows the effect the suite measures (issue 9).

Pure functions of record dicts (as `records.json` holds them: `R`, `LP`, `ZS`, `suite`, `ordering`,
`config`), so anyone can recompute them from the record files:

- task gain: mean over tasks t of R[t, t] - R[t-1, t] (1-based rows, as in DESIGN.md), what training
  on a task adds to the head it started from;
- concept forgetting: dLP_heldout = mean over held-out datasets of LP[T, d] - LP[0, d], and the same
  for ZS over the held-out datasets whose pre-trained zero-shot accuracy is above chance;
- protection: LDIFS's dLP_heldout minus FT's, and its task gain minus FT's, paired by ordering and seed.

Each figure is first averaged over the orderings of a seed, then given a mean and a 95% t-interval
over seeds: seeds are the independent repetitions.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

from .metrics import mean_ci95


def task_gain(R) -> float:
    """Mean over tasks of R[t, t] - R[t-1, t] (rows 1-based, columns 0-based as stored: column t-1)."""
    R = np.asarray(R, dtype=float)
    T = R.shape[1]
    if R.shape[0] != T + 1 or T < 1:
        raise ValueError(f"R must have shape [T+1, T] with T >= 1, got {R.shape}")
    return float(np.mean([R[t, t - 1] - R[t - 1, t - 1] for t in range(1, T + 1)]))


def heldout(rec: Mapping) -> list[str]:
    """The suite's datasets that the run's ordering never trains on."""
    return [d for d in rec["suite"] if d not in set(rec["ordering"])]


def final_delta(M, suite: Sequence[str], keep: Iterable[str]) -> float:
    """Mean over the datasets in `keep` of M[T, d] - M[0, d] (NaN when none is kept)."""
    M = np.asarray(M, dtype=float)
    keep = set(keep)
    sel = [i for i, d in enumerate(suite) if d in keep]
    return float(np.mean(M[-1, sel] - M[0, sel])) if sel else math.nan


def run_figures(rec: Mapping, chance: Mapping[str, float] | None = None) -> dict[str, float]:
    """gain, dLP_heldout and dZS_heldout of one run.

    chance: dataset -> chance accuracy (1 / classes); dZS then counts only held-out datasets whose
    pre-trained zero-shot accuracy lies above it (below chance a drop says nothing). Without it, all.
    """
    suite, out = list(rec["suite"]), heldout(rec)
    figs = {"gain": task_gain(rec["R"]), "dLP_heldout": final_delta(rec["LP"], suite, out), "dZS_heldout": math.nan}
    if rec.get("ZS"):
        zs0 = dict(zip(suite, np.asarray(rec["ZS"], dtype=float)[0]))
        keep = [d for d in out if chance is None or zs0[d] > chance[d]]
        figs["dZS_heldout"] = final_delta(rec["ZS"], suite, keep)
    return figs


def _strategy(rec: Mapping) -> str:
    s = rec["config"]["strategy"]
    return s["name"] if isinstance(s, Mapping) else str(s)


def per_seed(records: Iterable[Mapping], chance: Mapping[str, float] | None = None) -> dict[str, dict[int, dict]]:
    """strategy -> seed -> figures averaged over that seed's orderings (runs of one strategy name)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for rec in records:
        acc[_strategy(rec)][int(rec["config"]["seed"])].append(run_figures(rec, chance))
    return {s: {seed: {k: float(np.nanmean([f[k] for f in figs])) if any(not math.isnan(f[k]) for f in figs)
                       else math.nan for k in figs[0]}
                for seed, figs in seeds.items()}
            for s, seeds in acc.items()}


def evidence(records: Iterable[Mapping], chance: Mapping[str, float] | None = None, base: str = "ft",
             protector: str = "ldifs", min_gain: float = 0.05, max_gain_gap: float = 0.02) -> dict:
    """The issue's three criteria, each as (mean, 95% half-width) over seeds, and whether each holds.

    - `gain`: base's task gain; holds when its mean is at least `min_gain` and its interval excludes 0;
    - `dLP_heldout`, `dZS_heldout`: base's forgetting; holds when the interval lies below 0;
    - `protection`: protector's dLP_heldout minus base's, paired by seed; holds when it lies above 0
      and the protector's task gain (`gain_gap`, paired) is within `max_gain_gap` of base's.
    A criterion with fewer than two seeds never holds (no interval).
    """
    seeds = per_seed(records, chance)
    if base not in seeds:
        raise ValueError(f"no runs of {base!r} among the records (strategies: {', '.join(sorted(seeds)) or 'none'})")
    b = seeds[base]
    out: dict = {"seeds": sorted(b)}

    def ci(xs):
        m, h = mean_ci95(xs)
        return {"mean": m, "ci95": h, "lo": m - h, "hi": m + h, "n": int(sum(not math.isnan(x) for x in xs))}

    out["gain"] = ci([b[s]["gain"] for s in sorted(b)])
    out["dLP_heldout"] = ci([b[s]["dLP_heldout"] for s in sorted(b)])
    out["dZS_heldout"] = ci([b[s]["dZS_heldout"] for s in sorted(b)])
    g, f = out["gain"], out["dLP_heldout"]
    z = out["dZS_heldout"]
    out["holds"] = {
        "gain": bool(g["mean"] >= min_gain and g["lo"] > 0),
        "forgetting": bool(f["hi"] < 0 and (z["n"] == 0 or z["hi"] < 0)),
    }
    if protector in seeds:
        p = seeds[protector]
        common = sorted(set(p) & set(b))
        out[f"{protector}_gain"] = ci([p[s]["gain"] for s in common])
        out[f"{protector}_dLP_heldout"] = ci([p[s]["dLP_heldout"] for s in common])
        out["protection"] = ci([p[s]["dLP_heldout"] - b[s]["dLP_heldout"] for s in common])
        out["gain_gap"] = ci([p[s]["gain"] - b[s]["gain"] for s in common])
        pr, gap = out["protection"], out["gain_gap"]
        out["holds"]["protection"] = bool(pr["lo"] > 0 and abs(gap["mean"]) <= max_gain_gap)
    return out


def format_evidence(ev: Mapping, protector: str = "ldifs") -> str:
    """One line per figure, in points (x100), with 95% intervals."""
    def pts(name, label):
        c = ev.get(name)
        if c is None:
            return None
        return f"{label:<28} {100 * c['mean']:+6.1f} ± {100 * c['ci95']:4.1f}   [{100 * c['lo']:+.1f}, {100 * c['hi']:+.1f}]"
    lines = [f"seeds: {ev['seeds']}"]
    for name, label in (("gain", "ft task gain"), ("dLP_heldout", "ft dLP held-out"),
                        ("dZS_heldout", "ft dZS held-out"), (f"{protector}_gain", f"{protector} task gain"),
                        (f"{protector}_dLP_heldout", f"{protector} dLP held-out"),
                        ("protection", f"{protector} - ft dLP held-out"), ("gain_gap", f"{protector} - ft task gain")):
        line = pts(name, label)
        if line:
            lines.append(line)
    lines.append("criteria: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in ev["holds"].items()))
    return "\n".join(lines)
