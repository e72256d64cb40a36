"""The leaderboard as data: finished runs' records -> one row per run, tidy long records, summaries
per strategy and ordering, ordering sensitivity, and their text form (points, 95% CI half-widths).

Pure functions of the records (no files written here: evaluation.reporting.collect writes them); the tables,
plots and report build on these.

Longer than 300 lines because a row's identity (strategy, the paper's method name, settings), its metrics
(the trained head's and the reference's accuracy) and the labels that tell rows apart are defined once
here for every table, plot and summary; split, each part would need the others' names.
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pydantic import ValidationError

from benchmark.text import markdown as md, markdown_code as md_code, terminal
from strategies.catalog import method_label

from . import metrics as M
from ..storage.identity import settings_of
from ..storage.records import Records, finished_runs, load_records

ID_COLS = ["strategy", "params", "ordering", "seed", "run_id"]
# Transfer / Avg / Last are ZSCL's MTIL metrics on the zero-shot matrix (empty without a text tower);
# the *_LP variants apply the same formulas to R, whose untrained-task entries are head-init probes.
MAIN_COLS = ["ACC", "BWT", "FWT", "Transfer", "Avg", "Last", "Transfer_LP", "Avg_LP", "Last_LP",
             "dLP_heldout", "dLP_all", "dZS_heldout", "dZS_all"]
# summary.csv is sorted by this (higher is better), within each ordering.
PRIMARY_METRIC = "ACC"
ORDERING_COLS = ["ACC", "BWT", "FWT", "dLP_heldout"]


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# ---------------------------------------------------------------- reading and checking records

def check_fields(rec: Records) -> None:
    """Raise ValueError naming the first field the tables need that `rec` lacks or gets wrong.

    The schema (evaluation.storage.records.Records) guarantees the types of ordering and suite, the
    ordering within the suite, and the matrices' shapes and ranges; this adds what the collector reads
    of the config beyond it (the typed accessors strategy_name and seed rely on it)."""
    cfg, ordering, suite = rec.config, rec.ordering, rec.suite
    if not isinstance(cfg.get("strategy"), dict) or not isinstance(cfg["strategy"].get("name"), str):
        raise ValueError("config.strategy.name is missing")
    if len(set(ordering)) != len(ordering):
        raise ValueError("ordering and suite must be lists of dataset names, the ordering without repeats")
    if cfg.get("ordering") != ordering or cfg.get("suite") != suite:
        raise ValueError("ordering/suite disagree with the config, or the ordering trains outside the suite")
    if isinstance(cfg.get("seed"), bool) or not isinstance(cfg.get("seed"), int):
        raise ValueError("config.seed is not an integer")


def load_runs(experiment_dir: Path) -> list[tuple[str, Records]]:
    """(run id = folder name, records) of every finished, valid run; the others are named in one
    warning line each (by finished_runs, or here) and left out."""
    out = []
    for p in finished_runs(experiment_dir):  # names each bad run in one warning line
        try:
            rec = load_records(p)  # read again (and typed): the run may have changed since it was checked
            check_fields(rec)
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            if isinstance(e, json.JSONDecodeError):
                reason = f"not valid JSON: {e}"
            elif isinstance(e, ValidationError):  # the schema's: where, and what
                err = e.errors()[0]
                reason = f"{terminal('.'.join(str(x) for x in err['loc'])[:120])}: {err['msg']}"
            elif isinstance(e, KeyError):
                reason = f"missing field {e}"
            else:
                reason = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            warn(f"skipping run {p}: its records cannot be used ({reason.splitlines()[0] if reason else 'empty'})")
            continue
        out.append((p.name, rec))
    return out


# ---------------------------------------------------------------- per-run rows

def params_text(params: dict) -> str:
    return json.dumps(params, sort_keys=True) if params else ""


def reference_accuracy(rec: Records, step: int, dataset: str) -> float:
    """A dataset's accuracy after `step` as the reference's evaluation measures a fine-tuned model: the
    zero-shot head on its features for a ZS-init run, a linear probe refitted on them otherwise (its
    eval_functions.py computes only these two; it never scores the trained head)."""
    j = rec.suite.index(dataset)
    zs = rec.head_init == "zs" and rec.ZS
    return float((rec.ZS if zs else rec.LP)[step][j])


def method_names(runs: list[tuple[str, Records]]) -> dict[str, str]:
    """run id -> the method's name as the paper writes it ("ZS-init-CE", "LP-init-LDIFS", "FLYP";
    strategies.catalog.method_label), with the hyperparameters that vary among runs of that name and the
    other settings in which runs differ ("LP-init-LDIFS lam=30.0 [train.lr=0.01]"), as `labels` does."""
    if not runs:
        return {}
    base = pd.Series([method_label(rec.strategy_name, rec.head_init) for _, rec in runs])
    params = pd.Series([params_text(rec.params) for _, rec in runs])
    names = _labels(base, params, settings_of([rec.config for _, rec in runs], ignore=("train.head_init",)))
    return {rid: name for (rid, _), name in zip(runs, names)}


def run_row(rec: Records, rid: str) -> dict:
    """One leaderboard row: the run's identity, the headline metrics, per-dataset deltas."""
    ordering, suite = rec.ordering, rec.suite
    held_out = [d for d in suite if d not in ordering]
    R = np.asarray(rec.R, dtype=float)
    dlp = M.deltas(rec.LP)[-1]
    row = {
        "strategy": rec.strategy_name, "params": params_text(rec.params),
        "ordering": ">".join(ordering), "seed": rec.seed, "run_id": rid,
        "ACC": M.acc(R), "BWT": M.bwt(R), "FWT": M.fwt(R),
        # the reference's accuracy on each trained task after the last one (reference_accuracy), averaged
        "ACC_ref": float(np.mean([reference_accuracy(rec, len(ordering), d) for d in ordering])),
        "Transfer": math.nan, "Avg": math.nan, "Last": math.nan, **M.mtil_lp(R),
        "dLP_heldout": M.mean_over(dlp, suite, held_out), "dLP_all": M.mean_over(dlp, suite, suite),
        "dZS_heldout": math.nan, "dZS_all": math.nan,
    }
    if rec.ZS:  # only models with a text tower have zero-shot scores
        row.update(M.mtil_zs(rec.ZS, suite, ordering))
        dzs = M.deltas(rec.ZS)[-1]
        row["dZS_heldout"] = M.mean_over(dzs, suite, held_out)
        row["dZS_all"] = M.mean_over(dzs, suite, suite)
        row.update({f"dZS_{d}": v for d, v in zip(suite, dzs)})
    row.update({f"dLP_{d}": v for d, v in zip(suite, dlp)})
    row.update({f"LP0_{d}": v for d, v in zip(suite, rec.LP[0])})
    if isinstance(rec.rescored, dict):  # scored from another run's kept weights (experiment/rescore.py)
        row["rescored_from"] = rec.rescored.get("from")
    return row


