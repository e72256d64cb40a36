"""Training throughput of CLIP ViT-B/32 (random init: no weights can be fetched on the test box) through
the real training path (TaskModel, Avalanche template, protocol plugins, strategy plugins) at 224 px,
batch 128: ft and ldifs, fp32 and bf16. Prints images/s of each; put the figure in configs/paper-*.yaml
(`throughput`). Usage: python scripts/gpu_throughput.py [--steps 30] [--device cuda]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from avalanche.core import SupervisedPlugin  # noqa: E402

import strategies  # noqa: E402
from benchmark.data import tensor_task_data  # noqa: E402
from benchmark.models import TaskModel, load_foundation_model  # noqa: E402
from benchmark.streams import make_stream  # noqa: E402
from benchmark.training import TrainConfig, make_template  # noqa: E402


class Timer(SupervisedPlugin):
    """Times training iterations after `warmup` of them (CUDA synchronised)."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.n, self.images, self.t0 = warmup, 0, 0, None

    def after_training_iteration(self, strategy, **kwargs):
        self.n += 1
        if self.n == self.warmup:
            torch.cuda.synchronize() if torch.cuda.is_available() else None
            self.t0 = time.time()
        elif self.n > self.warmup:
            self.images += len(strategy.mb_y)

    def rate(self) -> float:
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        return self.images / (time.time() - self.t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.manual_seed(0)
    fm = load_foundation_model("ViT-B-32", None, device=args.device)
    n = args.batch * args.steps
    x = torch.randn(n, 3, 224, 224)
    y = torch.arange(n) % 10
    data = {"d": tensor_task_data("d", x, y, x[:8], y[:8], [str(i) for i in range(10)], ["{}"])}
    results = {}
    for precision in ("fp32", "bf16"):
        for name in ("ft", "ldifs"):
            model = TaskModel(fm.visual, fm.embed_dim).to(args.device)
            strategy = strategies.build(name, {})
            timer = Timer(warmup=5)
            cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=1e-5, warmup_steps=500, precision=precision)
            template = make_template(model, cfg, [*strategy.plugins(model), timer], args.device)
            template.train(make_stream(["d"], data).train_stream[0], num_workers=0)
            results[f"{name}-{precision}"] = round(timer.rate(), 1)
            print(f"{name:5s} {precision}: {results[f'{name}-{precision}']:.1f} images/s "
                  f"({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'})", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
