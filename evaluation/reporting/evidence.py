"""The three figures that say whether a preset shows the effect the suite measures.

Pure functions of record dicts (as `records.json` holds them: `R`, `LP`, `ZS`, `suite`, `ordering`,
`config`), so anyone can recompute them from the record files:

- task gain: mean over tasks t of R[t, t] - R[t-1, t] (1-based rows, as in docs/design.md), what training
  on a task adds to the head it started from;
- concept forgetting: dLP_heldout = mean over held-out datasets of LP[T, d] - LP[0, d], and the same
  for ZS over the held-out datasets whose pre-trained zero-shot accuracy is above chance;
- protection: the protector's dLP_heldout minus the base's, and its task gain minus the base's,
  paired by seed.

Runs are grouped by strategy *and* hyperparameters (the strategy's `params` as the leaderboard shows
them), never by strategy name alone: `ldifs:lam=10` and `ldifs:lam=100` are two groups, so a grid is
never pooled into one line. A group is named like a strategy spec with the hyperparameters that vary
between the groups of its strategy (`ldifs:lam=100.0`; plain `ldifs` when only one setting ran), and
is selected by a spec that names some of its hyperparameters (`ldifs`, `ldifs:lam=100`); a selector
that matches several groups is an error naming them.

Each figure is first averaged over the orderings of a seed, then given a mean and a 95% t-interval
over seeds: seeds are the independent repetitions.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .metrics import mean_ci95
from ..storage.records import Records

FIGURES = ("gain", "dLP_heldout", "dZS_heldout")


def task_gain(R) -> float:
    """Mean over tasks of R[t, t] - R[t-1, t] (rows 1-based, columns 0-based as stored: column t-1)."""
    R = np.asarray(R, dtype=float)
    T = R.shape[1]
    if R.shape[0] != T + 1 or T < 1:
        raise ValueError(f"R must have shape [T+1, T] with T >= 1, got {R.shape}")
    return float(np.mean([R[t, t - 1] - R[t - 1, t - 1] for t in range(1, T + 1)]))


def heldout(rec: Records) -> list[str]:
    """The suite's datasets that the run's ordering never trains on."""
    return [d for d in rec.suite if d not in set(rec.ordering)]


def final_delta(M, suite: Sequence[str], keep: Iterable[str]) -> float:
    """Mean over the datasets in `keep` of M[T, d] - M[0, d] (NaN when none is kept)."""
    M = np.asarray(M, dtype=float)
    keep = set(keep)
    sel = [i for i, d in enumerate(suite) if d in keep]
    return float(np.mean(M[-1, sel] - M[0, sel])) if sel else math.nan


def run_figures(rec: Records, chance: Mapping[str, float] | None = None) -> dict[str, float]:
    """gain, dLP_heldout and dZS_heldout of one run, and per held-out dataset d its `dLP[d]` (and
    `dZS[d]` for those dZS_heldout counts), so that a reader can recompute the means.

    chance: dataset -> chance accuracy (1 / classes); dZS then counts only held-out datasets whose
    pre-trained zero-shot accuracy lies above it (below chance a drop says nothing). Without it, all.
    """
    suite, out = list(rec.suite), heldout(rec)
    figs = {"gain": task_gain(rec.R), "dLP_heldout": final_delta(rec.LP, suite, out), "dZS_heldout": math.nan}
    figs.update({f"dLP[{d}]": final_delta(rec.LP, suite, [d]) for d in out})
    if rec.ZS:
        zs0 = dict(zip(suite, np.asarray(rec.ZS, dtype=float)[0]))
        keep = [d for d in out if chance is None or zs0[d] > chance[d]]
        figs["dZS_heldout"] = final_delta(rec.ZS, suite, keep)
        figs.update({f"dZS[{d}]": final_delta(rec.ZS, suite, [d]) for d in keep})
    return figs


# ---------------------------------------------------------------- groups: strategy x hyperparameters

def group_key(rec: Records) -> tuple[str, str]:
    """(strategy, params) with params as the leaderboard writes them (JSON, keys sorted; '' for none)."""
    p = rec.params  # every hyperparameter the config holds, defaults included
    return rec.strategy_name, json.dumps(p, sort_keys=True) if p else ""


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def group_labels(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Each group's name: the strategy, then `:k=v,...` with the hyperparameters that differ between
    the groups of that strategy (as collect.labels does for the leaderboard), in spec syntax."""
    keys = sorted(set(keys))
    params = {k: json.loads(k[1]) if k[1] else {} for k in keys}
    out = {}
    for key in keys:
        peers = [params[k] for k in keys if k[0] == key[0]]
        p = params[key]
        varying = sorted(n for n in {n for q in peers for n in q}
                         if len({json.dumps(q.get(n), sort_keys=True) for q in peers}) > 1)
        out[key] = key[0] + (":" + ",".join(f"{n}={_value_text(p.get(n))}" for n in varying) if varying else "")
    return out


