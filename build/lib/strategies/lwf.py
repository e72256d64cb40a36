"""LwF: Learning without Forgetting (Li & Hoiem, TPAMI 2017) for a multi-head task model.

For the current mini-batch x, every old task's head is distilled from the model as it was after
the previous task (the teacher):

    LwF  = sum over old tasks s of KL(softmax(teacher_s(x) / T) || softmax(model_s(x) / T))
    loss = cross_entropy + lam * LwF

(KL with batch mean and no T^2 factor, as Avalanche's LearningWithoutForgetting computes it.)

Avalanche's LwFPlugin handles a MultiTaskModule correctly (it distils every old head on the current
inputs, over the classes seen), but it is not used as is, for two reasons: it runs the current model
a second time to get all heads' outputs, a second forward and backward through the whole encoder at
every step (about twice the cost of fine-tuning on a ViT), and it keeps the teacher in training mode,
so dropout and BatchNorm batch statistics make the teacher's targets noisy. Here the old heads read
the embedding of the training forward pass itself (taken with a forward hook on the encoder), and
the teacher is a frozen copy in eval mode, run once per step without a graph.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor

from . import Strategy, check_range, LAM_MAX, register
from .base import PenaltyReporter, TrainingOutput


def lwf_distillation(student: dict[int, Tensor], teacher: dict[int, Tensor], temperature: float) -> Tensor:
    """Sum over tasks of KL(softmax(teacher / T) || softmax(student / T)), batch mean."""
    total = 0.0
    for t, logits in student.items():
        log_p = F.log_softmax(logits / temperature, dim=1)
        q = F.softmax(teacher[t] / temperature, dim=1)
        total = total + F.kl_div(log_p, q, reduction="batchmean")
    return total


class LwFPlugin(PenaltyReporter, SupervisedPlugin):
    """Adds lam * LwF(teacher, model) on the old tasks' heads to every training mini-batch's loss."""

    def __init__(self, lam: float, temperature: float):
        super().__init__()
        self.lam, self.temperature = lam, temperature
        self.teacher = None  # the TaskModel after the previous task, frozen
        self._out: TrainingOutput | None = None

    def before_training_exp(self, strategy, **kwargs):
        self._out = TrainingOutput(strategy.model.encoder)

    def before_backward(self, strategy, **kwargs):
        emb = self._out.take("LwF")
        if self.teacher is None:
            return
        model = strategy.model
        old = sorted(self.teacher.heads.known_train_tasks_labels)
        emb = F.normalize(emb, dim=-1)  # what TaskModel.embed gives the heads
        student = {t: model.heads.forward_single_task(emb, t) for t in old}
        with torch.no_grad():
            t_emb = self.teacher.embed(strategy.mb_x)
            teacher = {t: self.teacher.heads.forward_single_task(t_emb, t) for t in old}
        self.add_penalty(strategy, "lwf", self.lam, lwf_distillation(student, teacher, self.temperature))

    def after_training_exp(self, strategy, **kwargs):
        if self._out is not None:
            self._out.remove()  # before the copy: a deep copy would carry the hook along
            self._out = None
        self.teacher = copy.deepcopy(strategy.model).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)


@register("lwf")
@dataclass
class LwF(Strategy):
    """Fine-tune while distilling the previous model's old-task heads on the current inputs."""

    lam: float = 1.0  # weight of the distillation term (Avalanche's alpha)
    temperature: float = 2.0  # softmax temperature of the distillation (Li & Hoiem use 2)

    def validate(self) -> None:
        check_range("lam", self.lam, lo=0)
        check_range("lam", self.lam, hi=LAM_MAX)  # beyond it a float32 loss overflows
        # below ~0.01 the logits / temperature overflow to inf and the loss to NaN; above 100 it distils nothing
        check_range("temperature", self.temperature, lo=0.01, hi=100)

    def plugins(self, model):
        return [LwFPlugin(self.lam, self.temperature)]
