"""results/<experiment>/report.md: the file to open first, rebuilt by the collector from record files only."""
from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path

import pandas as pd

from ..storage.records import Records
from .leaderboard import ORDERING_COLS, PRIMARY_METRIC, fmt_clipped, markdown, ordering_sensitivity, ordering_table, summary
from benchmark.files import atomic_write_text
from .plots_steps import is_step_plot, steps_section
from benchmark.text import markdown as md, markdown_code as md_code
from .studies import analysis_sections

DEFINITIONS = """\
- `R[i, j]`: accuracy on task j of the ordering, with its own head, after training on tasks 1..i
  (row 0: before training; a task not trained yet is scored with the head it would start from).
- ACC = mean_j R[T, j]; BWT = mean over j < T of R[T, j] - R[j, j];
  FWT = mean over j >= 2 of R[j-1, j] - R[0, j]. BWT and FWT are undefined (empty) for one task.
- Transfer, Avg, Last: ZSCL's MTIL metrics on the zero-shot matrix A (rows: after tasks 1..T;
  columns: the ordering's datasets): Transfer = mean over j >= 2 of mean over i < j of A[i, j],
  Avg = mean of A, Last = mean of A's last row. Empty without a text tower; Transfer empty for one task.
  `Transfer_LP`, `Avg_LP`, `Last_LP` (leaderboard.csv) apply the same formulas to R's rows 1..T,
  whose untrained-task entries are the head-init probe's accuracy.
- dLP / dZS: linear-probe / zero-shot accuracy after the last task minus before training, per dataset;
  `held-out` = mean over the suite's datasets not in the ordering, `all` = over every dataset.
- Acc (ref) / ACC (ref): a dataset's accuracy as the paper's reference code measures a fine-tuned model:
  a linear probe refitted on its features, or the zero-shot head for a ZS-init method; Acc (head) /
  ACC (head): the trained task head's (R). Methods are named as the paper names them (ZS-init-CE, ...).
- Values in points (x100), mean ± 95% CI half-width (t-interval) over seeds where there are two or more."""


def _values(runs, get) -> list:
    out = []
    for _, rec in runs:
        v = get(rec)
        if v is not None and v not in out:
            out.append(v)
    return out


def _js(v) -> str:
    return json.dumps(v, sort_keys=True)


def setup_section(experiment_dir: Path, runs: list[tuple[str, Records]]) -> list[str]:
    run_dirs = [p for p in (experiment_dir / "runs").iterdir() if p.is_dir()] if (experiment_dir / "runs").is_dir() else []
    left_out = len(run_dirs) - len(runs)
    lines = ["## Setup", ""]
    lines.append(f"- Runs: {len(runs)} finished and valid" +
                 (f"; {left_out} other run folder(s) left out (unfinished, or records that failed the checks)" if left_out else ""))
    lines.append("- Model: " + "; ".join(md_code(_js(m)) for m in _values(runs, lambda r: r.config.get("model"))))
    suites = _values(runs, lambda r: r.suite)
    lines.append("- Datasets scored (suite): " + "; ".join(md(", ".join(s)) for s in suites))
    lines.append("- Orderings: " + "; ".join(md(" > ".join(o)) for o in sorted(_values(runs, lambda r: r.ordering))))
    strat = pd.DataFrame([{"strategy": rec.strategy_name, "params": _js(rec.params)} for _, rec in runs])
    if len(strat):
        strat = strat.drop_duplicates().sort_values(["strategy", "params"])
        lines.append("- Strategies and hyperparameters: " + "; ".join(
            f"{md(s)} {md_code(p)}" for s, p in zip(strat["strategy"], strat["params"])))
    lines.append("- Seeds: " + ", ".join(map(str, sorted({rec.seed for _, rec in runs}))))
    for key, what in (("train", "Training settings"), ("data", "Data settings")):
        vals = _values(runs, lambda r: r.config.get(key))
        if vals:
            lines.append(f"- {what}: " + "; ".join(md_code(_js(v)) for v in vals))
    envs = [rec.env if isinstance(rec.env, dict) else {} for _, rec in runs]
    soft = {}
    for e in envs:
        packages = e.get("packages") if isinstance(e.get("packages"), dict) else {}  # older records lack it
        for k, v in [*((k, e[k]) for k in ("python", "torch") if k in e and k not in packages), *packages.items()]:
            soft.setdefault(str(k), set()).add(str(v))
    lines.append("- Software: " + (", ".join(md(f"{k} {' / '.join(sorted(v))}") for k, v in sorted(soft.items()))
                                   if soft else "not recorded"))
    devices = sorted({str(e["device"]) for e in envs if "device" in e})
    lines.append("- Device: " + (", ".join(md(d) for d in devices) if devices else "not recorded"))
    lines.append("- CPU numeric path: " + numerics_line(envs))
    lines += time_lines(runs) + code_lines(runs)
    return lines + [""]


