"""Rehearse a paper preset end to end on the CPU, with tiny data and random weights.

    python scripts/rehearse_paper.py --config paper-single --out DIR
    python scripts/rehearse_paper.py --config paper-continual --out DIR
    python scripts/rehearse_paper.py --config paper-single --out DIR --datasets MNIST SVHN --strategies ft ldifs

For CI and for a user checking a new machine before spending GPU hours. It

1. writes every dataset of the preset's suite under DIR/data in its real on-disk format
   (benchmark/data/writers.py: pickles, idx and .mat files, JPEG/PPM folders, split and partition
   lists, devkit annotations), a few images per class, for every layout the preset's `data.variants`
   read (EuroSAT's fixed folders, DTD's train list, ...);
2. runs the preset itself through the command (`cfbench --config PRESET`), every method it lists, one
   seed, with overrides in `--set` form only: the data root, random weights (`model.pretrained=null`)
   in the architecture the preset's weights need (ViT-B/32 with QuickGELU for openai's: the
   `-quickgelu` open_clip config), a small input size, one epoch of a few steps per task, fewer probe
   steps, a small drift sample, the CPU. Everything else is the preset's: its methods and head
   initialisations, the reference probe with its learning-rate grid and refits, the checkpoint
   choice, the splits and variants, zero-shot heads from the registry's real templates and class
   names, and the collection (records, tables.md, plots, report.md in DIR/<experiment>/);
3. checks that every planned run is done and that the collection wrote its files, and prints the
   wall and CPU time.

torchvision checks the MD5 of the real CIFAR, SVHN and Flowers-102 files; the written ones differ, so the
checksums are switched off while the command runs (`writers.unchecked_torchvision_files`), which holds in
one process only: cfbench's own `--jobs` helpers would be new interpreters with the checks on. So the
rehearsal runs the plan in `--workers` processes of its own (default 2): this one runs the command as
usual (`--jobs 1`: its progress, the collection), each other one is this script started again as a
worker that switches the checks off and then does what cfbench's `--jobs` helper does
(experiment/helper.py) on the same experiment; a run's lock gives each run to one process. A worker's lines are printed with
the prefix `worker K:`; a worker that fails makes the rehearsal fail; Ctrl-C stops them all.

Exit status: 0 when everything ran and was written; 1 when a run or an output is missing; 2 on bad
input (one line).

Longer than 300 lines because it is one command's whole path (options, data and reference set, the
cfbench command line, its workers, the checks of every output): split, each part would be a module of
one caller.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Before torch starts: OpenMP threads that wait for work sleep instead of spinning. It changes no
# number; on a machine shared with other jobs, the probes' thousands of tiny steps on two spinning
# threads were measured 27 times slower (110 ms a step against 4).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MARKER = ".rehearsal"  # in DIR/data: the folder is the rehearsal's own and may be rewritten
WORKER = "--worker"  # argv[1] of a worker process: `rehearse_paper.py --worker K CFBENCH-ARGS...`


class RehearsalError(ValueError):
    """Bad input: one line saying what is wrong and what to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every other input error
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def parse_args(argv: list[str] | None):
    ap = _Parser(prog="rehearse_paper.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="paper-single", help="the preset to rehearse (default: paper-single)")
    ap.add_argument("--out", required=True, type=Path, help="folder for the data (DIR/data) and results (DIR/<experiment>)")
    ap.add_argument("--datasets", nargs="+", metavar="NAME",
                    help="a reduced suite (default: the preset's); orderings keep their datasets in it")
    ap.add_argument("--strategies", nargs="+", metavar="SPEC", help="a subset of methods (default: the preset's)")
    ap.add_argument("--images-per-class", type=int, default=2, help="training images per class (default 2)")
    ap.add_argument("--classes", type=int, default=10,
                    help="datasets with more classes than this get one training image a class (default 10)")
    ap.add_argument("--image-size", type=int, default=32, help="input size of the model (default 32: one patch)")
    ap.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32: 1-3 steps a task)")
    ap.add_argument("--iterations", type=int, default=2,
                    help="steps a task for presets that count steps, not epochs (MTIL's train.iterations; default 2)")
    ap.add_argument("--probe-steps", type=int, default=10, help="steps of each reference probe fit (default 10)")
    ap.add_argument("--templates", type=int, default=2,
                    help="prompt templates a dataset for the zero-shot heads, the registry's first ones "
                         "(data.max_templates; default 2; 0: all)")
    ap.add_argument("--drift", type=int, default=2, help="test images per dataset for feature drift (default 2; 0: none)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes that share out the runs (default: 2, or 1 on one core)")
    ap.add_argument("--threads", type=int,
                    help="CPU threads of each process (default: the cores shared out among the workers; 0 is all cores)")
    ap.add_argument("--profile", action="store_true", help="print where the runs' time went (cfbench --profile)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines from the runs")
    args = ap.parse_args(argv)
    for key in ("images_per_class", "classes", "image_size", "batch_size", "iterations", "probe_steps", "workers"):
        if getattr(args, key) < 1:
            raise RehearsalError(f"--{key.replace('_', '-')} {getattr(args, key)}: give a positive number")
    for key in ("templates", "drift"):
        if getattr(args, key) < 0:
            raise RehearsalError(f"--{key} {getattr(args, key)}: give 0 or a positive number")
    return args


