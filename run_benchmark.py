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


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="run_benchmark.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python run_benchmark.py\n"
               "  python run_benchmark.py --strategies ft ldifs ldifs:lam=1,layers=last --seeds 0 1 2\n"
               "  python run_benchmark.py --orderings mnist,animals animals,mnist --set train.epochs=3\n"
               "  python run_benchmark.py --collect-only          # rebuild tables and plots, train nothing\n")
    ap.add_argument("--config", default="micro", metavar="PRESET|FILE",
                    help="preset name in configs/ or a YAML file (default: micro)")
    ap.add_argument("--strategies", nargs="+", metavar="SPEC",
                    help="strategies to run: NAME or NAME:key=value,... (e.g. ldifs:lam=1,anchor=pretrained)")
    ap.add_argument("--orderings", nargs="+", metavar="A,B,C",
                    help="task orderings, each a comma-separated list of dataset names")
    ap.add_argument("--seeds", nargs="+", type=int, metavar="N", help="seeds (one run per seed)")
    ap.add_argument("--suite", nargs="+", metavar="DATASET", help="datasets scored after every step")
    ap.add_argument("--out", default="results", type=Path, help="results root (default: results/)")
    ap.add_argument("--experiment", help="experiment name: the folder under --out (default: from the config)")
    ap.add_argument("--epochs", type=int, help="epochs per task (shortcut for --set train.epochs=N)")
    ap.add_argument("--device", help="torch device, e.g. cpu or cuda (default: from the config)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config key, e.g. --set train.lr=3e-5 --set data.max_train=500")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (run ids, done or to do) and exit")
    ap.add_argument("--data-root", metavar="DIR", help="folder holding the paper datasets (= --set data.root=DIR)")
    ap.add_argument("--download", action="store_true",
                    help="fetch the datasets torchvision can download, and open_clip weights (= --set data.download=true)")
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
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)  # k > 0: the k-th --jobs child
    ap.add_argument("--profile", action="store_true",
                    help="print where the wall time went (start-up, model load, step-0 scores, training, "
                         "evaluation, writes, collection) and the peak memory")
    return ap


def resolve_config(args) -> dict:
    from benchmark import config as C

    cfg = C.load_preset(args.config)
    if args.strategies:
        cfg["strategies"] = args.strategies
    if args.orderings:
        cfg["orderings"] = args.orderings
    if args.seeds is not None:
        cfg["seeds"] = args.seeds
    if args.suite:
        cfg["suite"] = args.suite
    if args.experiment:
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
    for s in args.set:
        C.set_dotted(cfg, s)
    return C.validate(cfg)


_processes = 1  # processes that trained (this one and the --jobs helpers it sent "go")

# What Ctrl-C means for the results at the point it comes: said in the one line printed then.
_phase = "start-up: nothing was written"


def main(argv: list[str] | None = None) -> int:
    global _phase, T_START
    from benchmark import profiling

    T_START = time.perf_counter()
    profiling.reset()
    global _processes
    _processes = 1
    _phase = "start-up: nothing was written"
    try:
        return _main(argv)
    except KeyboardInterrupt:
        if "--worker" not in (sys.argv if argv is None else argv):  # a helper's parent says it once
            print(f"interrupted during {_phase}", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.worker or args.dry_run or args.collect_only or args.list):
        problem = _pin_numerics(args, as_command=argv is None)  # re-executes this process, or says why not
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    argv = sys.argv[1:] if argv is None else list(argv)
    # Helper processes for --jobs start now, so that their imports overlap ours; each waits for our
    # "go" (sent once the inputs are checked) and leaves quietly without it.
    children = [] if args.worker or args.dry_run or args.collect_only or args.list else _start_workers(args, argv)
    try:
        return _checked_main(args, children)
    finally:
        for c in children:
            _release(c)
        for c in children:
            c.wait()


