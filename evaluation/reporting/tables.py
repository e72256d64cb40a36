"""Paper tables from record files, in Markdown and LaTeX (booktabs): `python -m evaluation.reporting.tables <experiment dir>`.

- Single-task fine-tuning (Mukhoti et al.'s layout): one table per dataset a model was fine-tuned on
  first, one row per method (the paper's names: ZS-init-CE, LP-init-LDIFS, ...), with the accuracy on
  that dataset as the reference measures it (`Acc (ref)`: a linear probe refitted on the fine-tuned
  features, or the zero-shot head for a ZS-init method), the trained head's accuracy beside it
  (`Acc (head)`), and the concept forgetting (dLP, dZS) averaged over every other dataset of the suite;
  then, per fine-tuning dataset, the forgetting on each other dataset. Values come from step 1 of every
  run (a single-task run, or the first task of a sequence: both are the same fine-tuning), one value
  per seed. docs/design.md ("The paper's tables, column by column") defines every column.
- Continual: one table per sequence (ordering of two or more tasks), one row per method.

Values are in points (x100), mean ± 95% CI half-width over seeds when there are several, "(n=1)"
and no interval for a single seed, and an accuracy's interval clipped to [0, 100] (shown as
[low, high]) where the t-interval would leave it; higher is better everywhere. An entry is bold
only when its interval clears the runner-up's; overlapping intervals, or n < 2, are tied and
none is bold (each table's note counts both). An empty cell is
a metric undefined for that run (no text tower: no dZS).

Longer than 300 lines because the tables' cells, their Markdown and LaTeX forms and the rules that
bold an entry are one format; split, each half would need the other's names.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import metrics as M
from ..storage.records import Records
from benchmark.files import atomic_write_text
from benchmark.text import markdown, terminal

SIGNED = {"dLP", "dZS", "BWT", "FWT", "dLP others", "dZS others", "dLP held-out", "dZS held-out"}
CONTINUAL_COLS = [("ACC_ref", "ACC (ref)"), ("ACC", "ACC (head)"), ("BWT", "BWT"), ("FWT", "FWT"),
                  ("Transfer", "Transfer"), ("Avg", "Avg"), ("Last", "Last"), ("dLP_heldout", "dLP held-out"),
                  ("dZS_heldout", "dZS held-out")]
SINGLE_COLS = ["Acc (ref)", "Acc (head)", "dLP others", "dZS others"]
SHORT_REF_NOTE = ("Acc (ref): the reference's measure (a linear probe refitted on the fine-tuned features; the "
                  "zero-shot head for a ZS-init method); Acc (head): the trained task head's accuracy.")
REF_NOTE = ("Acc (ref): the accuracy on the fine-tuned dataset as the reference's evaluation measures it: a linear "
            "probe refitted on the fine-tuned features (its lp_acc) for {lp}; the zero-shot head on them (its "
            "zs_acc) for {zs}. Acc (head): the accuracy of the task head trained with the encoder, which the "
            "reference never scores.")
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
    caption: str = ""  # what the columns are, printed under the title

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
        where = "column" if self.best == "column" else "row, among the methods' same-named columns"
        return (f"Bold: the best entry of its {where}, only where its 95% CI clears the runner-up's "
                f"({clear} such); {tied} comparison(s) tied (overlapping intervals, or n < 2) and left plain. "
                "(n=1): one seed, no interval.")


ACCURACIES = {"Acc", "ACC", "Transfer", "Avg", "Last", "Acc (ref)", "Acc (head)", "ACC (ref)", "ACC (head)"}


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
    lines = [f"**{markdown(t.title)}**", "", *([markdown(t.caption), ""] if t.caption else []),
             "| " + " | ".join(markdown(h) for h in head) + " |", "|" + "---|" * len(head)]
    bold, names = t.bold(), t.columns()
    for i, (label, cells) in enumerate(t.rows):
        out = []
        for j, (m, ci) in enumerate(cells):
            s = _cell(m, ci, names[j])
            out.append(f"**{s}**" if s and bold[i, j] else s)
        lines.append("| " + " | ".join([markdown(label), *out]) + " |")
    return "\n".join(lines + ["", t.note()]) + "\n"


def tex_escape(s: str) -> str:
    rep = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
           "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", ">": r"$>$"}
    return "".join(rep.get(ch, ch) for ch in terminal(s))  # control characters written out, never sent


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
    note = (t.caption + " " if t.caption else "") + t.note()
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip{\footnotesize " + tex_escape(note) + "}",
              r"\end{table}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- building the tables from runs

def first_step(runs: list[tuple[str, Records]]) -> pd.DataFrame:
    """One row per (fine-tuning dataset, method, seed) with step 1's accuracies and deltas: `acc` the trained
    head's, `acc_ref` the reference's (leaderboard.reference_accuracy) and `ref` which that is (LP or ZS).

    Runs that share the first task, method and seed did the same first fine-tuning; the first of
    them (by run id) stands for all, so that a seed is counted once."""
    from .leaderboard import method_names, params_text, reference_accuracy

    names = method_names(runs)
    rows = []
    for rid, rec in sorted(runs, key=lambda r: r[0]):
        suite, ZS, ft = rec.suite, rec.ZS, rec.ordering[0]
        dlp = M.deltas(rec.LP)[1]
        dzs = M.deltas(ZS)[1] if ZS else [math.nan] * len(suite)
        row = {"ft": ft, "strategy": rec.strategy_name, "label": names[rid],
               "params": params_text(rec.params), "seed": rec.seed, "run_id": rid,
               "acc": float(rec.R[1][0]), "acc_ref": reference_accuracy(rec, 1, ft),
               "ref": "ZS" if rec.head_init == "zs" and ZS else "LP"}
        row.update({f"dLP|{d}": float(v) for d, v in zip(suite, dlp)})
        row.update({f"dZS|{d}": float(v) for d, v in zip(suite, dzs)})
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows).drop_duplicates(["ft", "label", "seed"], keep="first").reset_index(drop=True)


def _mci(values) -> tuple[float, float]:
    return M.mean_ci95([float(v) for v in values])


def _others(g: pd.DataFrame, kind: str, others: list[str]) -> tuple[float, float]:
    """Mean and CI over seeds of each seed's `kind` (dLP, dZS) averaged over the datasets `others`."""
    return _mci(g[[f"{kind}|{d}" for d in others]].mean(axis=1)) if others and len(g) else (math.nan, math.nan)


