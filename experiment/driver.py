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
                   started: float | None = None, retrain_stale: bool = False, command: str | None = None,
                   plots: bool = True) -> int:
    """Plan `cfg`, train the runs that are not done with `executor`, rebuild the tables. `worker`: this
    process is a --jobs helper (it trains and leaves printing and the tables to its parent); `quiet`:
    no leaderboard on stdout; `started`: perf_counter at the process's start (the profile's start-up);
    `retrain_stale`: retrain the done runs whose recorded code fingerprint differs from the checkout's
    (otherwise they are reused, with one warning line naming them); `command`: this command with
    --download, the exact command that the hints for missing data and weights name; `plots`: draw the
    plots when collecting (--no-plots: tables and report only)."""
    from evaluation.storage.records import check_run, clean_stale

    from .config import plan

    exp_dir = Path(out) / cfg["experiment"]
    runs = plan(cfg)
    states = {r["run_id"]: check_run(exp_dir / "runs" / r["run_id"]) for r in runs}
    log = sys.stderr if log is None else log
    stale = [] if worker else _stale(exp_dir, runs, states)  # a --jobs helper's parent has said it
    if stale and retrain_stale and not dry_run and not collect_only:
        for rid, _ in stale:  # the run is redone in place: its records are rewritten from step 0
            (exp_dir / "runs" / rid / "done").unlink(missing_ok=True)
            states[rid] = "stale code: retrained"
        print(f"retraining {len(stale)} run(s) trained by other code: {', '.join(r for r, _ in stale)}", file=log)
    elif stale:
        from evaluation.storage.code_version import stale_warning

        print(f"warning: {stale_warning(stale)}", file=sys.stderr)
    stale_ids = {r for r, _ in stale}
    todo = [r for r in runs if states[r["run_id"]] is not None]
    summary = (f"experiment {cfg['experiment']}: {len(runs)} runs planned, {len(runs) - len(todo)} already done, "
               f"{len(todo)} to run -> {exp_dir}")
    if dry_run:
        from .dryrun import describe

        _plan_warnings(cfg, log)

        print(summary, file=log)
        for r in runs:
            state = "todo" if r in todo else "stale" if r["run_id"] in stale_ids else "done"
            own = "" if r["train"]["head_init"] == cfg["train"]["head_init"] else f"  head_init {r['train']['head_init']}"
            print(f"  {r['run_id']}  {state}  {r['strategy']}{own}  {','.join(r['ordering'])}  seed {r['seed']}")
        print(describe(cfg, runs, command))
        return 0
    from benchmark.cache_files import cache_dir
    from benchmark.files import stranded_temp_files

    for p in clean_stale(exp_dir):
        print(f"removed {p.relative_to(exp_dir)}, left by a process that was killed", file=log)
    for p in stranded_temp_files(cache_dir()) if cache_dir().is_dir() else []:
        p.unlink(missing_ok=True)
    if not collect_only and todo:
        # an executor that can train nothing (no Ray cluster at the address, no node large enough for a
        # run) says so now, before the pre-flight loads the model and the data
        refusal = executor.refusal(cfg["executor"])
        if refusal:
            if not worker:
                print(f"error: {refusal}", file=sys.stderr)
            return 2
        from .preflight import load_and_check, missing_inputs
        from .runner import Resources

        from .dryrun import with_command

        on_ray = cfg["executor"]["kind"] == "ray"
        # on Ray the runs' device is the workers' (checked there); the driver loads the model on its CPU
        checked = {**cfg, "device": "cpu"} if on_ray else cfg
        # everything that is missing, in one report, before any training
        missing = [with_command(m, command) for m in missing_inputs(checked)]
        if missing:
            for line in missing if not worker else []:
                print(f"error: {line}", file=sys.stderr)
            return 2
        res = Resources()
        if not load_and_check(checked, res, report=not worker):
            return 2
        if not worker:
            _plan_warnings(cfg, log)
        print(summary, file=log)
        _count_start_up(started)
        job = Job(exp_dir=exp_dir, resources=res, log=log, bars=bars, tensorboard=cfg["tensorboard"],
                  wandb=cfg.get("wandb", False), jobs=cfg["jobs"], executor=cfg["executor"],
                  save_weights=cfg.get("save_weights", False))
        code = executor.execute(todo, job)
        if worker or code == 2:  # 2: the executor refused the plan (said in one line); nothing to collect
            return code
    else:
        code = 0
        if worker:
            return 0
        print(summary, file=log)
        _count_start_up(started)
    collect_and_print(exp_dir, log, quiet, plots)
    if code:  # some runs failed (named above); the finished ones are in the tables
        print("error: some runs failed (named above); the others are in the leaderboard", file=sys.stderr)
    return code