def _checked_main(args, children: list) -> int:
    # Avalanche imports qpsolvers for GEM-style strategies and warns that no QP solver is installed.
    warnings.filterwarnings("ignore", message="no QP solver found")
    # Scores come from evaluation/, after every task; Avalanche's own evaluator is left empty on purpose.
    warnings.filterwarnings("ignore", message="No loggers specified")
    # Imports are deferred so that --help and input errors answer at once.
    from benchmark.config import ConfigError
    from benchmark.data.registry import DataError
    from strategies import SpecError

    try:
        if args.list:
            return _list()
        cfg = resolve_config(args)
        exp_dir = Path(args.out) / cfg["experiment"]
        if args.collect_only and not (exp_dir / "runs").is_dir():
            raise ConfigError(f"--collect-only: no experiment {cfg['experiment']!r} under {args.out} "
                              f"(there: {', '.join(_experiments(args.out)) or 'none'}); run it first")
        if not args.dry_run:
            check_writable(args.out)
    except (ConfigError, SpecError, DataError) as e:
        if not args.worker:  # a helper's inputs are its parent's, which reports them
            print(f"error: {e}", file=sys.stderr)
        return 2
    if args.quiet or args.worker:
        log, bars = _DEVNULL, False
    elif sys.stderr.isatty() and not args.verbose:
        log, bars = _BarSafeStream(), True
    else:
        log, bars = sys.stderr, False
    code = run(cfg, args.out, dry_run=args.dry_run, collect_only=args.collect_only, log=log, bars=bars,
               children=children, worker=args.worker)
    if code == 0 and not args.dry_run and not args.worker:
        from benchmark import profiling

        wall = time.perf_counter() - T_START
        if args.profile:
            print(profiling.table(wall), file=sys.stderr)
        print(f"finished in {_duration(wall)} (peak memory {profiling.peak_memory_line(_processes)}): "
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


def check_writable(out: Path) -> None:
    """Fail before any training if results cannot be written where asked."""
    from benchmark.config import ConfigError

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot write results there ({e.strerror or e}); "
                          "choose a writable folder") from None


def _list() -> int:
    import strategies
    from benchmark.config import presets
    from benchmark.datasets import known_datasets

    print("strategies:", ", ".join(strategies.available()))
    print("datasets:  ", ", ".join(known_datasets()))
    print("presets:   ", ", ".join(presets()))
    return 0


def run(cfg: dict, out: Path, dry_run: bool = False, collect_only: bool = False, log=None, bars: bool = False,
        children: list | None = None, worker: int = 0) -> int:
    """Plan, train what is missing, collect. `children`: --jobs helpers waiting for "go"; `worker` > 0:
    this process is such a helper (it trains and leaves the tables to its parent)."""
    global _phase
    from benchmark.config import plan
    from evaluation.collect import MAIN_COLS, collect
    from evaluation.records import check_run, clean_stale

    exp_dir = Path(out) / cfg["experiment"]
    runs = plan(cfg)
    states = {r["run_id"]: check_run(exp_dir / "runs" / r["run_id"]) for r in runs}
    todo = [r for r in runs if states[r["run_id"]] is not None]
    log = sys.stderr if log is None else log
    summary = (f"experiment {cfg['experiment']}: {len(runs)} runs planned, {len(runs) - len(todo)} already done, "
               f"{len(todo)} to run -> {exp_dir}")
    if dry_run:
        from benchmark.dryrun import describe

        print(summary, file=log)
        for r in runs:
            state = "todo" if r in todo else "done"
            print(f"  {r['run_id']}  {state}  {r['strategy']}  {','.join(r['ordering'])}  seed {r['seed']}")
        print(describe(cfg, runs))
        return 0
    from benchmark.cache import cache_dir
    from evaluation.records import stranded_temp_files

    for p in clean_stale(exp_dir):
        print(f"removed {p.relative_to(exp_dir)}, left by a process that was killed", file=log)
    for p in stranded_temp_files(cache_dir()) if cache_dir().is_dir() else []:
        p.unlink(missing_ok=True)
    if not collect_only and todo:
        from benchmark.runner import Resources

        import strategies
        from benchmark.models import TaskModel, text_side

        from benchmark.data import check_available
        from benchmark.models import check_weights

        from benchmark.config import device_problem

        # Everything that is missing, in one report, before any training.
        d = cfg["data"]
        missing = [p for p in [device_problem(cfg["device"]), _numerics_problem(cfg["numerics"])] if p]
        missing += check_available(cfg["suite"], d["root"], d["download"], d.get("variants")) + check_weights(cfg["model"], d["download"])
        if missing:
            for line in missing if not worker else []:
                print(f"error: {line}", file=sys.stderr)
            return 2
        res = Resources()
        m = cfg["model"]
        try:  # load once up front, so that unreachable weights fail before any run starts
            fm = res.model(m, cfg["device"])
        except (RuntimeError, OSError, ValueError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"error: cannot load model {m['name']} with pretrained={m.get('pretrained')!r}: {reason}. "
                  "Weights other than 'packaged' must be downloadable or already in open_clip's cache.", file=sys.stderr)
            return 2
        try:  # and hyperparameters that depend on the model (e.g. LDIFS layer indices) before training
            probe_model = TaskModel(fm.visual, fm.embed_dim, text=text_side(fm))
            for spec in cfg["strategies"]:
                strategies.from_config(spec).plugins(probe_model)
        except strategies.SpecError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(summary, file=log)
        _count_start_up()
        if worker and sys.stdin.readline().strip() != "go":
            return 0  # the parent stopped before training, or has fewer runs than helpers
        children = list(children or [])[:max(0, min(cfg["jobs"], len(todo)) - 1)]
        for c in children:
            _release(c, go=True)
        global _processes
        _processes = 1 + len(children)
        try:
            # Process k starts at the plan's k-th run (and wraps around): the processes then take turns
            # along the plan, so each gets a share of every strategy instead of one all the slow ones.
            start = worker % len(todo)
            train_all(todo[start:] + todo[:start], exp_dir, res, log, bars, tensorboard=cfg["tensorboard"])
        finally:
            failed = [c.wait() for c in children]
        if any(failed):
            print(f"error: {sum(1 for c in failed if c)} of the {len(children)} helper processes failed "
                  "(their error is above); finished runs are kept, rerun to finish the rest", file=sys.stderr)
            return 1
        if worker:
            return 0
    else:
        if worker:
            return 0
        print(summary, file=log)
        _count_start_up()
    _phase = "collection: every finished run is kept; rebuild the tables with --collect-only"
    from benchmark.profiling import phase

    with phase("collection (tables, plots)"):
        df = collect(exp_dir)
    if len(df) and log is not _DEVNULL:
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
            print(df[["strategy", "ordering", "seed"] + MAIN_COLS].to_string(index=False))
    print(f"leaderboard: {exp_dir / 'leaderboard.csv'}  plots: {exp_dir / 'plots'}", file=log)
    return 0