def reduced(preset: dict, datasets: list[str] | None) -> tuple[list[str], list[list[str]]]:
    """The suite and orderings of the rehearsal: the preset's, or those restricted to `datasets`."""
    suite = list(preset["suite"])
    orderings = [list(o) if not isinstance(o, str) else o.split(",") for o in preset["orderings"]]
    if not datasets:
        return suite, orderings
    outside = [d for d in datasets if d not in suite]
    if outside:
        raise RehearsalError(f"--datasets {' '.join(outside)}: not in the suite of this preset ({', '.join(suite)})")
    keep = [d for d in suite if d in datasets]
    kept: list[list[str]] = []
    for o in orderings:
        o = [d for d in o if d in keep]
        if o and o not in kept:
            kept.append(o)
    if not kept:
        kept = [[keep[0]]]
    return keep, kept


def model_overrides(model: dict) -> list[str]:
    """Random weights in the architecture the preset's weights need: open_clip builds ViT-B/32 with
    plain GELU unless told that the weights are openai's (QuickGELU); the `-quickgelu` config is it."""
    import open_clip

    from benchmark.models import available_models

    name, tag = model["name"], model.get("pretrained")
    sets = ["model.pretrained=null"]
    quick = False
    if tag and not Path(str(tag)).expanduser().is_file():
        quick = bool((open_clip.get_pretrained_cfg(name, tag) or {}).get("quick_gelu", False))
    if quick and not name.endswith("-quickgelu"):
        if f"{name}-quickgelu" not in available_models():
            raise RehearsalError(f"model {name} with {tag} weights needs QuickGELU, and open_clip has no "
                                 f"{name}-quickgelu config to build it with random weights")
        sets.append(f"model.name={name}-quickgelu")
    return sets


def _last_class_kept(name: str, k: int, per_class: int, dcfg: dict) -> bool:
    """Whether the training part of `name` still holds its highest label when the preset carves a validation
    part out of a train split of `per_class` images for each of `k` classes (a head is sized by the highest
    label its training split holds: CIFAR100 with one image a class loses class 99 to seed 0's 10%)."""
    from benchmark.data import entry
    from benchmark.data.splits import train_val_split

    e = entry(name, (dcfg.get("variants") or {}).get(name))
    fraction = dcfg.get("val_fraction", 0.1)
    if e.get("val") != "from_train" or not fraction or "fixed_split" in e:
        return True
    tr, _ = train_val_split(k * per_class, fraction, dcfg.get("val_cap", 20000))
    return bool(len(tr)) and int(tr.max()) // per_class == k - 1


def write_data(root: Path, suite: list[str], args, val: int = 1, dcfg: dict | None = None) -> dict[str, int]:
    """Every dataset of the suite under `root` in its real format; {dataset: images written}. `val`: validation
    images a class where the format has a validation split (0 when the preset reads none: MTIL's
    val_fraction 0, so Caltech101's and EuroSAT's pools hold train and test images only)."""
    from benchmark.data import is_micro, writers

    dcfg = dcfg or {}
    if root.exists():
        if not (root / MARKER).exists():
            raise RehearsalError(f"{root} exists and was not written by a rehearsal; give another --out")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("written by scripts/rehearse_paper.py; removed and rewritten by the next rehearsal\n")
    counts = {}
    for name in suite:
        if is_micro(name):
            continue  # embedded in the repository
        if name not in writers.WRITERS:
            raise RehearsalError(f"dataset {name} has no writer in benchmark/data/writers.py (WRITERS); add one")
        # Every class gets images, as in the real data: Avalanche sizes a task's head by the labels its
        # training split holds, so a class without images would give a head smaller than the zero-shot one.
        k = writers.n_classes_written(name, writers.Tiny())
        train = 1 if k > args.classes else args.images_per_class
        while not _last_class_kept(name, k, train, dcfg) and train < 4:
            train += 1  # the validation part carved from the train split took the last class's only images
        tiny = writers.Tiny(per_class={"train": train, "val": val, "test": 1})
        w = writers.write(name, root, tiny)
        counts[name] = sum(len(v) for v in w.labels.values())
    return counts