def long_rows(rec: Records, rid: str) -> list[dict]:
    """Every number of one run's records, one row each, plus the deltas dLP and dZS per step."""
    ordering, suite = rec.ordering, rec.suite
    ident = {"run_id": rid, "strategy": rec.strategy_name, "params": params_text(rec.params),
             "ordering": ">".join(ordering), "seed": rec.seed,
             **{f"hp_{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in rec.params.items()}}
    mats = [("R", np.asarray(rec.R, dtype=float), ordering), ("LP", np.asarray(rec.LP, dtype=float), suite)]
    if rec.ZS:
        mats.append(("ZS", np.asarray(rec.ZS, dtype=float), suite))
    mats += [(f"d{name}", M.deltas(m), cols) for name, m, cols in mats[1:]]
    rows = []
    for step in range(len(ordering) + 1):
        after = "pretrained" if step == 0 else ordering[step - 1]
        for name, m, cols in mats:
            for j, d in enumerate(cols):
                rows.append({**ident, "step": step, "after": after, "dataset": d, "metric": name, "value": m[step, j]})
    return rows


# ---------------------------------------------------------------- tables over runs

def leaderboard_from(runs: list[tuple[str, Records]]) -> pd.DataFrame:
    """One row per run; the last column, `stale`, is True for a run trained by other code than this
    checkout's (evaluation/storage/code_version.py; False also where the run recorded no fingerprint)."""
    from ..storage.code_version import stale_runs

    stale = {rid for rid, _ in stale_runs(runs)[0]} if runs else set()
    names = method_names(runs)
    rows = [{**run_row(rec, rid), "method": names[rid], "settings": st}
            for (rid, rec), st in zip(runs, settings_of([rec.config for _, rec in runs]))]
    if not rows:
        return pd.DataFrame(columns=ID_COLS + ["method"] + MAIN_COLS + ["stale"])
    df = pd.DataFrame(rows)
    first = ID_COLS + ["method", "settings"] + MAIN_COLS
    rest = sorted(c for c in df.columns if c not in first)
    df = df[first + rest].assign(stale=[rid in stale for rid in df["run_id"]])
    return df.sort_values(["ordering", "strategy", "params", "seed"], kind="stable").reset_index(drop=True)


def leaderboard(experiment_dir: Path) -> pd.DataFrame:
    return leaderboard_from(load_runs(experiment_dir))


def records_long(runs: list[tuple[str, Records]]) -> pd.DataFrame:
    rows = [r for rid, rec in runs for r in long_rows(rec, rid)]
    ident = ["run_id", "strategy", "params", "ordering", "seed"]
    tail = ["step", "after", "dataset", "metric", "value"]
    if not rows:
        return pd.DataFrame(columns=ident + tail)
    df = pd.DataFrame(rows)
    hp = sorted(c for c in df.columns if c.startswith("hp_"))
    return df[ident + hp + tail].sort_values(["ordering", "strategy", "params", "seed", "run_id"],
                                             kind="stable").reset_index(drop=True)


def labels(df: pd.DataFrame, by: str = "strategy") -> pd.Series:
    """'ldifs', or 'ldifs lam=1.0' where runs of one strategy differ: only the varying hyperparameters.
    by="method": the paper's method names of the leaderboard's `method` column ("LP-init-LDIFS")."""
    if by == "method" and "method" in df:
        return df["method"].astype(object)
    return _labels(df["strategy"], df["params"], df["settings"] if "settings" in df else None, index=df.index)


def _labels(base: pd.Series, params_texts: pd.Series, settings=None, index=None) -> pd.Series:
    """base + the hyperparameters that vary among the runs of the same base + ' [settings]' where given."""
    base, params_texts = base.reset_index(drop=True), params_texts.reset_index(drop=True)
    params = params_texts.fillna("").map(lambda p: json.loads(p) if p else {})
    out = []
    for b, p in zip(base, params):
        peers = params[base == b]
        varying = sorted(k for k in p if len({json.dumps(q.get(k)) for q in peers}) > 1)
        out.append(b + ("" if not varying else " " + ",".join(f"{k}={p[k]}" for k in varying)))
    if settings is not None:  # runs that differ outside the strategy (train.lr, ...) are told apart too
        out = [lab + (f" [{st}]" if isinstance(st, str) and st else "") for lab, st in zip(out, list(settings))]
    return pd.Series(out, index=index if index is not None else base.index, dtype=object)


def _aggregate(g: pd.DataFrame, cols) -> dict:
    row = {"n": len(g)}
    for c in cols:
        mean, ci = M.mean_ci95(g[c].astype(float).tolist()) if c in g else (math.nan, math.nan)
        row[c], row[f"{c}_ci95"] = mean, ci
    return row


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, 95% CI half-width and n across seeds, per strategy (with params) x ordering; within each
    ordering the best PRIMARY_METRIC first."""
    if not len(df):
        return pd.DataFrame(columns=["label", "strategy", "params", "ordering", "n"])
    df = df.assign(label=labels(df))
    if "settings" not in df:
        df = df.assign(settings="")
    df = df.assign(settings=df["settings"].fillna(""))
    stale = df["stale"] if "stale" in df else pd.Series(False, index=df.index)
    out = [{"label": g["label"].iloc[0], "strategy": s, "params": p, "settings": st, "ordering": o,
            **_aggregate(g, MAIN_COLS), "stale_runs": int(stale[g.index].astype(bool).sum())}
           for (s, p, st, o), g in df.groupby(["strategy", "params", "settings", "ordering"], sort=True)]
    s = pd.DataFrame(out)
    key = s[PRIMARY_METRIC].fillna(-math.inf)
    from .noise import natural_key

    return (s.assign(_k=-key, _l=s["label"].map(natural_key)).sort_values(["ordering", "_k", "_l"], kind="stable")
            .drop(columns=["_k", "_l"]).reset_index(drop=True))


def sequences(df: pd.DataFrame) -> pd.DataFrame:
    """The runs of orderings with two or more tasks, with `label` and `tasks` (the ordering's
    datasets as a set, sorted): orderings are compared among those of the same tasks."""
    if not len(df):
        return df.assign(label=pd.Series(dtype=object), tasks=pd.Series(dtype=object))
    df = df.assign(label=labels(df))
    df = df[df["ordering"].str.contains(">", regex=False)]
    return df.assign(tasks=df["ordering"].map(lambda o: ",".join(sorted(o.split(">")))))


def ordering_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per strategy label and ordering (sequences only): ACC, BWT, FWT, dLP held-out (mean, CI, n over seeds)."""
    df = sequences(df)
    out = [{"label": lab, "tasks": t, "ordering": o, **_aggregate(g, ORDERING_COLS)}
           for (lab, t, o), g in df.groupby(["label", "tasks", "ordering"], sort=True)]
    return pd.DataFrame(out, columns=None if out else ["label", "tasks", "ordering", "n"])


def ordering_sensitivity(df: pd.DataFrame) -> pd.DataFrame:
    """Per strategy label, set of tasks ordered two or more ways, and metric: the SD across
    ordering means beside the pooled seed-to-seed SD.

    across_orderings_sd = sample SD of the per-ordering means;
    across_seeds_sd = sqrt of the mean, over orderings with two or more seeds, of the sample
    variance across seeds (NaN when no ordering has two seeds). Order matters more than noise where
    the first clearly exceeds the second."""
    cols = ["label", "tasks", "metric", "orderings", "across_orderings_sd", "across_seeds_sd"]
    rows = []
    for (lab, tasks), g in sequences(df).groupby(["label", "tasks"], sort=True):
        if g["ordering"].nunique() < 2:
            continue
        for c in ORDERING_COLS:
            per = [v.astype(float).dropna() for _, v in g.groupby("ordering")[c]]
            means = [v.mean() for v in per if len(v)]
            variances = [v.var(ddof=1) for v in per if len(v) >= 2]
            rows.append({"label": lab, "tasks": tasks, "metric": c, "orderings": len(means),
                         "across_orderings_sd": float(np.std(means, ddof=1)) if len(means) >= 2 else math.nan,
                         "across_seeds_sd": float(math.sqrt(np.mean(variances))) if variances else math.nan})
    return pd.DataFrame(rows, columns=cols)


def fmt_ci(mean: float, ci: float, scale: float = 100.0, signed: bool = False, digits: int = 1) -> str:
    """'75.0 ± 2.1' in points; '' for NaN (undefined); no ± part with a single seed."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    v = round(mean * scale, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    text = f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    return text if ci is None or math.isnan(ci) else f"{text} ± {ci * scale:.{digits}f}"


def signed(col: str) -> bool:
    """Differences (deltas, BWT, FWT) are shown with their sign."""
    return col.startswith("d") or col in ("BWT", "FWT")


def markdown(summary_df: pd.DataFrame,
             cols=("ACC", "BWT", "FWT", "Transfer", "dLP_heldout", "dLP_all", "dZS_heldout")) -> str:
    """The summary as a Markdown table, in points (x100), mean ± 95% CI half-width where seeds allow;
    an empty cell is a metric undefined for the run (e.g. BWT with one task, Transfer without ZS)."""
    head = ["strategy", "params", "ordering", "n", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    stale = 0
    for _, r in summary_df.iterrows():
        k = int(r.get("stale_runs", 0) or 0)
        stale += k
        cells = [md(r["strategy"]) + (f" (**{k} stale**)" if k else ""), md_code(r["params"]) if r["params"] else "",
                 md(r["ordering"]), str(r["n"])]
        cells += [fmt_clipped(r[c], r[f"{c}_ci95"], c) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    if stale:
        lines += ["", f"**{stale} stale run(s)**: trained by other code than this checkout's (leaderboard.csv, column "
                  "`stale`); `--retrain-stale` retrains them."]
    return "\n".join(lines) + "\n"


ACCURACY_COLS = {"ACC", "Transfer", "Avg", "Last", "Transfer_LP", "Avg_LP", "Last_LP"}


def fmt_clipped(mean: float, ci: float, col: str) -> str:
    """fmt_ci, except that an accuracy whose interval would leave [0, 100] is shown as its clipped
    interval, '85.0 [21.5, 100.0]' (the tables' rule)."""
    if (col in ACCURACY_COLS and mean is not None and not math.isnan(mean) and ci is not None
            and not math.isnan(ci) and (mean - ci < 0 or mean + ci > 1)):
        return f"{mean * 100:.1f} [{max(0.0, mean - ci) * 100:.1f}, {min(1.0, mean + ci) * 100:.1f}]"
    return fmt_ci(mean, ci, signed=signed(col))


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4f")  # NaN -> empty cell: undefined, never 0
    return buf.getvalue()
