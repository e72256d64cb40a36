"""Settings that would make a plan's runs meaningless without failing them, said in one warning line
each when the plan is made (experiment/driver.py)."""
from __future__ import annotations

import math

from benchmark.data import data_settings, entry

from .dryrun import split_sizes


def plan_warnings(cfg: dict) -> list[str]:
    """Settings that would make the plan's runs meaningless without failing them, one line each: a
    warm-up as long as a task (the schedule is cut to the task's length: the learning rate never
    settles), and a data cap that leaves a dataset fewer than two training images per class (its
    probes and heads then score about chance)."""
    from benchmark.training import epochs_for

    out = []
    train, bs = cfg["train"], int(cfg["train"]["batch_size"])
    sizes = {n: split_sizes(n, cfg["data"]) for n in cfg["suite"]}
    warm = int(train.get("warmup_steps") or 0)
    short = sorted({(epochs_for(train["epochs"], n) * math.ceil(sizes[n]["train"] / bs), n)
                    for o in cfg["orderings"] for n in o})
    cut = [f"{n} ({s} steps)" for s, n in short if warm >= s]
    if cut:
        out.append(f"train.warmup_steps={warm} is not shorter than the tasks {', '.join(cut[:4])}"
                   f"{' ...' if len(cut) > 4 else ''}: the warm-up is cut to the task's length and the cosine "
                   "decay never runs; lower train.warmup_steps or train more steps per task")
    d = cfg["data"]
    few = []
    for n, s in sizes.items():
        e = entry(n, data_settings(d)["variants"].get(n))
        classes = int(e.get("n_classes") or len(e.get("classnames") or []))
        if classes and s["train"] < 2 * classes:
            few.append(f"{n} ({s['train']} images, {classes} classes)")
    if few:
        out.append(f"data.max_train={d.get('max_train')} leaves fewer than 2 training images per class of "
                   f"{', '.join(few[:4])}{' ...' if len(few) > 4 else ''}: its probes and heads score about chance; "
                   "raise data.max_train")
    return out
