#!/usr/bin/env python
"""Cost of each strategy's training step relative to plain fine-tuning's, in one process.

Every strategy trains the same two tasks of the micro suite from the same model and seed, so the
timed steps (the second task's, where EWC's penalty, LwF's teacher and the anchors are active)
see the same batches. A step is the template's iteration: forward, the strategy's loss terms,
backward, optimiser step. Per-task work outside the steps (EWC's Fisher pass, WiSE-FT's mixing,
anchor copies) is reported separately, per task. Strategies are timed in order and then in reverse
order, and each ratio is the mean of the two passes' median ratios, to average out load drift.

    python scripts/bench_strategies.py [--steps 8] [--batch-size 32] [--threads 1] [--device cpu]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strategies", nargs="+", help="specs to time (default: every registered strategy)")
    ap.add_argument("--tasks", nargs=2, default=["mnist", "fashion_mnist"], metavar="DATASET")
    ap.add_argument("--steps", type=int, default=8, help="timed steps on the second task")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)

    import strategies
    from benchmark.models import TaskModel, text_side
    from experiment.runner import Resources
    from benchmark.streams import make_stream
    from benchmark.training import HeadInitPlugin, TrainConfig, make_template
    from strategies.base import SupervisedPlugin

    res = Resources()  # the executor's own loaders: the micro model and the micro datasets
    fm = res.model({"name": "micro-effnet-lite0-minilm", "pretrained": "packaged", "image_size": 48}, args.device)
    n = args.steps * args.batch_size
    data = {name: res.data(name, fm, {"max_train": n, "max_test": 8}) for name in args.tasks}
    zs = {t: res.zero_shot(name, fm, data[name]).to(args.device) for t, name in enumerate(args.tasks)}
    text = text_side(fm, zs)
    specs = args.strategies or strategies.available()

    class StepTimer(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.steps, self.task_s = [], []

        def before_training_exp(self, strategy, **kwargs):
            self._t_exp = time.perf_counter()

        def before_training_iteration(self, strategy, **kwargs):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            self._t = time.perf_counter()

        def after_training_iteration(self, strategy, **kwargs):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            self.steps.append(time.perf_counter() - self._t)

    def measure(spec: str) -> tuple[float, float] | None:
        name, params = strategies.parse_spec(spec)
        strategy = strategies.build(name, params)
        torch.manual_seed(0)
        model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, freeze_bn_stats=True, text=text).to(args.device)
        try:
            plugins = strategy.plugins(model)
        except strategies.SpecError as e:
            print(f"{spec:>16}: refused ({e})")
            return None
        init = HeadInitPlugin(lambda m, t: (zs[t] * text.logit_scale, torch.zeros(len(zs[t]), device=zs[t].device)))
        timer = StepTimer()
        cfg = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-4, warmup_steps=0)
        template = make_template(model, cfg, [init, *plugins, timer], args.device)
        stream = make_stream(args.tasks, data).train_stream
        template.train(stream[0])
        timer.steps.clear()
        t0 = time.perf_counter()
        template.train(stream[1])
        total = time.perf_counter() - t0
        return statistics.median(timer.steps), total - sum(timer.steps)

    results: dict[str, list[tuple[float, float]]] = {s: [] for s in specs}
    for order in (specs, specs[::-1]):
        for spec in order:
            r = measure(spec)
            if r is not None:
                results[spec].append(r)
    base = "ft" if "ft" in results and results["ft"] else specs[0]
    print(f"micro model, {args.device}, {args.threads} thread(s), batch {args.batch_size}, "
          f"{args.steps} timed steps on {args.tasks[1]} after {args.tasks[0]}; ratio to {base} per pass")
    print(f"{'strategy':>16} {'step ms':>9} {'ratio':>6} {'passes':>13} {'per-task s':>11}")
    for spec, rs in results.items():
        if not rs:
            continue
        ratios = [r[0] / b[0] for r, b in zip(rs, results[base])]
        print(f"{spec:>16} {1000 * statistics.mean(r[0] for r in rs):9.1f} {statistics.mean(ratios):6.2f} "
              f"{' '.join(f'{x:.2f}' for x in ratios):>13} {statistics.mean(r[1] for r in rs):11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
