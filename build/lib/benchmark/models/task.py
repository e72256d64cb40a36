"""The task model: the image encoder being fine-tuned, one linear head per task, and what a strategy
may read of the frozen text tower."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from avalanche.models import MultiHeadClassifier, MultiTaskModule
from torch import nn

from .foundation import FoundationModel


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