def _utc(text) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def time_lines(runs: list[tuple[str, Records]]) -> list[str]:
    """Compute time (the runs' own times summed) apart from wall time (the span from the first
    run's start to the last run's end, from the records' UTC `started`/`finished`): runs trained in
    parallel (--jobs) overlap, so the sum can exceed the wall time; runs trained in several
    invocations leave gaps, so the span can exceed it."""
    walls = [rec.wall_s for _, rec in runs if rec.wall_s is not None]
    if not walls:
        return ["- Compute time: not recorded", "- Wall time: not recorded"]
    lines = [f"- Compute time: {sum(walls):.0f} s, the sum over {len(walls)} runs "
             f"(per run {min(walls):.0f} to {max(walls):.0f} s)"]
    spans = [(_utc(rec.started), _utc(rec.finished)) for _, rec in runs]
    spans = [(a, b) for a, b in spans if a and b]
    if spans:
        wall = (max(b for _, b in spans) - min(a for a, _ in spans)).total_seconds()
        lines.append(f"- Wall time: {wall:.0f} s, from the first run's start to the last run's end "
                     f"({min(a for a, _ in spans):%Y-%m-%d %H:%M:%S} to {max(b for _, b in spans):%Y-%m-%d %H:%M:%S} UTC"
                     + (f"; {len(spans)} of {len(runs)} runs recorded their times" if len(spans) < len(runs) else "")
                     + "; gaps between invocations included, parallel runs counted once)")
    else:
        lines.append("- Wall time: not recorded (runs made before records held their start and end)")
    return lines


def code_lines(runs: list[tuple[str, Records]]) -> list[str]:
    """Which runs were trained by other code than this checkout's (evaluation/storage/code_version.py)."""
    from ..storage.code_version import stale_runs

    stale, unknown = stale_runs(runs)
    lines = []
    if stale:
        lines.append(f"- Code: **{len(stale)} stale run(s)**, trained by other code than this checkout's "
                     "(`python run_benchmark.py --config <preset> --retrain-stale` retrains them): "
                     + "; ".join(f"{md_code(rid)} ({md(what)})" for rid, what in stale))
    elif len(runs) > unknown:
        lines.append(f"- Code: the {len(runs) - unknown} run(s) with a code fingerprint match this checkout")
    if unknown:
        lines.append(f"- Code: {unknown} run(s) recorded no code fingerprint (trained before runs recorded one)")
    rescored = [(rid, rec.rescored) for rid, rec in runs if isinstance(rec.rescored, dict)]
    if rescored:  # experiment/rescore.py: scored from another run's kept weights, not trained
        lines.append(f"- Rescored: {len(rescored)} run(s) were scored from the kept weights of a run that trained the "
                     "same way on another suite (`--rescore`), not trained: "
                     + "; ".join(f"`{rid}` from `{r.get('from_experiment', '?')}/{r.get('from', '?')}`"
                                 for rid, r in rescored))
    return lines


def numerics_line(envs: list[dict]) -> str:
    """Which CPU kernels made the records (env.numerics, benchmark/numerics.py): runs on two numeric
    paths are not comparable bit for bit, so the report says when an experiment mixes them."""
    paths: dict[str, list] = {}
    for e in envs:
        n = e.get("numerics") if isinstance(e.get("numerics"), dict) else None
        if n and n.get("fingerprint"):
            entry = paths.setdefault(str(n["fingerprint"]), [n, 0])
            entry[1] += 1
    if not paths:
        return "not recorded"
    parts = [f"{md(n.get('capability', '?'))} kernels on {md(n.get('cpu', 'an unnamed CPU'))} (fingerprint {md_code(fp)}, "
             f"{count} run{'s' if count != 1 else ''})" for fp, (n, count) in sorted(paths.items())]
    mixed = "; MIXED: these runs come from different numeric paths" if len(paths) > 1 else ""
    return "; ".join(parts) + mixed


def ordering_section(df: pd.DataFrame) -> list[str]:
    lines = ["## Orderings", ""]
    table = ordering_table(df)
    if not len(table):
        return lines + ["No sequence of two or more tasks.", ""]
    sens = ordering_sensitivity(df)
    lines += ["Per strategy, each sequence's results (mean ± 95% CI over seeds, points). Where the same tasks "
              "were run in two or more orders, the spread across orderings (SD of the ordering means) stands "
              "beside the seed-to-seed spread (pooled SD across seeds): order matters more than noise where "
              "the first clearly exceeds the second.", ""]
    for lab, g in table.groupby("label", sort=True):
        lines += [f"**{md(lab)}**", "", "| ordering | n | " + " | ".join(ORDERING_COLS) + " |",
                  "|---|---|" + "---|" * len(ORDERING_COLS)]
        for _, r in g.iterrows():
            cells = [fmt_clipped(r[c], r[f"{c}_ci95"], c) for c in ORDERING_COLS]
            lines.append(f"| {md(r['ordering'])} | {r['n']} | " + " | ".join(cells) + " |")
        s = sens[sens["label"] == lab]
        if len(s):
            lines += ["", "| tasks | metric | orderings | SD across orderings | SD across seeds |", "|---|---|---|---|---|"]
            for _, r in s.iterrows():
                f = lambda v: "" if math.isnan(v) else f"{v * 100:.1f}"  # noqa: E731
                lines.append(f"| {md(r['tasks'])} | {md(r['metric'])} | {md(r['orderings'])} | {f(r['across_orderings_sd'])} | "
                             f"{f(r['across_seeds_sd'])} |")
        lines.append("")
    return lines


