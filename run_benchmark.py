#!/usr/bin/env python
"""Continual fine-tuning benchmark: train strategies on task orderings, score concept forgetting.

With no argument it runs the embedded micro preset (configs/micro.yaml): plain fine-tuning and
LDIFS on mnist then fashion_mnist, scored on those and two held-out datasets (textures, photos),
on the CPU, offline, in about a minute. `--config micro-evidence` (= `--seeds 4 5 6 7 8 9`) runs the
six-seed preset whose intervals show the effect on any x86-64 CPU (docs/micro_evidence.md).
Finished runs are skipped on a rerun; results/<experiment>/leaderboard.csv and plots/ are rebuilt
from the record files every time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

T_START = time.perf_counter()  # the profile's start-up phase counts from here (reset by main())


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every other input error
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def _out_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name the results folder, e.g. --out results")
    return Path(text)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="run_benchmark.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python run_benchmark.py\n"
               "  python run_benchmark.py --strategies ft ldifs:lam=30 ldifs:lam=30,layers=last --seeds 0 1 2\n"
               "  python run_benchmark.py --orderings mnist,animals animals,mnist --set train.epochs=3\n"
               "  python run_benchmark.py --collect-only          # rebuild tables and plots, train nothing\n"
               "  python run_benchmark.py --list --config paper-continual   # strategies, defaults, the preset's choices\n"
               "\nordering expressions (--orderings, or `orderings:` in a config; one item each):\n"
               "  a,b,c              one ordering: train on a, then b, then c\n"
               "  perm:a,b,c         every permutation of the listed datasets (6 orderings here; at most 120)\n"
               "  random:K           K distinct random orderings of all the suite's datasets\n"
               "  random:K:a,b,c,d   K distinct random orderings of the listed datasets\n"
               "                     (random orderings are drawn with the first seed: same seeds, same orderings)\n"
               "  reverse            adds the reverse of every ordering the other items give\n"
               "  e.g. --orderings mnist,fashion_mnist reverse   (both orders of the pair)\n")
    ap.add_argument("--config", default="micro", metavar="PRESET|FILE",
                    help="preset name in configs/ or a YAML file (default: micro)")
    ap.add_argument("--study", choices=("layers", "lambda", "orderings"),
                    help="run one of the paper's open questions: = --config study-NAME (configs/study-*.yaml); "
                         "report.md gets its section")
    ap.add_argument("--strategies", nargs="+", metavar="SPEC",
                    help="strategies to run: NAME or NAME:key=value,... (e.g. ldifs:lam=1,anchor=pretrained)")
    ap.add_argument("--orderings", nargs="+", metavar="A,B,C",
                    help="task orderings, each a comma-separated list of dataset names")
    ap.add_argument("--seeds", nargs="+", type=int, metavar="N", help="seeds (one run per seed)")
    ap.add_argument("--suite", nargs="+", metavar="DATASET", help="datasets scored after every step")
    ap.add_argument("--out", default="results", type=_out_path, help="results root (default: results/)")
    ap.add_argument("--experiment", help="experiment name: the folder under --out (default: from the config)")
    ap.add_argument("--epochs", type=int, help="epochs per task (shortcut for --set train.epochs=N)")
    ap.add_argument("--device", help="torch device, e.g. cpu or cuda (default: from the config)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config key, e.g. --set train.lr=3e-5 --set data.max_train=500")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (run ids, done or to do) and exit")
    ap.add_argument("--data-root", metavar="DIR", help="folder holding the paper datasets (= --set data.root=DIR)")
    ap.add_argument("--download", action="store_true",
                    help="fetch the datasets torchvision can download, and open_clip weights (= --set data.download=true)")
    ap.add_argument("--retrain-stale", action="store_true",
                    help="retrain the done runs whose code (their strategy's file or the package's source: "
                         "evaluation/code_version.py) changed since they ran; without it they are reused, with a warning")
    ap.add_argument("--collect-only", action="store_true", help="only rebuild leaderboard and plots from records")
    ap.add_argument("--list", action="store_true", help="list strategies, datasets and presets, then exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only errors, warnings and where results went")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="plain log lines even on a terminal (no progress bars); the default on a pipe or in CI")
    ap.add_argument("--tensorboard", action="store_true",
                    help="log training loss curves through Avalanche's TensorBoard logger to "
                         "<out>/<experiment>/tensorboard/<run id>/ (= --set tensorboard=true)")
    ap.add_argument("--jobs", type=int, metavar="N",
                    help="train with N processes that share out the runs (each uses `threads` CPU threads: "
                         "keep N x threads within the cores); results are the same as with one "
                         "(default: the config's jobs, 1 if it has none; = --set jobs=N)")
    ap.add_argument("--numerics", choices=("native", "portable"),
                    help="CPU numeric path: native (the kernels this CPU offers) or portable (the lowest common "
                         "ones, so that machines with other vector extensions give the same records; slower, "
                         "needs threads 1; re-executes this command with its environment) "
                         "(default: the config's numerics, native if it has none; = --set numerics=NAME)")
    ap.add_argument("--executor", choices=("local", "ray"),
                    help="local: this process (and --jobs helpers); ray: Ray tasks on a Ray cluster, one run each "
                         "(see README, 'Running on a cluster') (default: the config's executor.kind; "
                         "= --set executor.kind=NAME)")
    ap.add_argument("--ray-address", metavar="ADDR",
                    help="the Ray cluster to train on: host:port of its head, or auto for the one running here "
                         "(default: start a local Ray instance; = --set executor.address=ADDR)")
    ap.add_argument("--gpus", type=int, metavar="N",
                    help="with --dry-run: also estimate the wall-clock time on N GPUs (runs longest first)")
    from experiment.guards import MAX_UNASKED_RUNS

    ap.add_argument("--yes", action="store_true",
                    help=f"train a plan of more than {MAX_UNASKED_RUNS} runs (without it such a plan prints its size and stops)")
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)  # k > 0: the k-th --jobs child
    ap.add_argument("--profile", action="store_true",
                    help="print where the wall time went (start-up, model load, step-0 scores, training, "
                         "evaluation, writes, collection) and the peak memory")
    return ap


def resolve_config(args) -> dict:
    from experiment import config as C

    cfg = C.load_preset(args.config)
    if args.strategies:
        cfg["strategies"] = args.strategies
    if args.orderings:
        cfg["orderings"] = args.orderings
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.suite:
        cfg["suite"] = args.suite
    if args.experiment is not None:
        cfg["experiment"] = args.experiment
    if args.epochs is not None:
        cfg.setdefault("train", {})["epochs"] = args.epochs
    if args.device:
        cfg["device"] = args.device
    if args.data_root:
        cfg.setdefault("data", {})["root"] = args.data_root
    if args.download:
        cfg.setdefault("data", {})["download"] = True
    if args.tensorboard:
        cfg["tensorboard"] = True
    if args.jobs is not None:
        cfg["jobs"] = args.jobs
    if args.numerics is not None:
        cfg["numerics"] = args.numerics
    if args.executor is not None:
        cfg.setdefault("executor", {})["kind"] = args.executor
    if args.ray_address is not None:
        cfg.setdefault("executor", {})["address"] = args.ray_address
    for s in args.set:
        C.set_dotted(cfg, s)
    if args.gpus is not None and args.gpus < 1:
        raise C.ConfigError(f"--gpus {args.gpus}: give at least 1 GPU")
    return C.validate(cfg)


def main(argv: list[str] | None = None) -> int:
    global T_START
    from benchmark import profiling
    from experiment import interrupts

    T_START = time.perf_counter()
    profiling.reset()
    interrupts.reset()
    try:
        return _main(argv)
    except BrokenPipeError:  # `... | head -1`: the reader has gone; say nothing more
        try:  # what is still buffered goes nowhere, instead of a second BrokenPipeError at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except KeyboardInterrupt:
        import signal

        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: still this line and 130
        try:
            if "--worker" not in (sys.argv if argv is None else argv):  # a helper's parent says it once
                print(f"interrupted during {interrupts.phase()}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, previous)
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.study:
        args.config = f"study-{args.study}"
    if args.list:  # before any heavy import: reads files only (no torch), answers in well under a second
        return _list(args.config)
    trains = not (args.worker or args.dry_run or args.collect_only or args.list)
    if trains:
        from experiment.numerics_setting import numerics_hint, pin_numerics

        # re-executes this process, or says why not
        problem = pin_numerics(numerics_hint(args.numerics, args.set, args.config), as_command=argv is None)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
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
    if trains and executor_hint(args.executor, args.set, args.config) == "ray":
        from experiment.executors.ray import RayExecutor

        # joined at once (overlapping our imports and pre-flight) at the address asked for; a validated
        # address that differs from this early reading is reported by the executor
        return RayExecutor(ray_address_hint(args.ray_address, args.set, args.config), early=True)
    if trains:
        hint = jobs_hint(args.jobs, args.set, args.config)
        if hint > 1:
            return ProcessExecutor(this_command(__file__, argv), hint)
    return LocalExecutor()


def _checked_main(args, executor) -> int:
    # Avalanche imports qpsolvers for GEM-style strategies and warns that no QP solver is installed.
    warnings.filterwarnings("ignore", message="no QP solver found")
    # Scores come from evaluation/, after every task; Avalanche's own evaluator is left empty on purpose.
    warnings.filterwarnings("ignore", message="No loggers specified")
    # Imports are deferred so that --help and input errors answer at once.
    from benchmark.data.registry import DataError
    from experiment.config import ConfigError
    from strategies import SpecError

    try:
        if args.list:
            return _list()
        cfg = resolve_config(args)
        exp_dir = Path(args.out) / cfg["experiment"]
        if args.collect_only and not (exp_dir / "runs").is_dir():
            raise ConfigError(f"--collect-only: no experiment {cfg['experiment']!r} under {args.out} "
                              f"(there: {', '.join(_experiments(args.out)) or 'none'}); run it first")
        from experiment.guards import check_size, check_writable

        if trains_here(args):
            check_size(cfg, args.yes)
        if not args.dry_run:
            check_writable(args.out, cfg["experiment"])
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

    if args.gpus is not None:
        cfg["gpus"] = args.gpus  # --dry-run's wall-clock estimate
    try:
        code = run_experiment(cfg, args.out, executor, dry_run=args.dry_run, collect_only=args.collect_only, log=log,
                              bars=bars, worker=bool(args.worker), quiet=bool(args.quiet or args.worker),
                              started=T_START, retrain_stale=args.retrain_stale, command=download_command(args.argv))
    except OSError as e:
        from experiment.guards import file_problem

        line = file_problem(e)
        if line is None:
            raise
        print(f"error: {line}; finished runs are kept, the one being written has no done marker and is redone",
              file=sys.stderr)
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

    root = Path(__file__).resolve().parent
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
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # a Ctrl-C that lands outside main()'s handler (e.g. a second one in it)
        sys.exit(130)
