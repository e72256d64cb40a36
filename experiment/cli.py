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
import warnings
from pathlib import Path

T_START = time.perf_counter()  # the profile's start-up phase counts from here (reset by main())


def _interrupted(signum, frame):
    """The command's Ctrl-C: the first one stops it (KeyboardInterrupt: one line, exit 130); from then
    on SIGINT is ignored, so that a second one, in the clean-up or while the interpreter exits, neither
    kills the process by the signal nor prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt




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
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still this line and 130
        try:
            if "--worker" not in (sys.argv if argv is None else argv):  # a helper's parent says it once
                phase = getattr(sys.modules.get("experiment.interrupts"), "phase", None)  # None: Ctrl-C before
                print(f"interrupted during {phase() if phase else 'start-up: nothing was written'}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 130


def _main(argv: list[str] | None) -> int:
    from experiment.arguments import build_parser  # argparse only: --help answers at once

    command = argv is None  # this process is the command (not main() called inside another program)

    args = build_parser(__doc__).parse_args(argv)
    if args.study:
        args.config = f"study-{args.study}"
    if args.list:  # before any heavy import: reads files only (no torch), answers in well under a second
        return _list(args.config)
    trains = not (args.worker or args.dry_run or args.collect_only or args.list)
    if trains:
        from experiment.numerics_reexec import numerics_hint, pin_numerics

        # re-executes this process, or says why not
        problem = pin_numerics(numerics_hint(args.numerics, args.set, args.config), as_command=argv is None)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    from experiment import interrupts

    # Avalanche imports qpsolvers for GEM-style strategies, which warns that no QP solver is installed.
    warnings.filterwarnings("ignore", message="no QP solver found")
    with interrupts.held(say=not args.worker, at_once=command):  # torch, Avalanche, numpy: not safe to interrupt
        from benchmark.process_env import prepare_command

        prepare_command()  # nothing written outside --out and the cache (benchmark/process_env.py)
        import experiment.executors.local  # noqa: F401
    argv = sys.argv[1:] if argv is None else list(argv)
    args.argv = argv
    executor = _executor(args, argv, trains)
    try:  # --jobs helpers start once the configuration is validated (in _checked_main)
        return _checked_main(args, executor)
    finally:
        executor.close()


def _executor(args, argv: list[str], trains: bool):
    """The executor this command trains with: a --jobs helper's side, the process executor, or local."""
    from experiment.executors.local import LocalExecutor
    from experiment.executors.processes import (HelperExecutor, ProcessExecutor, executor_hint, jobs_hint,
                                               ray_address_hint, this_command)

    if args.worker:
        return HelperExecutor(args.worker)
    if args.rescore is not None:  # scores in this process; no helper, no cluster
        return LocalExecutor()
    if trains and executor_hint(args.executor, args.set, args.config) == "ray":
        from experiment.executors.ray import RayExecutor

        # joined at once (overlapping our imports and pre-flight) at the address asked for; a validated
        # address that differs from this early reading is reported by the executor
        return RayExecutor(ray_address_hint(args.ray_address, args.set, args.config), early=True)
    if trains:
        hint = jobs_hint(args.jobs, args.set, args.config)
        if hint > 1:
            return ProcessExecutor(this_command(argv), hint)
    return LocalExecutor()


def _checked_main(args, executor) -> int:
    # Scores come from evaluation/, after every task; Avalanche's own evaluator is left empty on purpose.
    warnings.filterwarnings("ignore", message="No loggers specified")
    # Imports are deferred so that --help and input errors answer at once.
    from benchmark.data.registry import DataError
    from experiment.config import ConfigError
    from strategies import SpecError

    try:
        if args.list:
            return _list()
        from experiment.arguments import resolve_config

        cfg = resolve_config(args)
        exp_dir = Path(args.out) / cfg["experiment"]
        if args.collect_only and not (exp_dir / "runs").is_dir():
            raise ConfigError(f"--collect-only: no experiment {cfg['experiment']!r} under {args.out} "
                              f"(there: {', '.join(_experiments(args.out)) or 'none'}); run it first")
        from experiment.guards import check_cache_writable, check_size, check_writable

        if args.gpus is not None:
            cfg["gpus"] = args.gpus  # the wall-clock estimate of --dry-run and of the plan-size refusal
        if trains_here(args):
            check_size(cfg, args.yes)
        if not args.dry_run:
            check_writable(args.out, cfg["experiment"], tensorboard=cfg["tensorboard"] and trains_here(args))
        if trains_here(args):
            check_cache_writable(cfg)
    except (ConfigError, SpecError, DataError) as e:
        if not args.worker:  # a helper's inputs are its parent's, which reports them
            print(f"error: {e}", file=sys.stderr)
        return 2
    executor.start(cfg["jobs"])  # --jobs helpers: only for a validated configuration, never more than it says
    if args.quiet or args.worker:
        log, bars = _DEVNULL, False
    elif sys.stderr.isatty() and not args.verbose:
        log, bars = _BarSafeStream(), True
    else:
        log, bars = sys.stderr, False
    from experiment.driver import run_experiment
    from experiment.dryrun import download_command

    try:
        if args.rescore is not None and not (args.dry_run or args.collect_only):
            from experiment.rescore import rescore_experiment

            try:
                return rescore_experiment(cfg, args.out, args.rescore or None, log, quiet=bool(args.quiet))
            except ConfigError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        code = run_experiment(cfg, args.out, executor, dry_run=args.dry_run, collect_only=args.collect_only, log=log,
                              bars=bars, worker=bool(args.worker), quiet=bool(args.quiet or args.worker),
                              started=T_START, retrain_stale=args.retrain_stale, command=download_command(args.argv))
    except OSError as e:
        from experiment.guards import file_problem

        line = file_problem(e)
        if line is None:
            raise
        from experiment import interrupts

        print(f"error: {line}; during {interrupts.phase()}", file=sys.stderr)  # what it means for the results
        return 2
    if code == 0 and not args.dry_run and not args.worker:
        from benchmark import profiling

        wall = time.perf_counter() - T_START
        if args.profile:
            print(profiling.table(wall), file=sys.stderr)
        print(f"finished in {_duration(wall)} (peak memory {profiling.peak_memory_line(executor.processes)}): "
              f"{Path(args.out) / cfg['experiment'] / 'report.md'}", file=sys.stderr)
    return code


