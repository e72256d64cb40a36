"""One command's work on one experiment: plan, train what is missing (through an executor), collect.

run_benchmark.py parses the command line and calls `run_experiment`; everything it does to the
results folder happens here and in the executors.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from benchmark import profiling

from . import interrupts
from .executors import Executor, Job


def run_experiment(cfg: dict, out: Path, executor: Executor, dry_run: bool = False, collect_only: bool = False,
                   log: TextIO | None = None, bars: bool = False, worker: bool = False, quiet: bool = False,
                   started: float | None = None) -> int:
    """Plan `cfg`, train the runs that are not done with `executor`, rebuild the tables. `worker`: this
    process is a --jobs helper (it trains and leaves printing and the tables to its parent); `quiet`:
    no leaderboard on stdout; `started`: perf_counter at the process's start (the profile's start-up)."""
    from evaluation.collect import collect
    from evaluation.leaderboard import MAIN_COLS
    from evaluation.records import check_run, clean_stale

    from .config import plan

    exp_dir = Path(out) / cfg["experiment"]
    runs = plan(cfg)
    states = {r["run_id"]: check_run(exp_dir / "runs" / r["run_id"]) for r in runs}
    todo = [r for r in runs if states[r["run_id"]] is not None]
    log = sys.stderr if log is None else log
    summary = (f"experiment {cfg['experiment']}: {len(runs)} runs planned, {len(runs) - len(todo)} already done, "
               f"{len(todo)} to run -> {exp_dir}")
    if dry_run:
        from .dryrun import describe

        print(summary, file=log)
        for r in runs:
            state = "todo" if r in todo else "done"
            print(f"  {r['run_id']}  {state}  {r['strategy']}  {','.join(r['ordering'])}  seed {r['seed']}")
        print(describe(cfg, runs))
        return 0
    from benchmark.cache import cache_dir
    from benchmark.files import stranded_temp_files

    for p in clean_stale(exp_dir):
        print(f"removed {p.relative_to(exp_dir)}, left by a process that was killed", file=log)
    for p in stranded_temp_files(cache_dir()) if cache_dir().is_dir() else []:
        p.unlink(missing_ok=True)
    if not collect_only and todo:
        from .preflight import load_and_check, missing_inputs
        from .runner import Resources

        missing = missing_inputs(cfg)  # everything that is missing, in one report, before any training
        if missing:
            for line in missing if not worker else []:
                print(f"error: {line}", file=sys.stderr)
            return 2
        res = Resources()
        if not load_and_check(cfg, res, report=not worker):
            return 2
        print(summary, file=log)
        _count_start_up(started)
        job = Job(exp_dir=exp_dir, resources=res, log=log, bars=bars, tensorboard=cfg["tensorboard"], jobs=cfg["jobs"])
        code = executor.execute(todo, job)
        if worker:
            return code
    else:
        code = 0
        if worker:
            return 0
        print(summary, file=log)
        _count_start_up(started)
    interrupts.set_phase("collection: every finished run is kept; rebuild the tables with --collect-only")
    with profiling.phase("collection (tables, plots)"):
        df = collect(exp_dir)
    if len(df) and not quiet:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
            print(df[["strategy", "ordering", "seed"] + MAIN_COLS].to_string(index=False))
    print(f"leaderboard: {exp_dir / 'leaderboard.csv'}  plots: {exp_dir / 'plots'}", file=log)
    if code:  # some runs failed (named above); the finished ones are in the tables
        print("error: some runs failed (named above); the others are in the leaderboard", file=sys.stderr)
    return code


def _count_start_up(started: float | None) -> None:
    """Everything from the process's start to the first run that no phase timed: imports, the
    configuration, the availability checks."""
    if started is None:
        return
    timed = sum(s for s, _ in profiling.snapshot().values())
    profiling.add("start-up (imports, config)", time.perf_counter() - started - timed)
