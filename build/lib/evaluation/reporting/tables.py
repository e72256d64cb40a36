"""Paper tables from record files, in Markdown and LaTeX (booktabs): `python -m evaluation.reporting.tables <experiment dir>`.

- Single-task fine-tuning (Mukhoti et al.'s layout): for every dataset a model was fine-tuned on
  first, the downstream accuracy on it and the concept forgetting (dLP, dZS) on every other dataset
  of the suite, one column block per strategy. Values come from step 1 of every run (a single-task
  run, or the first task of a sequence: both are the same fine-tuning), one value per seed.
- Continual: one table per sequence (ordering of two or more tasks), one row per strategy.

Values are in points (x100), mean ± 95% CI half-width over seeds when there are several, "(n=1)"
and no interval for a single seed, and an accuracy's interval clipped to [0, 100] (shown as
[low, high]) where the t-interval would leave it; higher is better everywhere. An entry is bold
only when its interval clears the runner-up's; overlapping intervals, or n < 2, are tied and
none is bold (each table's note counts both). An empty cell is
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

    def _groups(self) -> list[list[tuple[int, int]]]:
        """The cells compared with each other: a column, or a row's same-named sub-columns."""
        names = self.columns()
        if self.best == "column":
            return [[(i, j) for i in range(len(self.rows))] for j in range(len(names))]
        return [[(i, j) for j, n in enumerate(names) if n == name] for i in range(len(self.rows))
                for name in dict.fromkeys(names)]

    def verdicts(self) -> tuple[np.ndarray, int, int]:
        """(bold cells, comparisons with a clear best, comparisons without one).

        A cell is bold only when it has the highest mean of its group, both it and the runner-up
        have two or more seeds (a 95% CI), and its interval clears the runner-up's (lower bound above
        the other's upper bound). Otherwise the group is `tied` (or undecided at n < 2): no bold."""
        out = np.zeros((len(self.rows), len(self.columns())), dtype=bool)
        clear = tied = 0
        for cells in self._groups():
            vals = [(self.rows[i][1][j][0], self.rows[i][1][j][1], (i, j)) for i, j in cells]
            vals = sorted([v for v in vals if not math.isnan(v[0])], key=lambda v: -v[0])
            if len(vals) < 2:  # nothing to compare with
                continue
            (m1, c1, at), (m2, c2, _) = vals[0], vals[1]
            if not (math.isnan(c1) or math.isnan(c2)) and m1 - c1 > m2 + c2:
                out[at] = True
                clear += 1
            else:
                tied += 1
        return out, clear, tied

    def bold(self) -> np.ndarray:
        return self.verdicts()[0]

    def note(self) -> str:
        _, clear, tied = self.verdicts()
        where = "column" if self.best == "column" else "row, among the strategies' same-named columns"
        return (f"Bold: the best entry of its {where}, only where its 95% CI clears the runner-up's "
                f"({clear} such); {tied} comparison(s) tied (overlapping intervals, or n < 2) and left plain. "
                "(n=1): one seed, no interval.")


ACCURACIES = {"Acc", "ACC", "Transfer", "Avg", "Last"}


def _cell(mean: float, ci: float, col: str) -> str:
    """'75.0 ± 2.1'; '90.0 (n=1)' for one seed; an accuracy whose interval would leave [0, 100]
    as its clipped interval, '85.0 [21.5, 100.0]'; '' for undefined."""
    from .leaderboard import fmt_ci

    if math.isnan(mean):
        return ""
    if math.isnan(ci):
        return fmt_ci(mean, ci, signed=col in SIGNED) + " (n=1)"
    if col in ACCURACIES and (mean - ci < 0 or mean + ci > 1):
        return f"{mean * 100:.1f} [{max(0.0, mean - ci) * 100:.1f}, {min(1.0, mean + ci) * 100:.1f}]"
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
    return "\n".join(lines + ["", t.note()]) + "\n"


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
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip{\footnotesize " + tex_escape(t.note()) + "}",
              r"\end{table}"]
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
            details.append(Table(f"Concept forgetting on the other datasets after fine-tuning on {ft} "
                                 "(step 1 of the runs; points)",
                                 "evaluated on", [(lab, det_sub) for lab in strategies], det_rows, best="row"))
    overview = Table("Single-task fine-tuning (step 1 of the runs: the first task of each sequence, or a single-task "
                     "run): accuracy on the fine-tuned task and mean concept forgetting on the "
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
    md, tex = [], ["% Paper tables (booktabs). Regenerate: python -m evaluation.reporting.tables <experiment dir>", ""]
    if single:
        md.append("### Single-task fine-tuning (step 1 of the runs)\n")
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

    ap = argparse.ArgumentParser(prog="python -m evaluation.reporting.tables",
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