def _numerics_problem(setting: str) -> str | None:
    """Why this process cannot train with `setting` (one line), or None."""
    from benchmark import numerics

    if numerics.setting_in_place(setting):
        return None
    wanted = " ".join(f"{k}={v}" for k, v in numerics.SETTINGS[setting].items())
    return (f"numerics {setting} needs {wanted} in the environment before torch starts; run run_benchmark.py as "
            "a command (it re-executes itself with them), or set them beforehand")


def _jobs_hint(args) -> int:
    """The number of processes asked for, read before the configuration is validated (so that helpers
    can start at once): --jobs, else a --set jobs=N, else the YAML's `jobs`. The validated value is
    the one that counts; a wrong hint only starts helpers that are sent away."""
    if args.jobs is not None:
        return args.jobs
    for s in reversed(args.set):
        if s.startswith("jobs="):
            try:
                return int(s[5:])
            except ValueError:
                return 1
    import yaml

    from benchmark.presets import preset_path

    try:
        jobs = (yaml.safe_load(preset_path(args.config).read_text(encoding="utf-8")) or {}).get("jobs", 1)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return 1
    return jobs if isinstance(jobs, int) and not isinstance(jobs, bool) else 1


def _numerics_hint(args) -> str:
    """The `numerics` setting asked for, read as resolve_config() will (the last --set numerics=, else
    --numerics, else the YAML's), before the configuration is validated and before torch is imported.
    Validation checks the value; run() refuses to train if the environment does not match it."""
    import yaml

    for s in reversed(args.set):
        if s.startswith("numerics="):
            try:
                return str(yaml.safe_load(s[len("numerics="):]))
            except yaml.YAMLError:
                return "native"
    if args.numerics is not None:
        return args.numerics
    from benchmark.presets import preset_path

    try:
        value = (yaml.safe_load(preset_path(args.config).read_text(encoding="utf-8")) or {}).get("numerics", "native")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return "native"
    return str(value)