def write_references(root: Path, argv: list[str]) -> list[str]:
    """The reference sets that the planned strategies read from files (zscl's ImageNet folder and captions
    file), under `root`, and any on-disk dataset they name that the suite does not hold; what was written."""
    from benchmark.data import is_micro, writers
    from experiment.arguments import build_parser, resolve_config
    from experiment.config import ConfigError

    try:
        cfg = resolve_config(build_parser().parse_args(argv))
    except ConfigError as e:
        raise RehearsalError(str(e)) from None
    wrote: list[str] = []
    for s in cfg["strategies"]:
        if "ref_images" not in s or "ref_texts" not in s:
            continue
        wrote += [w for w in writers.write_reference_set(root, s["ref_images"], s["ref_texts"]) if w not in wrote]
        for spec in (s["ref_images"], s["ref_texts"]):
            name = spec.partition(":")[2] if spec.startswith("prompts:") else spec
            if ":" in name or is_micro(name) or name in cfg["suite"] or name in wrote:
                continue
            if name not in writers.WRITERS:
                raise RehearsalError(f"reference dataset {name} has no writer in benchmark/data/writers.py (WRITERS)")
            writers.write(name, root, writers.Tiny(per_class={"train": 1, "val": 0, "test": 1}))
            wrote.append(name)
    return wrote


