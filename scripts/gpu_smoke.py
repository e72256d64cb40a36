"""Smoke check of the CUDA path: a run of every registered strategy with a tiny random ViT on micro
data, on CUDA and on the CPU.

Runs the real executor (streams, strategies, evaluator, records) with `device: cuda`, then on the
CPU, and prints both sets of records and their largest difference. Usage: python scripts/gpu_smoke.py
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import strategies  # noqa: E402

from experiment import config as C  # noqa: E402
from benchmark.models import register_model_configs  # noqa: E402
from experiment.runner import Resources, execute_run  # noqa: E402

TINY_VIT = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 12, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def main() -> int:
    warnings.filterwarnings("ignore", message="No loggers specified")  # scores come from evaluation/
    tmp = Path(tempfile.mkdtemp())
    (tmp / "configs").mkdir()
    (tmp / "configs" / "smoke-tiny-vit.json").write_text(json.dumps(TINY_VIT))
    register_model_configs(tmp / "configs")
    devices = (["cuda"] if torch.cuda.is_available() else []) + ["cpu"]
    print("torch", torch.__version__, "devices", devices, torch.cuda.get_device_name() if "cuda" in devices else "")
    recs = {}
    for device in devices:
        cfg = C.load_preset("micro")
        cfg.update(model={"name": "smoke-tiny-vit", "pretrained": None}, suite=["textures", "digits", "mnist"],
                   orderings=[["textures", "digits"]], strategies=strategies.available(), seeds=[0],
                   data={"max_train": 200, "max_test": 100}, device=device, threads=0)
        cfg["train"].update(epochs=2, lr=1e-3)
        res = Resources()
        for run in C.plan(C.validate(cfg)):
            t = time.time()
            rec = execute_run(run, tmp / device / run["run_id"], res, log=io.StringIO())
            recs[device, run["strategy"]["name"]] = rec
            print(f"{device:4s} {run['strategy']['name']:13s} {time.time() - t:5.1f}s  R={rec['R']}  LP={rec['LP']}")
    for s in strategies.available():
        if ("cuda", s) in recs:
            a, b = recs["cuda", s], recs["cpu", s]
            diff = max(abs(x - y) for k in ("R", "LP") for ra, rb in zip(a[k], b[k]) for x, y in zip(ra, rb))
            print(f"{s}: largest |cuda - cpu| over R and LP = {diff:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
