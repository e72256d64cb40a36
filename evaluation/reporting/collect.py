"""Record files -> leaderboard, tidy records, summaries, tables, plots and report. Never trains.

Reads only `runs/*/records.json` of finished runs (with a `done` marker). A run whose record does
not parse, lacks a field, has matrices of the wrong shape, or lies in a folder whose name is not
the run id of its own config is skipped with one warning line; collecting goes on.

Writes into the experiment folder:
- leaderboard.csv      one row per run (identity, headline metrics, per-dataset deltas)
- records_long.csv     one row per (run, step, dataset, metric): R, LP, ZS, dLP, dZS, with the
                       run's strategy, hyperparameters (one `hp_<name>` column each), ordering, seed
- summary.csv / .md    per strategy (with hyperparameters) x ordering: mean, 95% CI half-width
                       and n (seeds); rows grouped by ordering, best PRIMARY_METRIC first
- orderings.csv        per strategy: ACC, BWT, FWT, dLP_heldout per ordering (mean, CI, n)
- ordering_sensitivity.csv  per strategy and metric: spread across orderings vs across seeds
- tables.md / .tex     paper tables (evaluation.reporting.tables)
- mtil_tables.md / .tex  ZSCL's MTIL table, for orderings of five tasks or more (evaluation.reporting.mtil_table)
- forgetting_matrices.csv  per method: fine-tuned-on x evaluated-on dLP and dZS, seeds averaged, with
                       CI and n (evaluation.reporting.heatmaps; plots/heatmap_<method>.png draws them)
- plots/*.png, report.md  (evaluation.reporting.plots, evaluation.reporting.report)

The frames themselves are built by evaluation.reporting.leaderboard. Rebuild from the command line: `python -m evaluation.reporting.collect results/<experiment>`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmark.files import atomic_write_text

from .leaderboard import (_csv, leaderboard_from, load_runs, markdown, ordering_sensitivity, ordering_table,
                          records_long, summary)

def collect(experiment_dir: Path, plots: bool = True, report: bool = True) -> pd.DataFrame:
    """Write every table (and plots and report.md) for one experiment folder; return the leaderboard."""
    experiment_dir = Path(experiment_dir)
    runs = load_runs(experiment_dir)
    df = leaderboard_from(runs)
    summ = summary(df)
    atomic_write_text(experiment_dir / "leaderboard.csv", _csv(df))
    atomic_write_text(experiment_dir / "records_long.csv", _csv(records_long(runs)))
    atomic_write_text(experiment_dir / "summary.csv", _csv(summ))
    atomic_write_text(experiment_dir / "summary.md", markdown(summ) if len(df) else "no finished runs\n")
    atomic_write_text(experiment_dir / "orderings.csv", _csv(ordering_table(df)))
    atomic_write_text(experiment_dir / "ordering_sensitivity.csv", _csv(ordering_sensitivity(df)))
    from .tables import write_tables

    write_tables(experiment_dir, runs)
    from .mtil_table import write_mtil_tables  # ZSCL's MTIL table: its own module and section

    write_mtil_tables(experiment_dir, runs)
    from .heatmaps import matrices, write as write_heatmaps

    forgetting = matrices(runs)
    atomic_write_text(experiment_dir / "forgetting_matrices.csv", _csv(forgetting))
    written = []
    if plots and runs:
        from .plots import write_plots

        written = write_plots(experiment_dir, runs, df)
        written += write_heatmaps(experiment_dir, forgetting)  # one per method (the paper's heat maps)
        from .plots_drift import write_drift_plots  # feature drift: its own module and section

        written += write_drift_plots(experiment_dir, runs)
    if report:
        from .report import write_report

        write_report(experiment_dir, runs, df, plots=written)
    return df


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m evaluation.reporting.collect",
                                 description="Rebuild tables, plots and report.md of an experiment from its record files.")
    ap.add_argument("experiment_dir", type=Path, help="e.g. results/micro (the folder that holds runs/)")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = ap.parse_args(argv)
    if not (args.experiment_dir / "runs").is_dir():
        print(f"error: {args.experiment_dir} has no runs/ folder; pass an experiment folder such as results/micro",
              file=sys.stderr)
        return 2
    df = collect(args.experiment_dir, plots=not args.no_plots)
    print(f"{len(df)} runs collected -> {args.experiment_dir / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
