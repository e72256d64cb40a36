"""Training throughput, measured side by side in one process on the same batches.

    python scripts/bench_train.py                 # the micro model, 48 px, batch 32
    python scripts/bench_train.py --threads 2 --steps 30

Prints, for one task of random images:
- the Avalanche template with the protocol plugins (warm-up/cosine, clipping) against a plain PyTorch
  loop doing the same work (target: at most 1.10x);
- an LDIFS step against an FT step, both through the template (target: at most 1.5x);
- one plain step split into forward, backward, gradient clipping and the optimiser step, for the
  weights' memory layout (NCHW, or NHWC = channels_last, what TaskModel uses for convnets) crossed
  with AdamW's foreach and fused implementations (fused is what the template uses).
Each figure is the median of `--repeats` timings, so one preempted measurement does not decide it.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import strategies  # noqa: E402
from benchmark.data import tensor_task_data as ImageData  # noqa: E402
from benchmark.models import PACKAGED, TaskModel, load_foundation_model  # noqa: E402
from benchmark.streams import make_stream  # noqa: E402
from benchmark.training import TrainConfig, fused_if_available, make_template  # noqa: E402
from avalanche.models.dynamic_modules import avalanche_model_adaptation  # noqa: E402


def fake_task(n: int, size: int, classes: int, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.arange(n) % classes
    return ImageData("bench", x, y, x[:classes], y[:classes], [str(i) for i in range(classes)], ["{}"])


def new_model(fm, freeze_bn_stats: bool, exp) -> TaskModel:
    """A fresh task model whose head for the experience's task exists already (as the template makes it)."""
    model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, freeze_bn_stats)
    avalanche_model_adaptation(model, exp)
    return model


def time_template(fm, exp, cfg: TrainConfig, plugins_of, freeze_bn: bool) -> float:
    """Seconds for one epoch of the task through Avalanche's template with the protocol plugins."""
    torch.manual_seed(0)
    model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, freeze_bn)
    template = make_template(model, cfg, plugins_of(model), "cpu")
    t = time.perf_counter()
    template.train(exp)
    return time.perf_counter() - t


def plain_loop(model: TaskModel, data: ImageData, cfg: TrainConfig, optimizer=None, split: dict | None = None) -> float:
    """Seconds for one epoch of the same work in plain PyTorch; `split` collects per-phase seconds."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optimizer(params) if optimizer else torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                                                **fused_if_available("cpu"))
    model.train()
    n, bs = len(data.y_train), cfg.batch_size
    perm = torch.randperm(n)
    task = torch.zeros(bs, dtype=torch.long)
    t0 = time.perf_counter()
    for i in range(0, n, bs):
        idx = perm[i:i + bs]
        x, y = data.x_train[idx], data.y_train[idx]
        ts = [time.perf_counter()]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, task[:len(idx)]), y)
        ts.append(time.perf_counter())
        loss.backward()
        ts.append(time.perf_counter())
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        ts.append(time.perf_counter())
        opt.step()
        ts.append(time.perf_counter())
        if split is not None:
            for k, a, b in zip(("forward", "backward", "clip", "optimizer"), ts, ts[1:]):
                split[k] = split.get(k, 0.0) + b - a
    return time.perf_counter() - t0


def median_of(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="micro-effnet-lite0-minilm")
    ap.add_argument("--pretrained", default=PACKAGED, help="'packaged' for the micro model, 'none' for random init")
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=16, help="optimiser steps per timed epoch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--classes", type=int, default=10)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fm = load_foundation_model(args.model, None if args.pretrained == "none" else args.pretrained,
                               args.image_size if args.pretrained == PACKAGED else None)
    freeze_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fm.visual.modules())
    size = fm.image_size
    data = fake_task(args.steps * args.batch_size, size, args.classes)
    exp = make_stream(["bench"], {"bench": data}).train_stream[0]
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, warmup_steps=2)
    print(f"model {args.model} at {size} px, batch {args.batch_size}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")

    ft = strategies.build("ft", {})
    ldifs = strategies.build("ldifs", {})
    # Warm both paths once (allocator, lazy init), then alternate them so drift in the machine's load
    # hits both alike.
    plain = lambda: plain_loop(new_model(fm, freeze_bn, exp), data, cfg)  # noqa: E731
    tmpl_ft = lambda: time_template(fm, exp, cfg, ft.plugins, freeze_bn)  # noqa: E731
    tmpl_ld = lambda: time_template(fm, exp, cfg, ldifs.plugins, freeze_bn)  # noqa: E731
    plain(), tmpl_ft()
    t_plain, t_ft, t_ld = [], [], []
    for _ in range(args.repeats):
        t_plain.append(plain())
        t_ft.append(tmpl_ft())
        t_ld.append(tmpl_ld())
    p, f, ld = (statistics.median(v) for v in (t_plain, t_ft, t_ld))
    print(f"plain loop          {1000 * p / args.steps:8.1f} ms/step")
    print(f"template + plugins  {1000 * f / args.steps:8.1f} ms/step   ratio template/plain {f / p:.2f} (target <= 1.10)")
    print(f"LDIFS (template)    {1000 * ld / args.steps:8.1f} ms/step   ratio ldifs/ft {ld / f:.2f} (target <= 1.5)")

    print("one plain step, by phase (ms):")
    foreach = lambda ps: torch.optim.AdamW(ps, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True)  # noqa: E731
    fused = lambda ps: torch.optim.AdamW(ps, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)  # noqa: E731
    variants = [
        ("NCHW, AdamW foreach (before)", foreach, torch.contiguous_format),
        ("NCHW, AdamW fused", fused, torch.contiguous_format),
        ("NHWC, AdamW foreach", foreach, torch.channels_last),
        ("NHWC, AdamW fused (now)", fused, torch.channels_last),
    ]
    for name, opt, layout in variants:
        model = new_model(fm, freeze_bn, exp)
        model.encoder.to(memory_format=layout)
        try:
            plain_loop(model, data, cfg, opt)  # warm
            split: dict = {}
            for _ in range(args.repeats):
                plain_loop(model, data, cfg, opt, split)
        except (RuntimeError, TypeError) as e:  # e.g. fused AdamW not built for this device
            print(f"  {name:<30} not available: {str(e).splitlines()[0]}")
            continue
        per = {k: 1000 * v / (args.repeats * args.steps) for k, v in split.items()}
        total = sum(per.values())
        print(f"  {name:<30} " + "  ".join(f"{k} {v:6.1f}" for k, v in per.items())
              + f"  total {total:6.1f}  backward/forward {per['backward'] / per['forward']:.1f}"
              + f"  (clip+opt)/step {(per['clip'] + per['optimizer']) / total:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
