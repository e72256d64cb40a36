"""Record files -> leaderboard CSVs and plots. Reads only `runs/*/records.json`; never trains.

Tables and plots can be rebuilt at any time, and runs of a new strategy merge into an existing
leaderboard simply by landing in the same `runs/` folder.
"""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as M
from .records import atomic_write_text, finished_runs, load_records

ID_COLS = ["strategy", "params", "ordering", "seed", "run_id"]
MAIN_COLS = ["ACC", "BWT", "FWT", "Transfer", "Avg", "Last", "dLP_heldout", "dLP_all", "dZS_heldout", "dZS_all"]


def run_row(rec: dict) -> dict:
    """One leaderboard row: the run's identity, the headline metrics, per-dataset deltas."""
    cfg = rec["config"]
    ordering, suite = rec["ordering"], rec["suite"]
    held_out = [d for d in suite if d not in ordering]
    R = np.asarray(rec["R"], dtype=float)
    dlp = M.deltas(rec["LP"])[-1]
    params = {k: v for k, v in cfg["strategy"].items() if k != "name"}
    row = {
        "strategy": cfg["strategy"]["name"],
        "params": json.dumps(params, sort_keys=True) if params else "",
        "ordering": ">".join(ordering),
        "seed": cfg["seed"],
        "run_id": rec["run_id"],
        "ACC": M.acc(R), "BWT": M.bwt(R), "FWT": M.fwt(R), **M.mtil(R),
        "dLP_heldout": M.mean_over(dlp, suite, held_out),
        "dLP_all": M.mean_over(dlp, suite, suite),
        "dZS_heldout": math.nan, "dZS_all": math.nan,
    }
    if rec.get("ZS"):
        dzs = M.deltas(rec["ZS"])[-1]
        row["dZS_heldout"] = M.mean_over(dzs, suite, held_out)
        row["dZS_all"] = M.mean_over(dzs, suite, suite)
        row.update({f"dZS_{d}": v for d, v in zip(suite, dzs)})
    row.update({f"dLP_{d}": v for d, v in zip(suite, dlp)})
    row.update({f"LP0_{d}": v for d, v in zip(suite, rec["LP"][0])})
    return row


def leaderboard(experiment_dir: Path) -> pd.DataFrame:
    rows = []
    for p in finished_runs(experiment_dir):
        try:
            rows.append(run_row(load_records(p)))
        except (ValueError, KeyError, IndexError, TypeError) as e:  # a hand-edited or foreign file
            print(f"warning: skipping {p}: its records cannot be read ({type(e).__name__}: {e})", file=sys.stderr)
    if not rows:
        return pd.DataFrame(columns=ID_COLS + MAIN_COLS)
    df = pd.DataFrame(rows)
    first = ID_COLS + MAIN_COLS
    rest = sorted(c for c in df.columns if c not in first)
    return df[first + rest].sort_values(["ordering", "strategy", "params", "seed"], kind="stable").reset_index(drop=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI half-width across seeds, per strategy (with params) x ordering."""
    out = []
    for (strategy, params, ordering), g in df.groupby(["strategy", "params", "ordering"], sort=True):
        row = {"strategy": strategy, "params": params, "ordering": ordering, "seeds": len(g)}
        for c in MAIN_COLS:
            mean, ci = M.mean_ci95(g[c].tolist())
            row[c], row[f"{c}_ci95"] = mean, ci
        out.append(row)
    return pd.DataFrame(out)


def markdown(summary_df: pd.DataFrame, cols=("ACC", "BWT", "FWT", "dLP_heldout", "dLP_all", "dZS_all")) -> str:
    """The summary as a Markdown table, in points (x100), mean +- 95% CI half-width where seeds allow."""
    head = ["strategy", "params", "ordering", "seeds", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summary_df.iterrows():
        cells = [str(r["strategy"]), f"`{r['params']}`" if r["params"] else "", str(r["ordering"]), str(r["seeds"])]
        for c in cols:
            mean, ci = r[c] * 100, r[f"{c}_ci95"] * 100
            cells.append("n/a" if math.isnan(mean) else f"{mean:.1f}" + ("" if math.isnan(ci) else f" ± {ci:.1f}"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False, float_format="%.4f")
    return buf.getvalue()


def collect(experiment_dir: Path, plots: bool = True) -> pd.DataFrame:
    """Write leaderboard.csv, summary.csv and plots/ for one experiment folder; return the leaderboard."""
    experiment_dir = Path(experiment_dir)
    df = leaderboard(experiment_dir)
    atomic_write_text(experiment_dir / "leaderboard.csv", _csv(df))
    summ = summary(df) if len(df) else None
    atomic_write_text(experiment_dir / "summary.csv", _csv(summ if summ is not None else df))
    if summ is not None:
        atomic_write_text(experiment_dir / "summary.md", markdown(summ))
    if plots and len(df):
        from .plots import write_plots

        write_plots(experiment_dir, df)
    return df
