"""Parameter groups by depth: how a strategy addresses parts of the image encoder.

`parameter_groups(encoder)` puts every parameter of the encoder in exactly one group, in depth order:

    stem      everything before the first block (the feature taps' first entry and what feeds it)
              open_clip ViT:  conv1 (patch embedding), class_embedding, positional_embedding, ln_pre
              open_clip ModifiedResNet (CLIP RN50...): conv1..bn3 of the 3-layer stem
              timm convnets (the micro model's EfficientNet-Lite): conv_stem, bn1
    <block>   one group per block or stage, named as in `feature_taps`: `resblocks.0`..`resblocks.11`
              (ViT), `layer1`..`layer4` (ResNets), `blocks.0`..`blocks.6` (the micro convnet)
    head      everything after the last block: ViT ln_post and proj; ResNet attnpool; timm conv_head,
              bn2 and open_clip's projection head

so `groups[:k]` are the k shallowest parts, and "the first half of the encoder by depth" is
`groups[:len(groups) // 2]`, stem included (a selection by feature taps is not: on the micro model
the stem's tap is `bn1`, and `conv_stem` is no tap). Each group is (name, [(qualified name,
parameter)]); `strategies/surgical.py` uses them, and README's "Addressing parts of the encoder"
shows a strategy written with them.
"""
from __future__ import annotations

from torch import nn

from .taps import feature_taps

# Parameters held directly by a container of the blocks (not by a submodule) that precede the blocks.
STEM_PARAMETERS = {"class_embedding", "positional_embedding", "cls_token", "pos_embed", "reg_token"}


def parameter_groups(encoder: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """Every parameter of `encoder` in exactly one group: stem, each block or stage, head (see above)."""
    blocks = feature_taps(encoder)[1:]
    block_of = {id(p): name for name, m in blocks for p in m.parameters()}
    modules = list(encoder.named_modules())
    first = next(q for q, m in modules if m is blocks[0][1])
    groups: dict[str, list[tuple[str, nn.Parameter]]] = {"stem": [], **{n: [] for n, _ in blocks}, "head": []}
    after_first = False
    for qual, module in modules:
        after_first = after_first or module is blocks[0][1]
        ancestor = first == qual or first.startswith(qual + ".") if qual else True  # holds the blocks
        for pname, p in module.named_parameters(recurse=False):
            full = f"{qual}.{pname}" if qual else pname
            if id(p) in block_of:
                groups[block_of[id(p)]].append((full, p))
            elif ancestor:  # a container's own parameter: by name (ViT's embeddings come first, proj last)
                groups["stem" if pname in STEM_PARAMETERS else "head"].append((full, p))
            else:
                groups["head" if after_first else "stem"].append((full, p))
    return [(name, params) for name, params in groups.items() if params or name in ("stem", "head")]


def group_names(encoder: nn.Module) -> list[str]:
    return [name for name, _ in parameter_groups(encoder)]