def collect_and_print(exp_dir: Path, log: TextIO, quiet: bool = False, plots: bool = True) -> int:
    """Rebuild the experiment's leaderboard, tables, report and (if `plots`) plots; print the
    leaderboard's main columns unless `quiet`. Returns 0."""
    from evaluation.reporting.collect import collect
    from evaluation.reporting.leaderboard import MAIN_COLS

    interrupts.set_phase("collection: every finished run is kept; rebuild the tables with --collect-only")
    with profiling.phase("collection (tables, plots)"):
        df = collect(exp_dir, plots=plots)
    if len(df) and not quiet:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            # fixed-point always: pandas switches a whole column to scientific notation (-9.920e-04)
            # as soon as one value is small, which reads as a different scale
            from benchmark.text import terminal

            ident = ["strategy", "method", "ordering", "seed"] if "method" in df else ["strategy", "ordering", "seed"]
            shown = df[ident + MAIN_COLS].copy()
            for col in ("strategy", "method", "ordering"):  # record text is data: shown, never sent to the terminal as is
                if col in shown:
                    shown[col] = shown[col].map(terminal)
            print(shown.to_string(index=False, float_format="{:.4f}".format))
    drawn = exp_dir / "plots" if plots else "not drawn (--no-plots)"
    print(f"leaderboard: {exp_dir / 'leaderboard.csv'}  plots: {drawn}", file=log)
    return 0


def _plan_warnings(cfg: dict, log: TextIO) -> None:
    """Once, when the plan is made: the settings that would make its runs meaningless (one line each),
    with the plan's summary in the progress log (stderr; silent under -q)."""
    from .plan_warnings import plan_warnings

    for line in plan_warnings(cfg):
        print(f"warning: {line}", file=log)


def _stale(exp_dir: Path, runs: list[dict], states: dict) -> list[tuple[str, str]]:
    """(run id, what changed) of the done runs whose records name other code than the checkout's."""
    from evaluation.storage.code_version import stale_runs
    from evaluation.storage.records import load_records

    done = []
    for r in runs:
        if states[r["run_id"]] is None:
            try:
                done.append((r["run_id"], load_records(exp_dir / "runs" / r["run_id"])))
            except (OSError, ValueError):
                continue
    return stale_runs(done)[0]


def _count_start_up(started: float | None) -> None:
    """Everything from the process's start to the first run that no phase timed: imports, the
    configuration, the availability checks."""
    if started is None:
        return
    timed = sum(s for s, _ in profiling.snapshot().values())
    profiling.add("start-up (imports, config)", time.perf_counter() - started - timed)


def progress_log(quiet: bool, verbose: bool) -> tuple[TextIO, bool]:
    """Where the progress log goes and whether progress bars are drawn: nowhere (--quiet, a helper);
    above the bars on a terminal; plain lines on stderr with -v, on a pipe or in CI."""
    if quiet:
        return _DEVNULL, False
    if sys.stderr.isatty() and not verbose:
        return _BarSafeStream(), True
    return sys.stderr, False


class _Nowhere:
    """Where --quiet sends the progress log: a writer that drops what it is given (no file handle held
    open for the life of the process)."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


_DEVNULL = _Nowhere()


class _BarSafeStream:
    """A stderr for log lines that writes above the progress bars instead of through them."""

    def write(self, s: str) -> None:
        from tqdm import tqdm

        if s.strip():
            tqdm.write(s.rstrip("\n"), file=sys.stderr)

    def flush(self) -> None:
        sys.stderr.flush()
