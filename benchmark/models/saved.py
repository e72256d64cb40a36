"""Kept weights (`save_weights: true`): the fine-tuned image encoder and the task heads after each task,
so that a run can be scored again later without training (experiment/rescore.py).

One file per step k = 1..T, `runs/<id>/weights/step<k>.pt`, written atomically (a temporary file in the
same folder, synced, renamed): a torch.save of {"format", "run_id", "step", "after", "encoder": the
encoder's state dict, "heads": {task label: (weight, bias)}}, every tensor on the CPU, in the layout the
run held. It holds the model that was scored after task k: the end of the task, or under
`train.checkpoint: K` the task's checkpoint K, exactly as the records' row k.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..files import _fault, temp_path
from .task import TaskModel

FORMAT = 1
WEIGHTS_DIR = "weights"


def weights_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / WEIGHTS_DIR / f"step{step}.pt"


def has_weights(run_dir: Path, steps: int) -> bool:
    """Whether the weights after every one of `steps` tasks are kept in `run_dir`."""
    return all(weights_path(run_dir, k).is_file() for k in range(1, steps + 1))


def save_step(run_dir: Path, run_id: str, step: int, after: str, model: TaskModel, n_heads: int) -> Path:
    """Write the encoder and the first `n_heads` heads of `model` as the weights after task `step`."""
    heads = {}
    for t in range(n_heads):
        h = model.head(t)
        heads[t] = (h.weight.detach().to("cpu", copy=True), h.bias.detach().to("cpu", copy=True))
    payload = {"format": FORMAT, "run_id": run_id, "step": step, "after": after, "heads": heads,
               "encoder": {k: v.detach().to("cpu", copy=True) for k, v in model.encoder.state_dict().items()}}
    path = weights_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            torch.save(payload, f)
            f.flush()
            _fault(f"mid-write:{path.name}")
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:
            e.filename = str(path)
        raise
    return path


def load_step(path: Path, model: TaskModel) -> dict:
    """Load the weights of `path` into `model` (built as the run built it: same encoder, same strategy's
    modules): the encoder strictly, and one head per saved task. Returns the file's metadata."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a weights file of format {FORMAT}")
    model.encoder.load_state_dict(payload["encoder"], strict=True)
    from avalanche.models import IncrementalClassifier

    device = next(model.encoder.parameters()).device
    for t, (w, b) in sorted(payload["heads"].items()):
        if str(t) not in model.heads.classifiers or model.head(t).weight.shape != w.shape:
            model.heads.classifiers[str(t)] = IncrementalClassifier(w.shape[1], w.shape[0], masking=False,
                                                                    auto_adapt=False).to(device)
        head = model.head(t)
        with torch.no_grad():
            head.weight.copy_(w)
            head.bias.copy_(b)
    return {k: payload[k] for k in ("run_id", "step", "after")}


def bytes_per_task(encoder: nn.Module, head_classes: list[int], embed_dim: int) -> int:
    """Size of one step's file, about: the encoder's parameters and buffers plus the heads (float32)."""
    enc = sum(t.numel() * t.element_size() for t in encoder.state_dict().values())
    return enc + sum(4 * (c * embed_dim + c) for c in head_classes)


def encoder_bytes(name: str, image_size: int | None = None) -> int:
    """Bytes of the float32 state of model `name`'s image tower (parameters and buffers), from its
    architecture alone: built on the meta device, no weights read or allocated."""
    import open_clip
    from open_clip.model import _build_vision_tower

    from .foundation import register_model_configs

    register_model_configs()
    cfg = open_clip.get_model_config(name)
    vision = dict(cfg["vision_cfg"])
    if image_size:
        vision["image_size"] = image_size
    with torch.device("meta"):
        visual = _build_vision_tower(cfg["embed_dim"], vision, quick_gelu=cfg.get("quick_gelu", False))
    return sum(t.numel() * 4 for t in visual.state_dict().values())
