"""L2-SP: an l2 penalty towards the starting point's weights (Li, Grandvalet & Davoine, ICML 2018).

    L2SP = sum over the encoder's trainable weights w of (w - w_anchor)^2
    loss = cross_entropy + lam * L2SP             # lam = alpha / 2 of Li et al.

Only the encoder is anchored: each task's head is new (or, from LP/ZS init, already where it should
start) and AdamW's weight decay is its l2 term, as Li et al.'s beta term is for the new layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor

from . import Strategy, check_range, LAM_MAX, register
from .base import PenaltyReporter

ANCHORS = ("previous", "pretrained")


def squared_distance(params: list[Tensor], anchor: list[Tensor]) -> Tensor:
    """sum_k ||params_k - anchor_k||^2."""
    return torch.stack([(p - a).pow(2).sum() for p, a in zip(params, anchor)]).sum()


class L2SPPlugin(PenaltyReporter, SupervisedPlugin):
    """Adds lam * ||w - w_anchor||^2 over the encoder's trainable weights to every mini-batch's loss."""

    def __init__(self, lam: float, anchor: str):
        super().__init__()
        self.lam, self.anchor_mode = lam, anchor
        self.params: list[Tensor] = []
        self.anchor: list[Tensor] | None = None

    def before_training_exp(self, strategy, **kwargs):
        self.params = [p for p in strategy.model.encoder.parameters() if p.requires_grad]
        if self.anchor is None or self.anchor_mode == "previous":
            self.anchor = [p.detach().clone() for p in self.params]

    def before_backward(self, strategy, **kwargs):
        self.add_penalty(strategy, "l2sp", self.lam, squared_distance(self.params, self.anchor))


@register("l2sp")
@dataclass
class L2SP(Strategy):
    """Fine-tune with an l2 penalty between the encoder's weights and an anchor's (L2-SP)."""

    lam: float = 0.01  # weight of the squared distance (Li et al.'s alpha = 2 * lam)
    anchor: str = "previous"  # "previous": this task's starting point (after task t-1), as ldifs; "pretrained"

    def validate(self) -> None:
        check_range("lam", self.lam, lo=0)
        check_range("lam", self.lam, hi=LAM_MAX)  # beyond it a float32 loss overflows
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")

    def plugins(self, model):
        return [L2SPPlugin(self.lam, self.anchor)]
