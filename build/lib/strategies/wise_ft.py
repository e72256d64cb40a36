"""WiSE-FT: weight-space ensembling of the fine-tuned and the anchor encoder (Wortsman et al., CVPR 2022).

After each task, every floating-point weight and buffer of the encoder becomes

    w = (1 - alpha) * w_anchor + alpha * w_finetuned

(computed in that form, so alpha = 0 gives the anchor and alpha = 1 the fine-tuned weights exactly).
The heads are not mixed: each task's head was trained with the fine-tuned encoder and is kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin

from . import Strategy, check_range, register

ANCHORS = ("previous", "pretrained")


@torch.no_grad()
def interpolate_(module: torch.nn.Module, anchor: dict[str, torch.Tensor], alpha: float) -> None:
    """module's floating-point state <- (1 - alpha) * anchor + alpha * module's, in place."""
    for name, t in module.state_dict(keep_vars=True).items():
        if t.is_floating_point():
            t.copy_((1 - alpha) * anchor[name].to(t.device) + alpha * t)


class WiSEFTPlugin(SupervisedPlugin):
    """Snapshots the anchor encoder before a task, mixes the encoder with it after the task."""

    def __init__(self, alpha: float, anchor: str):
        super().__init__()
        self.alpha, self.anchor_mode = alpha, anchor
        self.anchor: dict[str, torch.Tensor] | None = None

    def before_training_exp(self, strategy, **kwargs):
        if self.anchor is None or self.anchor_mode == "previous":
            self.anchor = {k: v.detach().clone() for k, v in strategy.model.encoder.state_dict().items()}

    def after_training_exp(self, strategy, **kwargs):
        interpolate_(strategy.model.encoder, self.anchor, self.alpha)


@register("wise_ft")
@dataclass
class WiSEFT(Strategy):
    """Fine-tune, then mix the encoder's weights with the anchor's after each task (WiSE-FT)."""

    alpha: float = 0.5  # weight of the fine-tuned encoder: 0 = the anchor, 1 = plain fine-tuning
    anchor: str = "previous"  # "previous": the encoder before this task (as ldifs); "pretrained": the original

    def validate(self) -> None:
        check_range("alpha", self.alpha, lo=0, hi=1)
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")

    def plugins(self, model):
        return [WiSEFTPlugin(self.alpha, self.anchor)]