def _parse_selector(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, rest = spec.partition(":")
    if not rest.strip():
        return name.strip(), {}
    from strategies.spec import parse_spec  # the config's own spec syntax (values read as YAML)

    return parse_spec(spec)


def _same(want: Any, have: Any) -> bool:
    if want == have:
        return True
    try:  # YAML reads 1e-3 as a string; a config holds it as a float
        return not isinstance(want, bool) and not isinstance(have, bool) and float(want) == float(have)
    except (TypeError, ValueError):
        return False


def select(spec: str, keys: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The one group that `spec` ("ldifs", "ldifs:lam=100") names: same strategy, and every
    hyperparameter it gives equal to the group's. ValueError (one line) when none or several match."""
    keys = sorted(set(keys))
    labels = group_labels(keys)
    name, want = _parse_selector(spec)
    hits = [k for k in keys if k[0] == name
            and all(n in (json.loads(k[1]) if k[1] else {}) and _same(v, json.loads(k[1])[n]) for n, v in want.items())]
    if not hits:
        raise ValueError(f"no runs of {spec!r} among the records (groups: {', '.join(labels.values()) or 'none'})")
    if len(hits) > 1:
        raise ValueError(f"{spec!r} matches {len(hits)} groups ({', '.join(labels[k] for k in hits)}); "
                         "name one by its hyperparameters, e.g. " + repr(labels[hits[-1]]))
    return hits[0]


def _average(figs: list[dict]) -> dict[str, float]:
    keys = list(dict.fromkeys(k for f in figs for k in f))
    out = {}
    for k in keys:
        xs = [f[k] for f in figs if k in f and not math.isnan(f[k])]
        out[k] = float(np.mean(xs)) if xs else math.nan
    out["n_orderings"] = len(figs)
    return out


def per_group(records: Iterable[Records], chance: Mapping[str, float] | None = None
              ) -> dict[tuple[str, str], dict[int, dict]]:
    """(strategy, params) -> seed -> figures averaged over that seed's orderings (and `n_orderings`)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for rec in records:
        acc[group_key(rec)][int(rec.seed)].append(run_figures(rec, chance))
    return {g: {seed: _average(figs) for seed, figs in sorted(seeds.items())} for g, seeds in acc.items()}


def per_seed(records: Iterable[Records], chance: Mapping[str, float] | None = None) -> dict[str, dict[int, dict]]:
    """group name (see group_labels: `ft`, `ldifs`, or `ldifs:lam=100.0` within a grid) -> seed ->
    figures averaged over that seed's orderings."""
    groups = per_group(records, chance)
    labels = group_labels(groups)
    return {labels[g]: seeds for g, seeds in sorted(groups.items())}


def _ci(xs) -> dict:
    m, h = mean_ci95(xs)
    return {"mean": m, "ci95": h, "lo": m - h, "hi": m + h, "n": int(sum(not math.isnan(x) for x in xs))}


def evidence(records: Iterable[Records], chance: Mapping[str, float] | None = None, base: str = "ft",
             protector: str | None = "ldifs", min_gain: float = 0.05, max_gain_gap: float = 0.02) -> dict:
    """The issue's three criteria, each as (mean, 95% half-width) over seeds, and whether each holds.

    `base` and `protector` select one group each (see `select`): "ft", "ldifs", "ldifs:lam=100".
    - `gain`: base's task gain; holds when its mean is at least `min_gain` and its interval excludes 0;
    - `dLP_heldout`, `dZS_heldout`: base's forgetting; holds when the interval lies below 0;
    - `protection`: protector's dLP_heldout minus base's, paired by seed; holds when it lies above 0
      and the protector's task gain (`gain_gap`, paired) is within `max_gain_gap` of base's.
    The protector's own figures are `protector_gain`, `protector_dLP_heldout`, `protector_dZS_heldout`
    (also under `<protector spec>_gain` etc., the old names). A protector that matches no group is left
    out (no protection criterion); one that matches several is an error, as is a base that matches
    none. `base` and `protector` in the result are the groups' names. A criterion with fewer than two
    seeds never holds (no interval).
    """
    groups = per_group(records, chance)
    bkey = select(base, groups)
    pkey = None
    if protector is not None:
        try:
            pkey = select(protector, groups)
        except ValueError as e:
            if not str(e).startswith("no runs of"):
                raise
    if pkey == bkey:
        raise ValueError(f"base {base!r} and protector {protector!r} name the same group")
    out = _evidence(groups, bkey, pkey, min_gain, max_gain_gap)
    if pkey is not None:
        for k in ("gain", "dLP_heldout"):  # the names of the single-protector days: ldifs_gain, ...
            out.setdefault(f"{protector}_{k}", out[f"protector_{k}"])
    return out


def _evidence(groups: dict, bkey: tuple[str, str], pkey: tuple[str, str] | None, min_gain: float,
              max_gain_gap: float) -> dict:
    labels = group_labels(groups)
    b = groups[bkey]
    out: dict = {"seeds": sorted(b), "base": labels[bkey], "base_params": bkey[1]}
    for k in FIGURES:
        out[k] = _ci([b[s][k] for s in sorted(b)])
    g, f, z = out["gain"], out["dLP_heldout"], out["dZS_heldout"]
    out["holds"] = {
        "gain": bool(g["mean"] >= min_gain and g["lo"] > 0),
        "forgetting": bool(f["hi"] < 0 and (z["n"] == 0 or z["hi"] < 0)),
    }
    if pkey is None:
        return out
    p = groups[pkey]
    common = sorted(set(p) & set(b))
    out.update(protector=labels[pkey], protector_params=pkey[1], paired_seeds=common)
    for k in FIGURES:
        out[f"protector_{k}"] = _ci([p[s][k] for s in common])
    out["protection"] = _ci([p[s]["dLP_heldout"] - b[s]["dLP_heldout"] for s in common])
    out["gain_gap"] = _ci([p[s]["gain"] - b[s]["gain"] for s in common])
    pr, gap = out["protection"], out["gain_gap"]
    out["holds"]["protection"] = bool(pr["lo"] > 0 and abs(gap["mean"]) <= max_gain_gap)
    return out


def evidence_all(records: Iterable[Records], chance: Mapping[str, float] | None = None, base: str = "ft",
                 min_gain: float = 0.05, max_gain_gap: float = 0.02) -> list[dict]:
    """evidence() of every group other than the base against the base, paired by seed, in group order."""
    groups = per_group(records, chance)
    bkey = select(base, groups)
    return [_evidence(groups, bkey, k, min_gain, max_gain_gap) for k in sorted(groups) if k != bkey]


def format_evidence(ev: Mapping, protector: str | None = None) -> str:
    """One line per figure, in points (x100), with 95% intervals."""
    base, prot = ev.get("base", "ft"), protector or ev.get("protector", "ldifs")

    rows = (("gain", f"{base} task gain"), ("dLP_heldout", f"{base} dLP held-out"),
            ("dZS_heldout", f"{base} dZS held-out"), ("protector_gain", f"{prot} task gain"),
            ("protector_dLP_heldout", f"{prot} dLP held-out"),
            ("protection", f"{prot} - {base} dLP held-out"), ("gain_gap", f"{prot} - {base} task gain"))
    rows = [(ev[name], label) for name, label in rows if ev.get(name) is not None]
    width = max([28, *(len(label) for _, label in rows)])
    lines = [f"seeds: {ev['seeds']}"]
    for c, label in rows:
        lines.append(f"{label:<{width}} {100 * c['mean']:+6.1f} ± {100 * c['ci95']:4.1f}   "
                     f"[{100 * c['lo']:+.1f}, {100 * c['hi']:+.1f}]")
    lines.append("criteria: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in ev["holds"].items()))
    return "\n".join(lines)


def format_per_seed(records: Iterable[Records], chance: Mapping[str, float] | None = None) -> str:
    """Every group's figures seed by seed, in points with two decimals (averaged over the seed's
    orderings, `n` of them): the numbers the means and intervals above are computed from."""
    seeds = per_seed(records, chance)
    extra = sorted({k for g in seeds.values() for f in g.values() for k in f if "[" in k},
                   key=lambda k: (k.split("[")[1], k))
    cols = ["gain", "dLP_heldout", "dZS_heldout", *extra]
    width = max([len("group"), *map(len, seeds)])
    lines = [f"{'group':<{width}}  seed  n  " + "  ".join(f"{c:>12}" for c in cols)]
    for label, by_seed in seeds.items():
        for seed, f in by_seed.items():
            cells = "  ".join(f"{'':>12}" if math.isnan(f.get(c, math.nan)) else f"{100 * f[c]:>+12.2f}" for c in cols)
            lines.append(f"{label:<{width}}  {seed:>4}  {f['n_orderings']}  {cells}")
    return "\n".join(lines)
