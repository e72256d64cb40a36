"""FLYP: fine-tune like you pre-train (Goyal et al., CVPR 2023), with the text tower frozen.

For a mini-batch of B images with labels y, let u_i be the unit-norm image embeddings and v_i the
unit-norm text embedding of the class prompts of y_i (the template-averaged zero-shot class
embeddings of the task's dataset; the text tower is frozen, so they are fixed), s the logit scale:

    L[i, j] = s * u_i . v_j                                            # [B, B]
    FLYP    = (CE(L, arange(B)) + CE(L^T, arange(B))) / 2              # CLIP's symmetric loss
    loss    = FLYP + ce * cross_entropy(task head)                      # ce = 0: FLYP as published

As in FLYP's code, the i-th text is the prompt of the i-th image's class, so two images of the same
class in a batch count as each other's negatives. FLYP classifies with the zero-shot head; with
train.head_init=zs the task's head is exactly that (s * v), and the contrastive loss pulls the
images towards it. With ce = 0 the head receives no gradient: an LP-init head stays the probe
fitted at the start of the task, so use head_init=zs, or ce > 0 to train the head too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor

from . import SpecError, Strategy, check_range, LAM_MAX, register
from .base import TrainingOutput


def flyp_loss(image_emb: Tensor, class_emb: Tensor, y: Tensor, logit_scale: float) -> Tensor:
    """CLIP's symmetric contrastive loss between images and their classes' text embeddings."""
    u = F.normalize(image_emb, dim=-1)
    v = class_emb[y]
    logits = logit_scale * u @ v.T
    target = torch.arange(len(y), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class FLYPPlugin(SupervisedPlugin):
    """Adds (or, with ce = 0, substitutes) the contrastive loss against the task's class prompts."""

    def __init__(self, ce: float):
        super().__init__()
        self.ce = ce
        self._out: TrainingOutput | None = None
        self._classes: Tensor | None = None

    def before_training_exp(self, strategy, **kwargs):
        text = strategy.model.text
        t = strategy.experience.task_label
        if t not in text.class_embeddings:
            raise RuntimeError(f"FLYP: no class embeddings for task {t}; the runner sets model.text")
        self._classes = text.class_embeddings[t].to(strategy.device)
        self._out = TrainingOutput(strategy.model.encoder)

    def before_backward(self, strategy, **kwargs):
        emb = self._out.take("FLYP")
        contrastive = flyp_loss(emb, self._classes, strategy.mb_y, strategy.model.text.logit_scale)
        # with ce = 0 the cross-entropy is dropped, not multiplied by 0: a zero gradient would still
        # let AdamW's weight decay shrink the head
        strategy.loss = contrastive + self.ce * strategy.loss if self.ce > 0 else contrastive

    def after_training_exp(self, strategy, **kwargs):
        if self._out is not None:
            self._out.remove()
            self._out = None


@register("flyp")
@dataclass
class FLYP(Strategy):
    """Fine-tune with CLIP's contrastive loss between images and their class prompts (frozen text tower)."""

    ce: float = 0.0  # weight of the task head's cross-entropy added to the contrastive loss (0 = FLYP)

    def validate(self) -> None:
        check_range("ce", self.ce, lo=0)
        check_range("ce", self.ce, hi=LAM_MAX)  # beyond it a float32 loss overflows

    def plugins(self, model):
        if getattr(model, "text", None) is None:
            raise SpecError("strategy 'flyp' needs a model with an aligned text tower (it contrasts images "
                            "with class prompts); this model has none: choose another strategy or model")
        return [FLYPPlugin(self.ce)]