def _pin_numerics(args, as_command: bool) -> str | None:
    """For `numerics: portable`: the kernels are chosen when torch and MKL start, from the environment,
    so this process re-executes itself (same interpreter, options and arguments) with the setting's
    variables, once. Returns why that failed (one line), or None: nothing to do, or (in-process calls of
    main(argv), which are not ours to replace) left to run()'s check."""
    from benchmark import numerics

    setting = _numerics_hint(args)
    if setting not in numerics.SETTINGS or numerics.setting_in_place(setting):
        return None  # nothing to pin (an unknown name is validation's to report)
    wanted = " ".join(f"{k}={v}" for k, v in numerics.SETTINGS[setting].items())
    if os.environ.get(numerics.REEXEC_MARKER) == str(os.getpid()):  # exec keeps the pid: this is the re-execution
        return (f"numerics {setting}: re-executed with {wanted}, but the environment lost them; "
                "is something resetting the environment at start-up?")
    if not as_command or "torch" in sys.modules:  # main(argv) called in-process: not ours to replace;
        return None                               # run() refuses to train without the environment
    env = numerics.setting_env(setting)
    env[numerics.REEXEC_MARKER] = str(os.getpid())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, list(sys.orig_argv), env)
    return None  # not reached


def _start_workers(args, argv: list[str]) -> list:
    """jobs - 1 more processes of this command that train runs from the same plan (each run's lock gives
    it to exactly one process) once they read "go" on their stdin. Only this process prints progress
    and writes the tables."""
    import subprocess

    n = min(_jobs_hint(args), 256)
    if n <= 1:
        return []
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--jobs", str(n)]
    return [subprocess.Popen([*cmd, "--worker", str(k)], stdin=subprocess.PIPE, text=True) for k in range(1, n)]


def _release(child, go: bool = False) -> None:
    """Send a waiting helper "go"; or (go=False) stop it: it has not trained or written anything yet
    (it is importing, or waiting), and whatever of its start-up it leaves is what a kill may leave."""
    if child.stdin is None or child.stdin.closed:
        return
    try:
        if go:
            child.stdin.write("go\n")
        child.stdin.close()
    except (BrokenPipeError, OSError):  # it has already left
        pass
    if not go:
        child.kill()


def _count_start_up() -> None:
    """Everything from the process's start to the first run that no phase timed: imports, the
    configuration, the availability checks."""
    from benchmark import profiling

    timed = sum(s for s, _ in profiling.snapshot().values())
    profiling.add("start-up (imports, config)", time.perf_counter() - T_START - timed)


def train_all(todo: list[dict], exp_dir: Path, res, log, bars: bool = False, tensorboard: bool = False) -> None:
    """Train every run of `todo` that no other process is training. A run another process holds is
    waited for after ours; if that process died without finishing it, it is trained here."""
    global _phase
    from benchmark.runner import execute_run
    from tqdm import tqdm

    from evaluation.records import RunLock, check_run, unmark_done

    t0 = time.time()
    progress = tqdm(total=len(todo), unit="run", desc="runs", position=0, file=sys.stderr, disable=not bars)

    def attempt(k: int, r: dict, blocking: bool) -> bool:
        global _phase
        run_dir = exp_dir / "runs" / r["run_id"]
        lock = RunLock(run_dir)
        if not lock.acquire(blocking=blocking):
            return False
        try:
            why = check_run(run_dir)
            if why is None:  # another process finished it while we waited
                progress.update(1)
                return True
            if (run_dir / "done").exists():
                print(f"run {r['run_id']}: {why}; training it again", file=sys.stderr)
            unmark_done(run_dir)
            label = f"[{k}/{len(todo)} {r['strategy']['name']} {'>'.join(r['ordering'])} s{r['seed']}]"
            _phase = (f"run {r['run_id']}: finished runs are kept; this one has no done marker and reruns "
                      "from the start next time")
            tb = exp_dir / "tensorboard" / r["run_id"] if tensorboard else None
            if tb is not None and tb.exists():  # a rerun of an interrupted run: its curves start afresh
                import shutil

                shutil.rmtree(tb)
            execute_run(r, run_dir, res, label=label, log=log, bars=bars, tensorboard_dir=tb)
            print(f"{label} done: run {r['run_id']} ({time.time() - t0:.0f}s elapsed)", file=log, flush=True)
            progress.update(1)
            return True
        finally:
            lock.release()

    busy = [(k, r) for k, r in enumerate(todo, 1) if not attempt(k, r, blocking=False)]
    for k, r in busy:
        print(f"run {r['run_id']} is being trained by another process (a --jobs helper, or another command on "
              "this experiment); waiting for it", file=log, flush=True)
        _phase = "a wait for another process's run: every finished run is kept"
        attempt(k, r, blocking=True)
    progress.close()


if __name__ == "__main__":
    sys.exit(main())
