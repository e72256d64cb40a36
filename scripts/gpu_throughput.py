"""Training and evaluation throughput on one device: the model's own step (the ceiling) beside the real
training path (the gap), per strategy and precision, and several runs at once on one card.

    python scripts/gpu_throughput.py                       # ViT-B/32 at 224 px, batch 128, on CUDA
    python scripts/gpu_throughput.py --json out.json       # also write the figures
    python scripts/gpu_throughput.py --concurrent 1 2 4 8  # aggregate images/s of K processes at once

Rows, for `ft` and `ldifs` in fp32, tf32 and bf16 (and bf16 with LDIFS's anchor under autocast):
- ceiling: forward, loss (+ the LDIFS term through the strategy's own plugin), backward, clipping and
  fused AdamW on batches already on the device: what the model itself allows;
- real: the benchmark's training path (Avalanche template with the protocol plugins, DataLoader with
  `--workers` processes and pinned memory, open_clip's random resized crop on uint8 images as the
  decoded-split cache holds them);
- eval: embeddings in eval mode at batch `--eval-batch` (what the evaluator does after every task).
MFU: achieved FLOP/s (counted by torch's FlopCounterMode on one training step, not assumed) over the
card's dense peak for that precision (`--peak-tflops`, default from the card's name where known).
Weights are random (no download); the throughput does not depend on them.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import strategies  # noqa: E402
from benchmark.data.sources import ArraySource  # noqa: E402
from benchmark.data.suite import ImageSet  # noqa: E402
from benchmark.data.transforms import ArrayTransform  # noqa: E402
from benchmark.models import TaskModel, load_foundation_model  # noqa: E402
from benchmark.precision import autocast, matmul_precision  # noqa: E402
from benchmark.probe import embed_all  # noqa: E402
from benchmark.training import TrainConfig, fused_if_available, make_template  # noqa: E402

# Dense (no sparsity) tensor-core peaks in TFLOP/s, from the vendors' data sheets (SXM parts).
PEAKS = {"H200": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0}, "H100": {"bf16": 989.0, "tf32": 494.0, "fp32": 67.0},
         "A100": {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}}
VARIANTS = [("ft", "fp32", False), ("ft", "tf32", False), ("ft", "bf16", False),
            ("ldifs", "fp32", False), ("ldifs", "tf32", False), ("ldifs", "bf16", False), ("ldifs", "bf16", True)]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _Step:
    """The attributes of an Avalanche strategy that the strategies' plugins read, for the ceiling loop."""

    def __init__(self, model, device, anchor_bf16):
        self.model, self.mb_x, self.loss = model, None, None
        self.frozen_forward_context = lambda: autocast(device, "bf16" if anchor_bf16 else "fp32")
        self.experience = type("E", (), {"task_label": 0})()


def ceiling(fm, name: str, precision: str, anchor_bf16: bool, args, n_classes: int = 10) -> tuple[float, float]:
    """(images/s, FLOP per image) of the bare training step on device-resident batches."""
    device = args.device
    from avalanche.models.utils import avalanche_model_adaptation

    model = TaskModel(fm.visual, fm.embed_dim).to(device)
    avalanche_model_adaptation(model, experience(fm))  # the task's head, as the template makes it
    model.to(device)
    plugins = strategies.build(name, {}).plugins(model)
    step = _Step(model, device, anchor_bf16)
    for p in plugins:
        p.before_training_exp(step)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.1, **fused_if_available(device))
    x = torch.randn(args.batch, 3, fm.image_size, fm.image_size, device=device)
    y = torch.randint(0, n_classes, (args.batch,), device=device)
    t = torch.zeros(args.batch, dtype=torch.long, device=device)

    def one():
        opt.zero_grad(set_to_none=True)
        step.mb_x = x
        with autocast(device, precision):
            out = model(x, t)
        step.loss = F.cross_entropy(out.float(), y)
        for p in plugins:
            p.before_backward(step)
        step.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    with matmul_precision(precision):
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            one()
        flops = counter.get_total_flops() / args.batch
        for _ in range(args.warmup):
            one()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            one()
        sync(device)
        rate = args.batch * args.steps / (time.perf_counter() - t0)
    return rate, flops


class _Timer:
    """Images/s of the template's iterations after `warmup` of them (one host sync at each end only)."""

    def __init__(self, warmup: int, device: str):
        from avalanche.core import SupervisedPlugin

        outer = self

        class P(SupervisedPlugin):
            def after_training_iteration(self, strategy, **kwargs):
                outer.n += 1
                if outer.n == warmup:
                    sync(device)
                    outer.t0 = time.perf_counter()
                elif outer.n > warmup:
                    outer.images += strategy.train_mb_size

        self.n, self.images, self.t0, self.plugin = 0, 0, None, P()

    def rate(self, device: str) -> float:
        sync(device)
        return self.images / (time.perf_counter() - self.t0)