def command_line(args, preset: dict) -> list[str]:
    """The cfbench arguments: the preset itself, with the rehearsal's overrides."""
    suite, orderings = reduced(preset, args.datasets)
    argv = ["--config", args.config, "--out", str(args.out), "--data-root", str(args.out / "data"),
            "--device", "cpu", "--jobs", "1", "--seeds", str(preset["seeds"][0]),
            "--suite", *suite, "--orderings", *(",".join(o) for o in orderings), "--verbose"]
    if args.strategies:
        argv += ["--strategies", *args.strategies]
    if args.quiet:
        argv.append("--quiet")
    if args.profile:
        argv.append("--profile")
    sets = model_overrides(preset["model"]) + [
        f"model.image_size={args.image_size}", "train.epochs=1", f"train.batch_size={args.batch_size}",
        f"train.probe_steps={args.probe_steps}", "data.num_workers=0",
        f"data.cache_dir={args.out / 'cache'}", f"drift={args.drift}"]
    if args.templates:
        sets.append(f"data.max_templates={args.templates}")
    if (preset.get("train") or {}).get("iterations") is not None:  # MTIL: a number of steps a task
        sets.append(f"train.iterations={args.iterations}")
    threads = args.threads
    if threads is None and args.workers > 1:  # one worker a core, not every worker on every core
        threads = max(1, (os.cpu_count() or 1) // args.workers)
    if threads is not None:
        sets.append(f"threads={threads}")
    for s in sets:
        argv += ["--set", s]
    return argv


def method_of(run: dict) -> str:
    """A run's method as the tables name it: the paper's label where the catalog gives one."""
    try:
        from strategies.catalog import method_label
    except ImportError:  # a checkout without the paper's labels
        return run["strategy"]["name"]
    return method_label(run["strategy"]["name"], run["train"].get("head_init"))


def _has_heat_maps() -> bool:
    """Whether this checkout's collection draws the per-method heat maps (plots/heatmap_<method>.png)."""
    import importlib.util

    return importlib.util.find_spec("evaluation.reporting.heatmaps") is not None


def _mtil_orderings(orderings: list) -> list[list[str]]:
    """The orderings for which the collection writes ZSCL's MTIL table (mtil_tables.md)."""
    try:
        from evaluation.reporting.mtil_table import MIN_TASKS
    except ImportError:  # a checkout without the MTIL table
        return []
    return [list(o) for o in orderings if len(o) >= MIN_TASKS]


def check_outputs(argv: list[str]) -> tuple[list[str], list[str], Path]:
    """(problems, what was found, the experiment folder) for the plan of `argv`: every run done, the
    collection's files written, every dataset and method of the plan in tables.md, a heat map per method,
    and ZSCL's MTIL table naming them for an ordering of five tasks or more."""
    from evaluation.storage.records import check_run
    from experiment.arguments import build_parser, resolve_config
    from experiment.config import plan

    args = build_parser().parse_args(argv)
    cfg = resolve_config(args)
    exp = Path(args.out) / cfg["experiment"]
    runs = plan(cfg)
    problems = [f"run {r['run_id']} ({method_of(r)} on {','.join(r['ordering'])}): {state}"
                for r in runs if (state := check_run(exp / "runs" / r["run_id"])) is not None]
    for f in ("tables.md", "report.md", "leaderboard.csv", "records_long.csv"):
        if not (exp / f).is_file() or (exp / f).stat().st_size == 0:
            problems.append(f"{exp / f} was not written")
    tables = (exp / "tables.md").read_text(encoding="utf-8") if (exp / "tables.md").is_file() else ""
    absent = [d for d in cfg["suite"] if d not in tables]
    if tables and absent:
        problems.append(f"tables.md names no {', '.join(absent)}")
    plots = sorted(p.name for p in (exp / "plots").glob("*.png")) if (exp / "plots").is_dir() else []
    if not plots:
        problems.append(f"{exp / 'plots'} holds no plot")
    methods = list(dict.fromkeys(method_of(r) for r in runs))
    missing = [m for m in methods if m not in tables]
    if tables and missing:
        problems.append(f"tables.md names no {', '.join(missing)}")
    heat = [p for p in plots if p.startswith("heatmap_")]
    if _has_heat_maps() and len(heat) != len(methods):
        problems.append(f"{len(heat)} heat maps (plots/heatmap_*.png) for {len(methods)} methods")
    mtil = _mtil_orderings(cfg["orderings"])
    if mtil:  # ZSCL's MTIL table (Transfer, Avg, Last per dataset) for every ordering of five tasks or more
        text = (exp / "mtil_tables.md").read_text(encoding="utf-8") if (exp / "mtil_tables.md").is_file() else ""
        # its rows: each method by the tables' name or, as the MTIL table labels them, its strategy's
        names: dict[str, set[str]] = {}
        for r in runs:
            names.setdefault(method_of(r), {method_of(r)}).add(r["strategy"]["name"])
        absent = [x for x in [*{d for o in mtil for d in o}, "Transfer", "Avg", "Last"] if x not in text]
        absent += [m for m, ns in names.items() if not any(f"| {n} |" in text for n in ns)]
        if not text:
            problems.append(f"{exp / 'mtil_tables.md'} was not written ({len(mtil)} ordering(s) of five tasks or more)")
        elif absent:
            problems.append(f"mtil_tables.md names no {', '.join(sorted(absent))}")
    done = len(runs) - sum(1 for p in problems if p.startswith("run "))
    found = [f"{len(runs)} runs planned ({len(methods)} methods x {len(cfg['orderings'])} orderings, seed "
             f"{cfg['seeds'][0]}), {done} done", "methods: " + ", ".join(methods),
             f"{len(plots)} plots in {exp / 'plots'}, {len(heat)} of them heat maps"]
    if mtil:
        found.append(f"MTIL table of {len(mtil)} ordering(s) in {exp / 'mtil_tables.md'}")
    return problems, found, exp


def main(argv: list[str] | None = None) -> int:
    t0, c0 = time.perf_counter(), _cpu()
    try:
        args = parse_args(argv)
        from experiment.config import ConfigError, load_preset

        try:
            preset = load_preset(args.config)
        except ConfigError as e:
            raise RehearsalError(str(e)) from None
        suite, _ = reduced(preset, args.datasets)
        val = 0 if (preset.get("data") or {}).get("val_fraction", 0.1) == 0 else 1
        counts = write_data(args.out / "data", suite, args, val, preset.get("data") or {})
        cli_argv = command_line(args, preset)
        refs = write_references(args.out / "data", cli_argv)
    except RehearsalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"rehearsal of {args.config}: wrote {sum(counts.values())} images of {len(counts)} datasets under "
          f"{args.out / 'data'}{' and the reference set ' + ', '.join(refs) if refs else ''} in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    print("cfbench " + " ".join(cli_argv), file=sys.stderr)
    n = processes_for(cli_argv, args.workers)  # a worker without a run of its own would only start up
    if n > 1:
        print(f"{n} processes share out the runs; the lines of the others start with 'worker K:'", file=sys.stderr)
    workers = [Worker(k, worker_command(k, cli_argv)) for k in range(1, n)]  # they import while this one does
    code = None  # None: an exception (a Ctrl-C outside the command's own handler) stops the workers
    try:
        code = _run_command(cli_argv)
    finally:
        # 0 or 1: every run was finished or failed here or in a worker, and they have nothing left but to
        # leave; otherwise (bad input, Ctrl-C, a crash) they are stopped
        failed = [w for w in workers if w.finish(stop=code not in (0, 1))]
    if code == 130:
        return 130
    for w in failed:
        print(f"error: worker {w.k} exited with {w.code} (its lines above, 'worker {w.k}:'; a run it left "
              "unfinished was trained by this process)", file=sys.stderr)
    if code != 0:
        print(f"error: the rehearsal's command exited with {code} (its error is above)", file=sys.stderr)
        return 1
    problems, found, exp = check_outputs(cli_argv)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    for line in found:
        print(line, file=sys.stderr)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    failing = problems or failed
    print(f"rehearsal of {args.config} {'failed' if failing else 'passed'} in {wall / 60:.1f} min wall, "
          f"{cpu / 60:.1f} min CPU ({len(workers) + 1} process{'es' if workers else ''}): {exp}", file=sys.stderr)
    return 1 if failing else 0


def _run_command(cli_argv: list[str]) -> int:
    """cfbench with `cli_argv` in this process, the checksums of the written files switched off; its exit
    status (1 after a traceback when the paper path raised)."""
    from benchmark.data import writers
    from experiment.cli import main as cfbench

    with writers.unchecked_torchvision_files():
        try:
            return cfbench(cli_argv)
        except Exception as e:  # noqa: BLE001 - what the rehearsal is for: a failure of the paper path
            import traceback

            traceback.print_exc()
            print(f"error: the paper path failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                  "the traceback above says where", file=sys.stderr)
            return 1


def processes_for(cli_argv: list[str], workers: int) -> int:
    """How many processes the plan of `cli_argv` can use, at most `workers`: no more than its runs left
    (cfbench's own rule for --jobs, `processes_needed`); 1 when its configuration is wrong (the command
    says so, and no worker is started)."""
    from experiment.arguments import build_parser, resolve_config
    from experiment.executors.processes import processes_needed

    args = build_parser().parse_args(cli_argv)
    try:
        cfg = resolve_config(args)
    except ValueError:  # ConfigError, SpecError, DataError
        return 1
    return processes_needed({**cfg, "jobs": workers}, args.out)


def worker_command(k: int, cli_argv: list[str]) -> list[str]:
    """The k-th worker: this script again, as `--worker k` (`worker_main`)."""
    return [sys.executable, str(Path(__file__).resolve()), WORKER, str(k), *cli_argv]


class Worker:
    """The k-th other process of the rehearsal, started with `command`, its output read line by line and
    printed with the prefix `worker k:`."""

    def __init__(self, k: int, command: list[str]):
        self.k, self.code = k, None
        self.proc = self._start(command)
        self.reader = threading.Thread(target=self._relay, daemon=True)
        self.reader.start()

    def _start(self, command: list[str]) -> subprocess.Popen:
        """The worker's process: its stdout and stderr in one text pipe, read line by line."""
        from experiment.executors.processes import die_with_parent  # killed with the rehearsal (Linux)

        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, preexec_fn=die_with_parent)

    def _relay(self) -> None:
        for line in self.proc.stdout:
            sys.stderr.write(f"worker {self.k}: {line}")
            sys.stderr.flush()

    def finish(self, stop: bool) -> bool:
        """Wait for the worker to leave (after a Ctrl-C first, `stop`: it gets SIGINT, then SIGKILL if it
        has not left within a minute); whether it failed."""
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.code = self.proc.wait()
        self.reader.join()
        if stop:  # the rehearsal fails already: only a failure of the worker's own is worth a line
            return self.code not in (0, 2, 130, -signal.SIGINT, -signal.SIGKILL)
        return self.code != 0


def worker_main(k: int, cli_argv: list[str]) -> int:
    """A worker: what cfbench's k-th `--jobs` helper does (experiment/helper.train_share: the same plan from its
    k-th pending run, each run taken under its lock, no tables), with the written files' checksums switched off
    in this process too, and its progress lines unless -q. Its inputs were checked by the rehearsal's
    command, which reports them: a worker that finds them wrong leaves with 2 and says nothing."""
    started = time.perf_counter()
    from experiment import interrupts

    interrupts.install_sigint()
    try:
        from benchmark.data import writers
        from experiment.executors.local import LocalExecutor
        from experiment.helper import train_share

        with writers.unchecked_torchvision_files():
            return train_share(cli_argv, LocalExecutor(offset=k), started, progress=True)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a failure of the paper path: where, and in which run
        import traceback

        traceback.print_exc()
        print(f"error: the paper path failed ({type(e).__name__}) during {interrupts.phase()}", file=sys.stderr)
        return 1


def _cpu() -> float:
    """CPU seconds of this process and its finished children, user and system."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


if __name__ == "__main__":
    if sys.argv[1:2] == [WORKER]:
        sys.exit(worker_main(int(sys.argv[2]), sys.argv[3:]))
    sys.exit(main())