def ref_note(df: pd.DataFrame, escape=str) -> str:
    """REF_NOTE with the methods measured each way (their labels through `escape`: record text is data)."""
    by = {k: sorted(escape(x) for x in df.loc[df["ref"] == k, "label"].unique()) for k in ("LP", "ZS")}
    return REF_NOTE.format(lp=", ".join(by["LP"]) or "none here", zs=", ".join(by["ZS"]) or "none here")


def single_task_tables(runs: list[tuple[str, Records]]) -> list[Table]:
    df = first_step(runs)
    if not len(df):
        return []
    suite = list(dict.fromkeys(d for _, rec in runs for d in rec.suite))
    methods = list(dict.fromkeys(sorted(df["label"])))
    has_zs = any(rec.ZS for _, rec in runs)
    cols = SINGLE_COLS if has_zs else SINGLE_COLS[:3]
    main, details = [], []
    for ft in sorted(df["ft"].unique()):
        others = [d for d in suite if d != ft]
        rows = []
        for lab in methods:
            g = df[(df["ft"] == ft) & (df["label"] == lab)]
            if len(g):
                cells = [_mci(g["acc_ref"]), _mci(g["acc"]), _others(g, "dLP", others)]
                rows.append((lab, cells + ([_others(g, "dZS", others)] if has_zs else [])))
        main.append(Table(f"Fine-tuned on {ft}: accuracy on {ft} and concept forgetting averaged over the "
                          f"{len(others)} other dataset(s) (step 1 of the runs; points)", "method", [("", cols)],
                          rows, best="column", caption=SHORT_REF_NOTE))
        det_sub = ["dLP"] + (["dZS"] if has_zs else [])
        det_rows = []
        for d in others + (["mean"] if len(others) > 1 else []):
            cells = []
            for lab in methods:
                g = df[(df["ft"] == ft) & (df["label"] == lab)]
                cells += [_others(g, kind, others if d == "mean" else [d]) for kind in det_sub]
            det_rows.append((d, cells))
        if det_rows:
            details.append(Table(f"Concept forgetting on the other datasets after fine-tuning on {ft} "
                                 "(step 1 of the runs; points)",
                                 "evaluated on", [(lab, det_sub) for lab in methods], det_rows, best="row"))
    return [*main, *details]


def continual_tables(df: pd.DataFrame) -> list[Table]:
    """One table per ordering of two or more tasks: methods x (ACC (ref), ACC (head), BWT, FWT, MTIL, held-out deltas)."""
    from .leaderboard import labels

    if not len(df):
        return []
    df = df.assign(label=labels(df, by="method"))
    out = []
    for ordering, g in df.groupby("ordering", sort=True):
        if ">" not in ordering:
            continue
        cols = [(c, name) for c, name in CONTINUAL_COLS if c in g and g[c].notna().any()]
        rows = [(lab, [_mci(h[c].dropna()) for c, _ in cols]) for lab, h in g.groupby("label", sort=True)]
        seeds = sorted(g["seed"].unique())
        out.append(Table(f"Continual fine-tuning on {ordering} (points; seeds {', '.join(map(str, seeds))}; "
                         "Transfer/Avg/Last: ZSCL's MTIL metrics, zero-shot)", "method",
                         [("", [name for _, name in cols])], rows, best="column",
                         caption="ACC (ref): the mean over the sequence's tasks, after the last, of each task's "
                                 "accuracy as the reference measures it (a linear probe refitted on the features; "
                                 "the zero-shot head for a ZS-init method). ACC (head), BWT, FWT: the trained task "
                                 "heads' accuracy matrix R."))
    return out


def all_tables(runs: list[tuple[str, Records]], df: pd.DataFrame | None = None) -> tuple[list[Table], list[Table]]:
    from .leaderboard import leaderboard_from

    df = leaderboard_from(runs) if df is None else df
    return single_task_tables(runs), continual_tables(df)


def render(runs: list[tuple[str, Records]], df: pd.DataFrame | None = None) -> tuple[str, str]:
    """(Markdown, LaTeX) of every paper table."""
    single, continual = all_tables(runs, df)
    md, tex = [], ["% Paper tables (booktabs). Regenerate: python -m evaluation.reporting.tables <experiment dir>", ""]
    if single:
        md.append("### Single-task fine-tuning (step 1 of the runs)\n")
        md.append(ref_note(first_step(runs), markdown) + "\n")
        md += [to_markdown(t) for t in single]
        tex += [to_latex(t) for t in single]
    if continual:
        md.append("### Continual sequences\n")
        md += [to_markdown(t) for t in continual]
        tex += [to_latex(t) for t in continual]
    if not md:
        md.append("no finished runs\n")
    return "\n".join(md), "\n".join(tex)


def write_tables(experiment_dir: Path, runs: list[tuple[str, Records]] | None = None) -> tuple[Path, Path]:
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
