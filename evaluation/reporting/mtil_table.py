"""ZSCL's MTIL table (Zheng et al., ICCV 2023, Table 1) from record files: `mtil_tables.md` and `.tex`.

For every MTIL-shaped ordering (five tasks or more, runs with a zero-shot matrix), one table: a block
each for Transfer, Avg and Last, one column per dataset of the ordering in its order plus their mean,
one row per method (strategy and varying hyperparameters), values in points, mean ± 95% t-interval
half-width over seeds ("(n=1)" for one seed; an interval clipped to [0, 100] where the t-interval
would leave it, shown as [low, high]).

With A the zero-shot matrix over the ordering's datasets, rows after tasks 1..T (metrics.zs_task_matrix),
per dataset j (1-based), as ZSCL's mtil/results.ipynb (`statistics`) computes them:

    Transfer_j = mean over i < j of A[i, j]   (j >= 2; the first dataset has none: an empty cell)
    Avg_j      = mean over i of A[i, j]
    Last_j     = A[T, j]

and each block's last column is the mean over its datasets (Transfer over j >= 2): exactly the
leaderboard's Transfer, Avg and Last of the run. Bold: the best entry of a column, only where its
interval clears the runner-up's (evaluation/reporting/tables.py's rule).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import metrics as M
from ..storage.records import Records
from .tables import Table, tex_escape
from benchmark.files import atomic_write_text

MIN_TASKS = 5  # an ordering of this many tasks or more is MTIL-shaped (ZSCL's has eleven; the micro MTIL five)
BLOCKS = ("Transfer", "Avg", "Last")
MEAN = "mean"


def per_dataset(A) -> dict[str, list[float]]:
    """{block: [value of each dataset..., mean]} of one run's zero-shot task matrix A [T, T]."""
    A = np.asarray(A, dtype=float)
    T = A.shape[1]
    transfer = [math.nan] + [float(A[:j, j].mean()) for j in range(1, T)]
    avg = [float(A[:, j].mean()) for j in range(T)]
    last = [float(v) for v in A[-1]]
    summary = M.mtil(A)
    return {"Transfer": transfer + [summary["Transfer"]], "Avg": avg + [summary["Avg"]],
            "Last": last + [summary["Last"]]}


def mtil_shaped(rec: Records) -> bool:
    return len(rec.ordering) >= MIN_TASKS and bool(rec.ZS)


def mtil_tables(runs: list[tuple[str, Records]]) -> list[Table]:
    """One Table per MTIL-shaped ordering of `runs` ((run id, records) of finished runs)."""
    from .leaderboard import labels, leaderboard_from

    shaped = [(rid, rec) for rid, rec in runs if mtil_shaped(rec)]
    if not shaped:
        return []
    df = leaderboard_from(shaped)
    label_of = dict(zip(df["run_id"], labels(df)))
    by_ordering: dict[tuple, dict[str, list[dict]]] = {}
    seeds: dict[tuple, set] = {}
    for rid, rec in sorted(shaped, key=lambda r: r[0]):
        ordering = tuple(rec.ordering)
        A = M.zs_task_matrix(rec.ZS, rec.suite, ordering)
        by_ordering.setdefault(ordering, {}).setdefault(label_of[rid], []).append(per_dataset(A))
        seeds.setdefault(ordering, set()).add(rec.seed)
    out = []
    for ordering, methods in sorted(by_ordering.items()):
        cols = [*ordering, MEAN]
        rows = []
        for lab, vals in sorted(methods.items()):
            cells = []
            for b in BLOCKS:
                for j in range(len(cols)):
                    xs = [v[b][j] for v in vals if not math.isnan(v[b][j])]
                    cells.append(M.mean_ci95(xs) if xs else (math.nan, math.nan))
            rows.append((lab, cells))
        title = (f"MTIL on {'>'.join(ordering)}: zero-shot accuracy (points) per dataset, ZSCL's Table 1 layout; "
                 f"seeds {', '.join(map(str, sorted(seeds[ordering])))}")
        out.append(Table(title, "method", [(b, list(cols)) for b in BLOCKS], rows, best="column"))
    return out