_DEVNULL = open(os.devnull, "w")  # where --quiet sends the progress log


class _BarSafeStream:
    """A stderr for log lines that writes above the progress bars instead of through them."""

    def write(self, s: str) -> None:
        from tqdm import tqdm

        if s.strip():
            tqdm.write(s.rstrip("\n"), file=sys.stderr)

    def flush(self) -> None:
        sys.stderr.flush()


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def _experiments(out: Path) -> list[str]:
    out = Path(out)
    return sorted(p.name for p in out.iterdir() if (p / "runs").is_dir()) if out.is_dir() else []


def trains_here(args) -> bool:
    return not (args.worker or args.dry_run or args.collect_only)


def _list(config: str) -> int:
    """Strategies (description, hyperparameters with types, defaults and help), datasets and presets,
    and the strategy specs the preset `config` runs (its model-dependent choices, e.g. ldifs's lam)."""
    import json

    import yaml

    from experiment.presets import preset_path, presets
    from strategies.catalog import catalog, describe

    root = Path(__file__).resolve().parents[1]
    datasets = sorted(json.loads((root / "benchmark" / "assets" / "datasets.json").read_text(encoding="utf-8")))
    specs: dict[str, list[str]] = {}
    path = preset_path(config)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        print(f"error: --config {config}: cannot be read ({e})", file=sys.stderr)
        return 2
    for spec in cfg.get("strategies", []) if isinstance(cfg, dict) else []:
        text = spec if isinstance(spec, str) else ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        name = (spec.partition(":")[0] if isinstance(spec, str) else str(spec.get("name"))).strip()
        specs.setdefault(name, []).append(f"preset runs: {text} (--config {config}; model "
                                          f"{(cfg.get('model') or {}).get('name')})")
    for name, d in (cfg.get("strategy_defaults") or {}).items() if isinstance(cfg, dict) else []:
        specs.setdefault(name, []).insert(0, "default for this model: " + ",".join(f"{k}={v}" for k, v in d.items())
                                          + f" (strategy_defaults of --config {config})")
    print("strategies (hyperparameter (type) = default  # what it does; override with name:key=value):")
    print(describe(catalog(), specs))
    print("datasets:  ", ", ".join(datasets))
    print("presets:   ", ", ".join(presets()))
    if isinstance(cfg, dict) and cfg.get("strategies"):
        print(f"--config {config}: seeds {', '.join(map(str, cfg.get('seeds') or []))}; methods (paper label = "
              "strategy spec; head_init= is the method's own head initialisation):")
        for line in _preset_methods(cfg):
            print(f"  {line}")
    return 0


def _preset_methods(cfg: dict) -> list[str]:
    """'ZS-init-CE = ft:head_init=zs' for each strategy entry of a preset (read without importing torch)."""
    from strategies.catalog import method_label
    from strategies.spec import SpecError, parse_spec

    default = ((cfg.get("train") or {}).get("head_init") or "lp") if isinstance(cfg.get("train"), dict) else "lp"
    out = []
    for spec in cfg["strategies"]:
        try:
            name, params = parse_spec(spec) if isinstance(spec, str) else (str(spec.get("name")), dict(spec))
        except (SpecError, AttributeError):
            out.append(f"? = {spec!r} (not a strategy spec; the run reports what is wrong with it)")
            continue
        text = spec if isinstance(spec, str) else ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        out.append(f"{method_label(name, params.get('head_init', default))} = {text}")
    return out


def entry() -> None:
    """The `cfbench` console command (and `python run_benchmark.py`, `python -m experiment.cli`)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT was ignored
        signal.signal(signal.SIGINT, _interrupted)                      # (nohup, a background job)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a Ctrl-C between main()'s return and here (main's handler said the line)
        sys.exit(130)


if __name__ == "__main__":
    entry()
