"""A `--jobs` helper: `python -m experiment.helper K ARGS...` is the k-th helper of the command
`cfbench ARGS...` (experiment/executors/processes.py starts them). It reads the same arguments into the
same configuration, waits for its parent's "go", then trains from the plan's k-th pending run. It prints
nothing about its inputs (its parent reports them, once) nor progress, writes no tables, and leaves
quietly on Ctrl-C; a run's lock gives each run to one process, so the records are those one process
would write.
"""
from __future__ import annotations

import sys
import time


def main(k: int, argv: list[str]) -> int:
    started = time.perf_counter()
    try:
        return _main(k, argv, started)
    except KeyboardInterrupt:  # the parent says the line
        return 130
    except (MemoryError, ImportError, OSError) as e:
        from experiment.guards import file_problem
        from experiment.startup import memory_problem

        line = memory_problem(e) or (file_problem(e) if isinstance(e, OSError) else None)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def _main(k: int, argv: list[str], started: float) -> int:
    from experiment.executors.processes import HelperExecutor

    return train_share(argv, HelperExecutor(k), started)


def train_share(argv: list[str], executor, started: float, progress: bool = False) -> int:
    """Train this process's share of the plan of `cfbench argv` with `executor` (e.g. from the plan's k-th
    pending run), as a helper: no tables, nothing said about its inputs (2 when they are wrong: the parent
    reports them); progress lines only with `progress` and no --quiet. Also the rehearsal's workers
    (scripts/rehearse_paper.py)."""
    from experiment import interrupts
    from experiment.arguments import build_parser
    from experiment.startup import heavy_imports

    interrupts.reset()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:  # its parent parsed the same arguments, and reports what is wrong with them
        return 2
    if args.study:
        args.config = f"study-{args.study}"
    heavy_imports(say=False, at_once=True)
    from benchmark.data.registry import DataError
    from experiment.arguments import resolve_config
    from experiment.config import ConfigError
    from experiment.driver import progress_log, run_experiment
    from experiment.dryrun import download_command
    from strategies import SpecError

    try:
        cfg = resolve_config(args)
    except (ConfigError, SpecError, DataError):
        return 2  # a helper's inputs are its parent's, which reports them
    log, _ = progress_log(quiet=not progress or bool(args.quiet), verbose=True)
    return run_experiment(cfg, args.out, executor, log=log, bars=False, worker=True, quiet=True,
                          started=started, retrain_stale=args.retrain_stale, command=download_command(argv))


def entry() -> None:
    from experiment import interrupts

    interrupts.install_sigint()
    try:
        sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    entry()
