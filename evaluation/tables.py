"""Paper tables from record files, in Markdown and LaTeX (booktabs): `python -m evaluation.tables <experiment dir>`.

- Single-task fine-tuning (Mukhoti et al.'s layout): for every dataset a model was fine-tuned on
  first, the downstream accuracy on it and the concept forgetting (dLP, dZS) on every other dataset
  of the suite, one column block per strategy. Values come from step 1 of every run (a single-task
  run, or the first task of a sequence: both are the same fine-tuning), one value per seed.
- Continual: one table per sequence (ordering of two or more tasks), one row per strategy.

Values are in points (x100), mean ± 95% CI half-width over seeds when there are several; higher
is better everywhere, and the best entry is bold (every entry tied with it too). An empty cell is
a metric undefined for that run (no text tower: no dZS).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as M
from benchmark.files import atomic_write_text

SIGNED = {"dLP", "dZS", "BWT", "FWT", "dLP others", "dZS others", "dLP held-out", "dZS held-out"}
CONTINUAL_COLS = [("ACC", "ACC"), ("BWT", "BWT"), ("FWT", "FWT"), ("Transfer", "Transfer"), ("Avg", "Avg"),
                  ("Last", "Last"), ("dLP_heldout", "dLP held-out"), ("dZS_heldout", "dZS held-out")]
TEX = {"dLP": r"$\Delta_{\mathrm{LP}}$", "dZS": r"$\Delta_{\mathrm{ZS}}$",
       "dLP others": r"$\Delta_{\mathrm{LP}}$ others", "dZS others": r"$\Delta_{\mathrm{ZS}}$ others",
       "dLP held-out": r"$\Delta_{\mathrm{LP}}$ held-out", "dZS held-out": r"$\Delta_{\mathrm{ZS}}$ held-out"}


@dataclass
class Table:
    """A table of mean/CI cells: rows x (blocks of sub-columns)."""

    title: str
    stub: str  # header of the row-label column
    blocks: list[tuple[str, list[str]]]  # (block name, or "" for none; its sub-column names)
    rows: list[tuple[str, list[tuple[float, float]]]]  # (row label, one (mean, ci) per column)
    best: str = "column"  # "column": best within each column; "row": best within a row among same-named sub-columns

    def columns(self) -> list[str]:
        return [c for _, cols in self.blocks for c in cols]

    def bold(self) -> np.ndarray:
        """Which cells are best (ties included), compared on the value as displayed (0.1 points)."""
        vals = np.array([[round(m * 1000) if not math.isnan(m) else np.nan for m, _ in cells] for _, cells in self.rows],
                        dtype=float).reshape(len(self.rows), len(self.columns()))
        out = np.zeros_like(vals, dtype=bool)
        names = self.columns()
        if self.best == "column":
            groups = [(slice(None), [j]) for j in range(len(names))]
        else:
            groups = [(i, [j for j, n in enumerate(names) if n == name]) for i in range(len(self.rows))
                      for name in dict.fromkeys(names)]
        for i, js in groups:
            sub = vals[i, js] if isinstance(i, int) else vals[:, js[0]]
            if np.sum(~np.isnan(sub)) < 2:  # nothing to compare with
                continue
            best = np.nanmax(sub)
            if isinstance(i, int):
                out[i, js] = sub == best
            else:
                out[:, js[0]] = sub == best
        return out


def _cell(mean: float, ci: float, col: str) -> str:
    from .leaderboard import fmt_ci

    return fmt_ci(mean, ci, signed=col in SIGNED)


def to_markdown(t: Table) -> str:
    head = [t.stub] + [f"{b}: {c}" if b else c for b, cols in t.blocks for c in cols]
    lines = [f"**{t.title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    bold, names = t.bold(), t.columns()
    for i, (label, cells) in enumerate(t.rows):
        out = []
        for j, (m, ci) in enumerate(cells):
            s = _cell(m, ci, names[j])
            out.append(f"**{s}**" if s and bold[i, j] else s)
        lines.append("| " + " | ".join([label, *out]) + " |")
    return "\n".join(lines) + "\n"


def tex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", ">": r"$>$"}
    return "".join(rep.get(ch, ch) for ch in str(s))


def to_latex(t: Table) -> str:
    names = t.columns()
    spec = "l" + "".join(" " + "c" * len(cols) for _, cols in t.blocks)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{tex_escape(t.title)}}}", rf"\begin{{tabular}}{{{spec}}}",
             r"\toprule"]
    if any(b for b, _ in t.blocks):
        heads, rules, col = [""], [], 2
        for b, cols in t.blocks:
            heads.append(rf"\multicolumn{{{len(cols)}}}{{c}}{{{tex_escape(b)}}}")
            rules.append(rf"\cmidrule(lr){{{col}-{col + len(cols) - 1}}}")
            col += len(cols)
        lines += [" & ".join(heads) + r" \\", " ".join(rules)]
    lines.append(" & ".join([tex_escape(t.stub)] + [TEX.get(c, tex_escape(c)) for c in names]) + r" \\")
    lines.append(r"\midrule")
    bold = t.bold()
    for i, (label, cells) in enumerate(t.rows):
        out = []
        for j, (m, ci) in enumerate(cells):
            s = _cell(m, ci, names[j]).replace(" ± ", r" $\pm$ ")
            out.append(rf"\textbf{{{s}}}" if s and bold[i, j] else s)
        lines.append(" & ".join([tex_escape(label), *out]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- building the tables from runs

def first_step(runs: list[tuple[str, dict]]) -> pd.DataFrame:
    """One row per (fine-tuning dataset, strategy + params, seed) with step 1's accuracy and deltas.

    Runs that share the first task, strategy and seed did the same first fine-tuning; the first of
    them (by run id) stands for all, so that a seed is counted once."""
    from .leaderboard import labels, params_of, params_text

    rows = []
    for rid, rec in sorted(runs, key=lambda r: r[0]):
        suite, ZS = rec["suite"], rec.get("ZS")
        dlp = M.deltas(rec["LP"])[1]
        dzs = M.deltas(ZS)[1] if ZS else [math.nan] * len(suite)
        row = {"ft": rec["ordering"][0], "strategy": rec["config"]["strategy"]["name"],
               "params": params_text(params_of(rec)), "seed": rec["config"]["seed"], "run_id": rid,
               "acc": float(rec["R"][1][0])}
        row.update({f"dLP|{d}": float(v) for d, v in zip(suite, dlp)})
        row.update({f"dZS|{d}": float(v) for d, v in zip(suite, dzs)})
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).drop_duplicates(["ft", "strategy", "params", "seed"], keep="first")
    return df.assign(label=labels(df)).reset_index(drop=True)


def _mci(values) -> tuple[float, float]:
    return M.mean_ci95([float(v) for v in values])


def single_task_tables(runs: list[tuple[str, dict]]) -> list[Table]:
    df = first_step(runs)
    if not len(df):
        return []
    suite = list(dict.fromkeys(d for _, rec in runs for d in rec["suite"]))
    strategies = list(dict.fromkeys(sorted(df["label"])))
    has_zs = any(rec.get("ZS") for _, rec in runs)
    sub = ["Acc", "dLP others"] + (["dZS others"] if has_zs else [])
    overview_rows = []
    details = []
    for ft in sorted(df["ft"].unique()):
        others = [d for d in suite if d != ft]
        cells = []
        for lab in strategies:
            g = df[(df["ft"] == ft) & (df["label"] == lab)]
            cells.append(_mci(g["acc"]))
            cells.append(_mci(g[[f"dLP|{d}" for d in others]].mean(axis=1)) if others and len(g) else (math.nan, math.nan))
            if has_zs:
                cells.append(_mci(g[[f"dZS|{d}" for d in others]].mean(axis=1)) if others and len(g) else (math.nan, math.nan))
        overview_rows.append((ft, cells))
        det_sub = ["dLP"] + (["dZS"] if has_zs else [])
        det_rows = []
        for d in others + (["mean"] if len(others) > 1 else []):
            cells = []
            for lab in strategies:
                g = df[(df["ft"] == ft) & (df["label"] == lab)]
                for kind in det_sub:
                    cols = [f"{kind}|{e}" for e in (others if d == "mean" else [d])]
                    cells.append(_mci(g[cols].mean(axis=1)) if len(g) else (math.nan, math.nan))
            det_rows.append((d, cells))
        if det_rows:
            details.append(Table(f"Concept forgetting on the other datasets after fine-tuning on {ft} (points)",
                                 "evaluated on", [(lab, det_sub) for lab in strategies], det_rows, best="row"))
    overview = Table("Single-task fine-tuning: accuracy on the fine-tuned task and mean concept forgetting on the "
                     "other datasets (points)", "fine-tuned on", [(lab, sub) for lab in strategies], overview_rows,
                     best="row")
    return [overview, *details]


def continual_tables(df: pd.DataFrame) -> list[Table]:
    """One table per ordering of two or more tasks: strategies x (ACC, BWT, FWT, MTIL, held-out deltas)."""
    from .leaderboard import labels

    if not len(df):
        return []
    df = df.assign(label=labels(df))
    out = []
    for ordering, g in df.groupby("ordering", sort=True):
        if ">" not in ordering:
            continue
        cols = [(c, name) for c, name in CONTINUAL_COLS if g[c].notna().any()]
        rows = [(lab, [_mci(h[c].dropna()) for c, _ in cols]) for lab, h in g.groupby("label", sort=True)]
        seeds = sorted(g["seed"].unique())
        out.append(Table(f"Continual fine-tuning on {ordering} (points; seeds {', '.join(map(str, seeds))}; "
                         "Transfer/Avg/Last: ZSCL's MTIL metrics, zero-shot)", "strategy",
                         [("", [name for _, name in cols])], rows, best="column"))
    return out


def all_tables(runs: list[tuple[str, dict]], df: pd.DataFrame | None = None) -> tuple[list[Table], list[Table]]:
    from .leaderboard import leaderboard_from

    df = leaderboard_from(runs) if df is None else df
    return single_task_tables(runs), continual_tables(df)


def render(runs: list[tuple[str, dict]], df: pd.DataFrame | None = None) -> tuple[str, str]:
    """(Markdown, LaTeX) of every paper table."""
    single, continual = all_tables(runs, df)
    md, tex = [], ["% Paper tables (booktabs). Regenerate: python -m evaluation.tables <experiment dir>", ""]
    if single:
        md.append("### Single-task fine-tuning\n")
        md += [to_markdown(t) for t in single]
        tex += [to_latex(t) for t in single]
    if continual:
        md.append("### Continual sequences\n")
        md += [to_markdown(t) for t in continual]
        tex += [to_latex(t) for t in continual]
    if not md:
        md.append("no finished runs\n")
    return "\n".join(md), "\n".join(tex)


def write_tables(experiment_dir: Path, runs: list[tuple[str, dict]] | None = None) -> tuple[Path, Path]:
    from .leaderboard import load_runs

    experiment_dir = Path(experiment_dir)
    runs = load_runs(experiment_dir) if runs is None else runs
    md, tex = render(runs)
    atomic_write_text(experiment_dir / "tables.md", md)
    atomic_write_text(experiment_dir / "tables.tex", tex)
    return experiment_dir / "tables.md", experiment_dir / "tables.tex"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m evaluation.tables",
                                 description="Write tables.md and tables.tex (booktabs) of an experiment from its records.")
    ap.add_argument("experiment_dir", type=Path, help="e.g. results/micro (the folder that holds runs/)")
    args = ap.parse_args(argv)
    if not (args.experiment_dir / "runs").is_dir():
        print(f"error: {args.experiment_dir} has no runs/ folder; pass an experiment folder such as results/micro",
              file=sys.stderr)
        return 2
    md, tex = write_tables(args.experiment_dir)
    print(f"wrote {md} and {tex}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
