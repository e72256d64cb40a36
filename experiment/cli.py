"""Continual fine-tuning benchmark: train strategies on task orderings, score concept forgetting.

With no argument it runs the embedded micro preset (configs/micro.yaml): plain fine-tuning and
LDIFS on mnist then fashion_mnist, scored on those and two held-out datasets (textures, photos),
on the CPU, offline, in about a minute. `--config micro-evidence` (= `--seeds 4 5 6 7 8 9`) runs the
six-seed preset whose intervals show the effect on any x86-64 CPU (docs/micro_evidence.md).
Finished runs are skipped on a rerun; results/<experiment>/leaderboard.csv and plots/ are rebuilt
from the record files every time.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

T_START = time.perf_counter()  # the profile's start-up phase counts from here (reset by main())


def main(argv: list[str] | None = None) -> int:
    global T_START
    T_START = time.perf_counter()
    try:
        from experiment import interrupts  # imports nothing: the phase of a Ctrl-C in the imports below

        interrupts.reset()
        from benchmark import profiling

        profiling.reset()
        return _main(argv)
    except BrokenPipeError:  # `... | head -1`: the reader has gone; say nothing more
        try:  # what is still buffered goes nowhere, instead of a second BrokenPipeError at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except (MemoryError, ImportError, OSError) as e:
        from experiment.startup import memory_problem

        if memory_problem(e) is None:
            raise
        print(f"error: {memory_problem(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still this line and 130
        try:
            phase = getattr(sys.modules.get("experiment.interrupts"), "phase", None)  # None: Ctrl-C before
            print(f"interrupted during {phase() if phase else 'start-up: nothing was written'}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 130


def _main(argv: list[str] | None) -> int:
    from experiment.arguments import build_parser  # argparse only: --help answers at once

    args = build_parser(__doc__).parse_args(argv)
    if args.study:
        args.config = f"study-{args.study}"
    from experiment.checks import check_input
    from experiment.listing import list_command
    from experiment.settings import ConfigError, merged

    if args.list:  # before any heavy import: reads files only (no torch), answers in well under a second
        return list_command(args.config)

    try:  # every key, value and name on the command line and in the preset, before torch (experiment/checks.py)
        settings = merged(args)
        check_input(settings)
    except ConfigError as e:
        from benchmark.text import terminal

        print(f"error: {terminal(e)}", file=sys.stderr)
        return 2
    trains = not (args.dry_run or args.collect_only)
    if trains:
        from experiment.numerics_reexec import numerics_hint, pin_numerics

        problem = pin_numerics(numerics_hint(settings), as_command=argv is None)  # re-executes, or says why not
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    from experiment.startup import heavy_imports

    heavy_imports(at_once=argv is None)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    from experiment.executors import for_command

    executor = for_command(settings, args.argv, trains, rescore=args.rescore is not None)
    try:  # --jobs helpers start once the configuration is validated (in _checked_main)
        return _checked_main(args, executor)
    finally:
        executor.close()


def _checked_main(args, executor) -> int:
    from benchmark.data.registry import DataError
    from experiment.arguments import resolve_config
    from experiment.config import ConfigError
    from experiment.guards import check_cache_writable, check_collectable, check_size, check_writable
    from strategies import SpecError

    trains = not (args.dry_run or args.collect_only)
    try:
        try:
            cfg = resolve_config(args)
        except (ConfigError, SpecError, DataError) as e:
            _say_skipped(str(e))
            raise
        _say_skipped()
        if args.collect_only:
            check_collectable(args.out, cfg["experiment"])
        if args.gpus is not None:
            cfg["gpus"] = args.gpus  # the wall-clock estimate of --dry-run and of the plan-size refusal
        if trains:
            check_size(cfg, args.yes)
        if not args.dry_run:
            check_writable(args.out, cfg["experiment"], tensorboard=cfg["tensorboard"] and trains,
                           wandb=cfg.get("wandb", False) and trains)
        if trains:
            check_cache_writable(cfg)
    except (ConfigError, SpecError, DataError) as e:
        from benchmark.text import terminal

        print(f"error: {terminal(e)}", file=sys.stderr)  # one line, whatever the input held
        return 2
    # --jobs helpers: only for a validated configuration, never more than it says nor than the runs left
    from experiment.executors.processes import processes_needed, runs_left

    left = runs_left(cfg, args.out, args.retrain_stale) if trains else None  # planned once, for both
    executor.start(processes_needed(cfg, args.out, args.retrain_stale, left), left or [], cfg["executor"])
    from experiment.driver import progress_log, run_experiment
    from experiment.dryrun import download_command

    log, bars = progress_log(bool(args.quiet), args.verbose)
    try:
        if args.rescore is not None and not (args.dry_run or args.collect_only):
            from experiment.rescore import rescore_experiment

            try:
                return rescore_experiment(cfg, args.out, args.rescore or None, log, quiet=bool(args.quiet),
                                          plots=not args.no_plots)
            except ConfigError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        code = run_experiment(cfg, args.out, executor, dry_run=args.dry_run, collect_only=args.collect_only, log=log,
                              bars=bars, quiet=bool(args.quiet), started=T_START, retrain_stale=args.retrain_stale,
                              command=download_command(args.argv), plots=not args.no_plots)
    except OSError as e:
        from experiment import interrupts
        from experiment.guards import file_problem

        line = file_problem(e)
        if line is None:
            raise
        print(f"error: {line}; during {interrupts.phase()}", file=sys.stderr)  # what it means for the results
        return 2
    if code == 0 and not args.dry_run:
        from benchmark import profiling

        wall = time.perf_counter() - T_START
        if args.profile:
            print(profiling.table(wall), file=sys.stderr)
        print(f"finished in {profiling.duration(wall)} (peak memory {profiling.peak_memory_line(executor.processes)}): "
              f"{Path(args.out) / cfg['experiment'] / 'report.md'}", file=sys.stderr)
    return code


def _say_skipped(error: str = "") -> None:
    """Once per command: the strategy files the registry skipped, one line each (but the one an error line
    already names). Said only where the registry was read (validating the strategies reads it)."""
    import strategies
    from benchmark.text import terminal

    for line in strategies.skipped() if strategies._loaded else []:
        if line.split(" ", 1)[0] not in error:
            print(f"warning: {terminal(line)}", file=sys.stderr)


def entry() -> None:
    """The `cfbench` console command (and `python run_benchmark.py`, `python -m experiment.cli`)."""
    from experiment import interrupts

    interrupts.install_sigint()  # not where SIGINT was ignored (nohup, a background job)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a Ctrl-C between main()'s return and here (main's handler said the line)
        sys.exit(130)


if __name__ == "__main__":
    entry()
