"""Visual prompt tuning, shallow (VPT-Shallow; Jia et al., ECCV 2022), for open_clip ViT towers.

`n_prompts` learned tokens are inserted into the token sequence right after the class token, before
the first transformer block; every weight of the encoder stays frozen, and the prompts and the task
heads train. The insertion is a small wrapper around the tower's `ln_pre` (the last step before the
blocks), so open_clip's own forward runs unchanged: [cls, patches] -> [cls, prompts, patches].
The pooled output is the class token's (pool_type "tok", as in CLIP), so prompts act only through
attention. The prompts are created at the start of training (before the optimiser collects the
parameters) and are shared by all tasks: each task goes on tuning them, as fine-tuning goes on
tuning the encoder; an ablation with one prompt per task would need task-aware evaluation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

from . import SpecError, Strategy, register


class PromptedLNPre(nn.Module):
    """ln_pre followed by the insertion of learned prompt tokens after the class token."""

    def __init__(self, ln_pre: nn.Module, n_prompts: int, width: int, patch_dim: int):
        super().__init__()
        self.ln_pre = ln_pre
        # VPT's initialisation: uniform in +-sqrt(6 / (patch_dim + width)) (Xavier over the patch projection)
        bound = math.sqrt(6.0 / (patch_dim + width))
        self.prompts = nn.Parameter(torch.empty(1, n_prompts, width).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:  # x: [B, 1 + N, C]
        x = self.ln_pre(x)
        p = self.prompts.to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :1], p, x[:, 1:]], dim=1)


def check_vit(visual: nn.Module) -> str | None:
    """Why prompt tuning cannot run on this tower, or None if it can."""
    from open_clip.transformer import VisionTransformer

    if not isinstance(visual, VisionTransformer):
        return f"its image tower is {type(visual).__name__}, not an open_clip VisionTransformer"
    if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
        return "its ViT pools with something other than the class token, which prompt tokens would enter"
    return None


class PromptTuningPlugin(SupervisedPlugin):
    """Freezes the encoder and inserts learned prompt tokens, once, before training starts."""

    def __init__(self, n_prompts: int):
        super().__init__()
        self.n_prompts = n_prompts

    def before_training(self, strategy, **kwargs):
        # before_training precedes Avalanche's optimiser set-up of the first task, so the prompts are
        # optimised from the first step
        visual = strategy.model.encoder
        if isinstance(visual.ln_pre, PromptedLNPre):
            return
        for p in visual.parameters():
            p.requires_grad_(False)
        width = visual.class_embedding.shape[-1]
        patch_dim = visual.conv1.in_channels * visual.conv1.kernel_size[0] * visual.conv1.kernel_size[1]
        # drawn from the run's seeded generator: the run's seed decides the prompts' initial values
        wrapper = PromptedLNPre(visual.ln_pre, self.n_prompts, width, patch_dim)
        visual.ln_pre = wrapper.to(visual.class_embedding.device)


@register("prompt_tuning")
@dataclass
class PromptTuning(Strategy):
    """Visual prompt tuning: learned tokens after the class token of a frozen ViT; heads train."""

    n_prompts: int = 10  # prompt tokens inserted after the class token (VPT-Shallow)

    def validate(self) -> None:
        if isinstance(self.n_prompts, bool) or not isinstance(self.n_prompts, int) or not 1 <= self.n_prompts <= 1024:
            raise ValueError(f"n_prompts must be an integer in 1..1024, got {self.n_prompts!r}")

    def plugins(self, model):
        why = check_vit(model.encoder)
        if why:
            raise SpecError(f"strategy 'prompt_tuning' needs a ViT image tower: {why}; "
                            "choose a ViT model (e.g. ViT-B-32) or another strategy")
        return [PromptTuningPlugin(self.n_prompts)]
