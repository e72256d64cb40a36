"""run_benchmark.py's command line: its options, and how they map onto the configuration (a preset, then
the options, then every --set: experiment.settings.merged; validated by experiment.config). Imports only
argparse until a configuration is resolved, so that --help and option errors answer at once."""
from __future__ import annotations

import argparse
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit code 2, like every other input error
        self.exit(2, f"error: {message}; see {self.prog} --help\n")


def _out_path(text: str) -> Path:
    import os

    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name the results folder, e.g. --out results")
    path = Path(text)
    existing = path.absolute()
    while not os.path.isdir(existing) and existing.parent != existing:  # isdir: False, not an error, for long names
        existing = existing.parent
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    long = [p for p in path.parts if len(os.fsencode(p)) > name_max]
    if long:
        raise argparse.ArgumentTypeError(f"the folder name {long[0][:40]!r}... is {len(os.fsencode(long[0]))} bytes, "
                                         f"over the file system's limit of {name_max}; choose a shorter path")
    if len(os.fsencode(str(path.absolute()))) + 100 > path_max:  # room for <experiment>/runs/<id>/records.json
        raise argparse.ArgumentTypeError(f"a path of {len(os.fsencode(str(path.absolute())))} bytes leaves no room under "
                                         f"the file system's limit of {path_max} for the result files; choose a "
                                         "shorter path")
    return path


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    ap = _Parser(
        prog="cfbench", description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  cfbench\n"
               "  cfbench --strategies ft ldifs:lam=30 ldifs:lam=30,layers=last --seeds 0 1 2\n"
               "  cfbench --orderings mnist,fashion_mnist fashion_mnist,mnist --set train.epochs=3\n"
               "  cfbench --collect-only          # rebuild tables and plots, train nothing\n"
               "  cfbench --list --config paper-continual   # strategies, defaults, the preset's choices\n"
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
                         "evaluation/storage/code_version.py) changed since they ran; without it they are reused, with a warning")
    ap.add_argument("--rescore", nargs="?", const="", default=None, metavar="EXPERIMENT",
                    help="train nothing: score the plan's runs from the weights kept by runs that trained the same way "
                         "(--set save_weights=true) in EXPERIMENT (a name under --out or a folder; default: this "
                         "experiment), e.g. after adding a dataset with --suite; writes new runs marked rescored, "
                         "the originals untouched")
    ap.add_argument("--collect-only", action="store_true", help="only rebuild leaderboard and plots from records")
    ap.add_argument("--no-plots", action="store_true",
                    help="write the tables and report.md without drawing plots (a collection's slowest part, about "
                         "0.3 s a plot); plots/ is left as it is: draw them later with --collect-only")
    ap.add_argument("--list", action="store_true", help="list strategies, datasets and presets, then exit")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only errors, warnings and where results went")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="plain log lines even on a terminal (no progress bars); the default on a pipe or in CI")
    ap.add_argument("--tensorboard", action="store_true",
                    help="log training loss curves (Avalanche's TensorBoard logger) and the evaluation after every "
                         "step (eval/LP, eval/ZS, eval/R, drift/..., final/...) to <out>/<experiment>/tensorboard/"
                         "<strategy>__<ordering>__seed<N>__<run id>/ (= --set tensorboard=true)")
    ap.add_argument("--wandb", action="store_true",
                    help="log the same to Weights & Biases, one W&B run per run (project: the experiment; files in "
                         "<out>/<experiment>/wandb/); WANDB_MODE=offline needs no account (= --set wandb=true)")
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
                    help="with --dry-run (and in the refusal of a plan too large to start without --yes): also estimate "
                         "the wall-clock time on N GPUs (runs longest first)")
    from experiment.guards import MAX_UNASKED_RUNS

    ap.add_argument("--yes", action="store_true",
                    help=f"train a plan of more than {MAX_UNASKED_RUNS} runs (without it such a plan prints its size and stops)")
    ap.add_argument("--profile", action="store_true",
                    help="print where the wall time went (start-up, model load, step-0 scores, training, "
                         "evaluation, writes, collection) and the peak memory")
    return ap


def resolve_config(args) -> dict:
    """The validated configuration: experiment.settings.merged (the preset, the options, every --set),
    checked by experiment.config.validate."""
    from experiment.config import validate
    from experiment.settings import merged

    return validate(merged(args))