def images(fm, n: int, augment: bool) -> ImageSet:
    """n random uint8 images at the model's size, as the decoded-split cache holds them."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, fm.image_size, fm.image_size, 3), dtype=np.uint8)
    src = ArraySource(x, np.arange(n) % 10)
    return ImageSet(src, ArrayTransform(fm.image_size, fm.mean, fm.std, augment=augment),
                    {"dataset": "synthetic", "split": "train" if augment else "test"})


def experience(fm, n: int = 20):
    """One Avalanche training experience of n augmented synthetic images (10 classes, task 0)."""
    from benchmark.data.suite import TaskData
    from benchmark.streams import make_stream

    train = images(fm, n, augment=True)
    data = {"d": TaskData(name="d", train=train, train_eval=train, val=None, test=images(fm, 8, False),
                          classnames=[str(i) for i in range(10)], templates=["{}"])}
    return make_stream(["d"], data).train_stream[0]


def real(fm, name: str, precision: str, anchor_bf16: bool, args) -> float:
    device = args.device
    model = TaskModel(fm.visual, fm.embed_dim).to(device)
    timer = _Timer(args.warmup, device)
    cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=1e-5, warmup_steps=500,
                      precision=precision, anchor_autocast=anchor_bf16)
    template = make_template(model, cfg, [*strategies.build(name, {}).plugins(model), timer.plugin], device)
    with matmul_precision(precision):
        template.train(experience(fm, args.batch * (args.steps + args.warmup)), num_workers=args.workers,
                       persistent_workers=args.workers > 0, pin_memory=device.startswith("cuda"))
    return timer.rate(device)


def evaluation(fm, precision: str, args) -> float:
    model = TaskModel(fm.visual, fm.embed_dim).to(args.device)
    ds = images(fm, args.eval_batch * (args.steps + 1), augment=False)
    with matmul_precision(precision):
        embed_all(model, torch.utils.data.Subset(ds, range(args.eval_batch)), batch_size=args.eval_batch,
                  device=args.device, num_workers=args.workers, precision=precision)  # warm-up
        sync(args.device)
        t0 = time.perf_counter()
        embed_all(model, ds, batch_size=args.eval_batch, device=args.device, num_workers=args.workers,
                  precision=precision)
        sync(args.device)
    return len(ds) / (time.perf_counter() - t0)


def load(args):
    if args.model_config:
        import open_clip

        open_clip.add_model_config(Path(args.model_config).parent)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return load_foundation_model(args.model, None, args.image_size, device=args.device)


def peaks(args) -> dict:
    if args.peak_tflops:
        return {"fp32": args.peak_tflops[0], "tf32": args.peak_tflops[1], "bf16": args.peak_tflops[2]}
    if args.device.startswith("cuda"):
        card = torch.cuda.get_device_name()
        for k, v in PEAKS.items():
            if k in card:
                return v
    return {}


def concurrent(args) -> list[dict]:
    """Aggregate ceiling images/s of K processes training at once on this device (ft, bf16)."""
    rows = []
    for k in args.concurrent:
        cmd = [sys.executable, __file__, "--one-ceiling", "--device", args.device, "--model", args.model,
               "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
        cmd += ["--model-config", args.model_config] if args.model_config else []
        cmd += ["--image-size", str(args.image_size)] if args.image_size else []
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        rates = [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        rows.append({"processes": k, "images_per_s": round(sum(rates), 1), "per_process": round(sum(rates) / k, 1)})
        print(f"{k} processes at once: {sum(rates):.1f} images/s in all ({sum(rates) / k:.1f} each)", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--model-config", help="an open_clip architecture JSON to register first (tests: a tiny ViT)")
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--workers", type=int, default=8, help="DataLoader processes of the real path")
    ap.add_argument("--variants", nargs="+", help="e.g. ft:bf16 ldifs:bf16:anchor (default: all seven)")
    ap.add_argument("--concurrent", nargs="*", type=int, default=[], metavar="K")
    ap.add_argument("--peak-tflops", nargs=3, type=float, metavar=("FP32", "TF32", "BF16"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--one-ceiling", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    fm = load(args)
    if args.one_ceiling:
        print(ceiling(fm, "ft", "bf16", False, args)[0], flush=True)
        return 0
    variants = VARIANTS
    if args.variants:
        variants = [(v.split(":")[0], v.split(":")[1], v.endswith(":anchor")) for v in args.variants]
    peak = peaks(args)
    rows, evals = [], {}
    print(f"{'strategy':8s} {'precision':14s} {'ceiling':>9s} {'real':>9s} {'real/ceil':>9s} {'TFLOP/s':>8s} "
          f"{'MFU':>6s} {'eval':>9s}   (images/s; {args.device}, batch {args.batch})", flush=True)
    for name, precision, anchor in variants:
        c, flops = ceiling(fm, name, precision, anchor, args)
        r = real(fm, name, precision, anchor, args)
        if precision not in evals:
            evals[precision] = evaluation(fm, precision, args)
        tflops = r * flops / 1e12
        mfu = tflops / peak[precision] if precision in peak else None
        label = precision + ("+anchor" if anchor else "")
        rows.append({"strategy": name, "precision": label, "ceiling": round(c, 2), "real": round(r, 2),
                     "real_over_ceiling": round(r / c, 3), "gflop_per_image": float(f"{flops / 1e9:.4g}"),
                     "tflops": round(tflops, 2), "mfu": None if mfu is None else round(mfu, 4),
                     "eval": round(evals[precision], 1)})
        print(f"{name:8s} {label:14s} {c:9.1f} {r:9.1f} {r / c:9.2f} {tflops:8.2f} "
              f"{'' if mfu is None else f'{100 * mfu:5.1f}%':>6s} {evals[precision]:9.1f}", flush=True)
    result = {"device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
              "model": args.model, "batch": args.batch, "rows": rows, "concurrent": concurrent(args)}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