def _cell(mean: float, ci: float) -> str:
    """An accuracy in points: '75.0 ± 2.1', '90.0 (n=1)', '85.0 [21.5, 100.0]' (interval clipped), '' undefined."""
    if math.isnan(mean):
        return ""
    if math.isnan(ci):
        return f"{mean * 100:.1f} (n=1)"
    if mean - ci < 0 or mean + ci > 1:
        return f"{mean * 100:.1f} [{max(0.0, mean - ci) * 100:.1f}, {min(1.0, mean + ci) * 100:.1f}]"
    return f"{mean * 100:.1f} ± {ci * 100:.1f}"


def to_markdown(t: Table) -> str:
    """One Markdown table per block (eleven datasets side by side in three blocks would not fit a page)."""
    bold = t.bold()
    lines = [f"**{t.title}**", ""]
    start = 0
    for block, cols in t.blocks:
        lines += [f"*{block}*", "", "| " + " | ".join([t.stub, *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
        for i, (label, cells) in enumerate(t.rows):
            out = []
            for j in range(start, start + len(cols)):
                s = _cell(*cells[j])
                out.append(f"**{s}**" if s and bold[i, j] else s)
            lines.append("| " + " | ".join([label, *out]) + " |")
        lines.append("")
        start += len(cols)
    return "\n".join(lines + [t.note()]) + "\n"


def to_latex(t: Table) -> str:
    """ZSCL's layout: the blocks stacked as row groups, the datasets as columns (booktabs)."""
    cols = t.blocks[0][1]
    bold = t.bold()
    lines = [r"\begin{table*}[t]", r"\centering", rf"\caption{{{tex_escape(t.title)}}}",
             rf"\resizebox{{\textwidth}}{{!}}{{\begin{{tabular}}{{l{'c' * len(cols)}}}", r"\toprule",
             " & ".join([""] + [tex_escape(c) for c in cols]) + r" \\"]
    start = 0
    for block, bcols in t.blocks:
        lines += [r"\midrule", rf"\multicolumn{{{len(cols) + 1}}}{{l}}{{\textit{{{tex_escape(block)}}}}} \\"]
        for i, (label, cells) in enumerate(t.rows):
            out = []
            for j in range(start, start + len(bcols)):
                s = _cell(*cells[j]).replace(" ± ", r" $\pm$ ")
                out.append(rf"\textbf{{{s}}}" if s and bold[i, j] else (s or "--"))  # Transfer of the first dataset
            lines.append(" & ".join([tex_escape(label), *out]) + r" \\")
        start += len(bcols)
    lines += [r"\bottomrule", r"\end{tabular}}", r"\par\smallskip{\footnotesize " + tex_escape(t.note()) + "}",
              r"\end{table*}"]
    return "\n".join(lines) + "\n"


def render(runs: list[tuple[str, Records]]) -> tuple[str, str]:
    """(Markdown, LaTeX) of every MTIL table; ("", "") when no ordering is MTIL-shaped."""
    tables = mtil_tables(runs)
    if not tables:
        return "", ""
    md = "\n".join(to_markdown(t) for t in tables)
    head = "% MTIL tables (booktabs, graphicx). Regenerate: python -m evaluation.reporting.collect <experiment dir>"
    tex = "\n".join([head, "", *[to_latex(t) for t in tables]])
    return md, tex


def write_mtil_tables(experiment_dir: Path, runs: list[tuple[str, Records]]) -> list[Path]:
    """mtil_tables.md and .tex where the experiment has MTIL-shaped orderings; [] (and no files) otherwise."""
    md, tex = render(runs)
    if not md:
        return []
    experiment_dir = Path(experiment_dir)
    atomic_write_text(experiment_dir / "mtil_tables.md", md)
    atomic_write_text(experiment_dir / "mtil_tables.tex", tex)
    return [experiment_dir / "mtil_tables.md", experiment_dir / "mtil_tables.tex"]


def mtil_section(runs: list[tuple[str, Records]]) -> list[str]:
    """report.md's MTIL section: the tables, or nothing when no ordering is MTIL-shaped."""
    md, _ = render(runs)
    if not md:
        return []
    return ["## MTIL (ZSCL's Table 1)", "",
            "Zero-shot accuracy with the pre-trained text tower's prompts after every task, per dataset of the "
            "ordering: Transfer (before the dataset's own task), Avg (over all steps) and Last (after the last task); "
            "definitions in docs/design.md, \"MTIL\". Also in `mtil_tables.md` and `mtil_tables.tex`.", "", md]
