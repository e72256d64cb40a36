"""Feature taps: the encoder's internal layers that LDIFS (and anything else) can read, in depth order,
and the LDIFS distance between two encoders' feature maps (used by strategies/ldifs.py as its penalty
and by evaluation/scoring/drift.py as the recorded feature drift: one definition for both)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor, nn


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
    """A feature map as a 3-D [B, ., .] tensor whose axis 1 is the one docs/design.md normalises over.

    conv maps [B, C, H, W] -> [B, H*W, C] (axis 1 = positions, like a ViT's tokens); a vector map [B, C]
    -> [B, C, 1], so that axis 1 is C: docs/design.md normalises a [B, C] map over C and averages over C.
    (As [B, 1, C] the norm would run over a length-1 axis and turn every entry into its sign.)
    """
    if f.dim() == 4:
        return f.flatten(2).transpose(1, 2)
    if f.dim() == 2:
        return f.unsqueeze(2)
    return f


def ldifs_layer_distance(fa: Tensor, ff: Tensor, norm_axis: int = 1, eps: float = 1e-10) -> Tensor:
    """d_l of docs/design.md ("LDIFS, exactly") per image, [B]: each map l2-normalised over `norm_axis`
    of its [B, N, C] form (axis 1: the tokens), then the mean over (N, C) of the squared difference."""
    fa, ff = as_tokens(fa), as_tokens(ff)
    na = fa / (fa.pow(2).sum(dim=norm_axis, keepdim=True).sqrt() + eps)
    nf = ff / (ff.pow(2).sum(dim=norm_axis, keepdim=True).sqrt() + eps)
    return (na - nf).pow(2).flatten(1).mean(1)  # [B]: mean over (N, C)


def ldifs_distance(feats_anchor: Sequence[Tensor], feats_ft: Sequence[Tensor], norm_axis: int = 1,
                   eps: float = 1e-10) -> Tensor:
    """The LDIFS term for lists of matching feature maps ([B, N, C], [B, C, H, W] or [B, C])."""
    if len(feats_anchor) != len(feats_ft) or not feats_ft:
        raise ValueError("need the same, non-zero number of anchor and fine-tuned feature maps")
    per_layer = [ldifs_layer_distance(fa, ff, norm_axis, eps) for fa, ff in zip(feats_anchor, feats_ft)]
    return torch.stack(per_layer, dim=1).mean(dim=1).mean(dim=0)