PLOT_CAPTIONS = [
    ("accuracy_vs_forgetting.png", "Downstream accuracy against held-out concept forgetting, over the orderings "
     "and seeds every strategy shares (front of points not dominated beyond their CIs dashed)"),
    ("dLP_per_dataset.png", "Concept forgetting per dataset, linear probe (held-out datasets shaded)"),
    ("dZS_per_dataset.png", "Concept forgetting per dataset, zero-shot (held-out datasets shaded)"),
    ("heldout_probe_steps.png", "Held-out linear-probe accuracy after every step, per strategy"),
    ("heatmap_", "Concept forgetting heat map: fine-tuned on (rows) x evaluated on (columns), dLP and dZS "
     "after step 1, seeds averaged (forgetting_matrices.csv has the intervals)"),
    ("ordering_sensitivity", "Ordering sensitivity, every strategy on one scale"),
    ("accuracy_matrix_", "Accuracy matrix R"),
    ("task_accuracy_", "Accuracy on each task across the sequence"),
]


def plots_section(experiment_dir: Path, plots: list[Path]) -> list[str]:
    lines = ["## Plots", ""]
    if not plots:
        return lines + ["No plots (collected without plots, or nothing to plot).", ""]
    names = sorted({Path(p).name for p in plots})
    for prefix, caption in PLOT_CAPTIONS:
        for n in [n for n in names if n.startswith(prefix)]:
            what = n[len(prefix):-4] if prefix.endswith("_") else ""
            lines += [f"**{caption}{': ' + what if what else ''}**", "", f"![{caption}](plots/{n})", ""]
            names.remove(n)
    for n in names:
        lines += [f"![{n}](plots/{n})", ""]
    return lines


def build_report(experiment_dir: Path, runs: list[tuple[str, Records]], df: pd.DataFrame,
                 plots: list[Path] | None = None) -> str:
    from .tables import render

    experiment_dir = Path(experiment_dir)
    name = experiment_dir.name
    lines = [f"# Report: experiment {md_code(name)}", "",
             "Rebuilt from the record files in `runs/` alone (nothing is retrained). To regenerate it, "
             "with the tables and plots, from the repository root:", "",
             "```bash", f"python -m evaluation.reporting.collect results/{name}   # or the path of this folder", "```", ""]
    lines += setup_section(experiment_dir, runs)
    lines += ["## Summary", "",
              f"Per strategy and ordering, over seeds; within each ordering the best {PRIMARY_METRIC} first "
              "(summary.csv has every column with its CI and n). An empty cell is undefined for the run.", ""]
    lines += [markdown(summary(df)) if len(df) else "No finished runs.\n"]
    lines += ordering_section(df)
    md, _ = render(runs, df)
    lines += ["## Paper tables", "", "Also as LaTeX (booktabs) in `tables.tex`.", "", md]
    lines += steps_section(plots)  # seed-averaged matrices and trajectories (evaluation/reporting/plots_steps.py)
    from .mtil_table import mtil_section  # ZSCL's MTIL table, where the orderings are MTIL-shaped

    lines += mtil_section(runs)
    lines += analysis_sections(experiment_dir, runs, plots)  # feature drift and studies (evaluation/reporting/studies.py)
    lines += plots_section(experiment_dir, [p for p in plots or [] if not Path(p).name.startswith("drift_")
                                            and not is_step_plot(Path(p).name)])
    lines += ["## Definitions", "", DEFINITIONS, "",
              "Files: `leaderboard.csv` (one row per run), `records_long.csv` (every number, tidy), `summary.csv`, "
              "`orderings.csv`, `ordering_sensitivity.csv`, `tables.md`, `tables.tex`, `forgetting_matrices.csv`, "
              "`plots/`, `report.html` (this report with its images inside, to open from disk or send by mail).", ""]
    return "\n".join(with_contents(lines))


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub and report.html (evaluation/reporting/html.py) make it."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return re.sub(r" ", "-", s)


def with_contents(lines: list[str]) -> list[str]:
    """The report with a short table of contents (its `## ` sections) before its first section."""
    heads = [ln[3:].strip() for ln in lines if ln.startswith("## ")]
    if not heads:
        return lines
    first = lines.index(next(ln for ln in lines if ln.startswith("## ")))
    toc = ["## Contents", ""] + [f"- [{h}](#{slug(h)})" for h in heads] + [""]
    return lines[:first] + toc + lines[first:]


def write_report(experiment_dir: Path, runs: list[tuple[str, Records]], df: pd.DataFrame,
                 plots: list[Path] | None = None) -> Path:
    path = Path(experiment_dir) / "report.md"
    atomic_write_text(path, build_report(experiment_dir, runs, df, plots))
    return path
