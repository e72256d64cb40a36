"""ZSCL: zero-shot continual learning (Zheng et al., ICCV 2023), as its MTIL code runs it.

Two parts, with the defaults of ZSCL's script (Thunderbeee/ZSCL, mtil/scripts/ZSCL.sh, read with
mtil/src/models/finetune.py and helpers.py):

Distillation in feature space. At every training step a batch X of `ref_batch` reference images (none
of the tasks'; ZSCL: ImageNet) goes through the encoder being trained (u_i, unit-norm) and through the
frozen pre-trained encoder (u0_i); t_k are the unit-norm embeddings of K reference texts (ZSCL: the
captions of Conceptual Captions' validation split) by the pre-trained text tower; s is CLIP's logit scale:

    C = s * U t^T, P = s * U0 t^T                                       # [B, K]: current, pre-trained
    D(a, b) = T^2 * mean over rows r of ( - sum_k softmax(a_r / T)_k * log softmax(b_r / T)_k )
    image   = D(P, C)          # each image's distribution over the texts
    text    = D(P^T, C^T)      # each text's distribution over the images of the batch
    l2      = sum over trained parameters of (w - w_task_start)^2      # ZSCL's --l2 1
    loss    = CE + image_loss * image + text_loss * text + l2 * l2

Weight ensemble in parameter space (ZSCL's --we, --avg_freq 100). Within a task, with w_0 the weights
at its start and w_c after its c-th step, the average starts as w_0 and takes in w_c after every step c
with (c - 1) divisible by `we_freq`, as a running mean: avg <- (n * avg + w_c) / (n + 1), n members so
far. ZSCL runs N + 1 steps of which the last has a learning rate of 0 (its loop is range(N + 1), its
cosine reaches 0 at step N) and merges after it when N is divisible by the frequency; here the task
ends after N steps and, when N is divisible by `we_freq`, the final weights join the average once more
in its place. At the end of the task the parameters become the average (buffers, such as a convnet's
BatchNorm statistics, stay the trained ones: ZSCL averages parameters only), and the next task starts
from it. With 1,000 steps and a frequency of 100 the average holds 12 members.

Trained parameters: the image encoder and the task's head. ZSCL also trains CLIP's text tower (its
--train-mode=whole) and classifies through it; here the text tower is frozen, the head starts from
the text embeddings (train.head_init: zs, the MTIL presets) and plays its part.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor

from . import SpecError, Strategy, check_range, LAM_MAX, register
from .base import PenaltyReporter


def distillation(teacher: Tensor, student: Tensor, T: float) -> Tensor:
    """T^2 times the mean over rows of the cross-entropy of softmax(student / T) against softmax(teacher / T)."""
    p = F.softmax(teacher / T, dim=1)
    return -(p * F.log_softmax(student / T, dim=1)).sum(1).mean() * T ** 2


def zscl_terms(u: Tensor, u0: Tensor, texts: Tensor, logit_scale: float, T: float) -> tuple[Tensor, Tensor]:
    """(image, text) distillation terms for current and pre-trained image embeddings u, u0 [B, D] (any
    norm: they are normalised here) and unit-norm text embeddings [K, D]."""
    current = logit_scale * F.normalize(u, dim=-1) @ texts.T
    pretrained = logit_scale * F.normalize(u0, dim=-1) @ texts.T
    return distillation(pretrained, current, T), distillation(pretrained.T, current.T, T)


def l2_to(params: dict[str, Tensor], start: dict[str, Tensor]) -> Tensor:
    """sum over parameters of the squared distance to their values at the start of the task."""
    return sum(((p - start[n]) ** 2).sum() for n, p in params.items())


@torch.no_grad()
def merge_(avg: dict[str, Tensor], params: dict[str, Tensor], members: int) -> None:
    """avg <- (members * avg + params) / (members + 1), in place (ZSCL's merge_we)."""
    for n, a in avg.items():
        a.copy_((a * members + params[n].detach()) / (1.0 + members))


class ZSCLPlugin(PenaltyReporter, SupervisedPlugin):
    def __init__(self, hp: "ZSCL"):
        super().__init__()
        self.hp = hp
        self.ref = None  # the reference set and the pre-trained encoder, loaded before the first task
        self.frozen = None
        self._batches = None

    def before_training(self, strategy, **kwargs):
        if self.ref is not None:
            return
        model = strategy.model
        load = getattr(model, "reference_set", None)
        if load is None:
            raise RuntimeError("zscl: the model has no reference_set loader; the runner sets it (experiment/runner.py)")
        self.ref = load(self.hp.ref_images, self.hp.ref_texts)
        self.frozen = copy.deepcopy(model.encoder).eval()  # the pre-trained encoder: ZSCL's reference model
        for p in self.frozen.parameters():
            p.requires_grad_(False)
        seed = int(torch.randint(0, 2 ** 62, (1,)).item())  # from the run's seed; a private stream afterwards
        self._gen = torch.Generator().manual_seed(seed)
        self._loader = torch.utils.data.DataLoader(self.ref["images"], batch_size=self.hp.ref_batch, shuffle=True,
                                                   generator=self._gen, num_workers=self.ref.get("num_workers", 0))

    def _next_batch(self, device) -> Tensor:
        for _ in range(2):  # cycled: a new shuffled pass when one ends, as ZSCL does
            if self._batches is None:
                self._batches = iter(self._loader)
            try:
                x, _ = next(self._batches)
                return x.to(device)
            except StopIteration:
                self._batches = None
        raise RuntimeError("zscl: the reference set gives no batch")

    def before_training_exp(self, strategy, **kwargs):
        self.params = {n: p for n, p in strategy.model.named_parameters() if p.requires_grad}
        self.start = {n: p.detach().clone() for n, p in self.params.items()}
        self.avg = {n: p.clone() for n, p in self.start.items()} if self.hp.we_freq else None
        self.members, self.steps = 1, 0

    def before_backward(self, strategy, **kwargs):
        model, hp = strategy.model, self.hp
        x = self._next_batch(strategy.device)
        frozen = getattr(strategy, "frozen_forward_context", None)
        with torch.no_grad(), (frozen() if frozen else torch.autocast(x.device.type, enabled=False)):
            u0 = self.frozen(x).float()
        u = model.encoder(x).float()
        image, text = zscl_terms(u, u0, self.ref["texts"], model.text.logit_scale, hp.T)
        if hp.image_loss > 0:
            self.add_penalty(strategy, "zscl_image", hp.image_loss, image)
        if hp.text_loss > 0:
            self.add_penalty(strategy, "zscl_text", hp.text_loss, text)
        if hp.l2 > 0:
            self.add_penalty(strategy, "l2", hp.l2, l2_to(self.params, self.start))

    def after_training_iteration(self, strategy, **kwargs):
        self.steps += 1
        if self.avg is not None and (self.steps - 1) % self.hp.we_freq == 0:
            merge_(self.avg, self.params, self.members)
            self.members += 1

    def after_training_exp(self, strategy, **kwargs):
        if self.avg is None:
            return
        if self.steps % self.hp.we_freq == 0:  # in place of ZSCL's last, zero-rate step
            merge_(self.avg, self.params, self.members)
            self.members += 1
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(self.avg[n])


@register("zscl")
@dataclass
class ZSCL(Strategy):
    """Distil the pre-trained model's image-text similarities on reference images and texts, with a weight ensemble (ZSCL)."""

    paper_name: ClassVar[str] = "ZSCL"  # in tables: "ZSCL" under ZS-init heads, as ZSCL classifies (strategies/catalog.py)
    paper_init: ClassVar[str] = "zs"
    # at every step, a training step (forward and backward) on a reference batch as large as the training batch
    # (its default) and the frozen pre-trained encoder's forward on it (--dry-run's GPU-hours)
    extra_forward: ClassVar[float] = 1 + 1 / 3

    # reference images: a registered dataset (its train split) or folder:<path under data.root> (ZSCL: ImageNet's train images)
    ref_images: str = "folder:ImageNet/train"
    # reference texts: prompts:<dataset> (its class names in its first template) or captions:<tab-separated file with a title column>
    ref_texts: str = "captions:Validation_GCC-1.1.0-Validation_output.csv"
    ref_batch: int = 64  # reference images per training step (ZSCL: its batch size, 64)
    T: float = 2.0  # distillation temperature (ZSCL's --T)
    image_loss: float = 1.0  # weight of the image-to-texts distillation (ZSCL's --image_loss: 1)
    text_loss: float = 1.0  # weight of the text-to-images distillation (ZSCL's --text_loss: 1)
    l2: float = 1.0  # weight of the squared distance to the task's starting weights (ZSCL's --l2 1)
    we_freq: int = 100  # steps between weight-ensemble members (ZSCL's --avg_freq); 0: no ensemble

    def validate(self) -> None:
        from benchmark.reference_set import check_specs

        check_specs(self.ref_images, self.ref_texts)
        if isinstance(self.ref_batch, bool) or not isinstance(self.ref_batch, int) or not 1 <= self.ref_batch <= 65536:
            raise ValueError(f"ref_batch must be an integer in 1..65536, got {self.ref_batch!r}")
        if isinstance(self.we_freq, bool) or not isinstance(self.we_freq, int) or not 0 <= self.we_freq <= 10_000_000:
            raise ValueError(f"we_freq must be an integer in 0..10000000 (0: no weight ensemble), got {self.we_freq!r}")
        check_range("T", self.T, lo=0, lo_open=True, hi=1000)
        for name in ("image_loss", "text_loss", "l2"):
            check_range(name, getattr(self, name), lo=0, hi=LAM_MAX)

    def plugins(self, model):
        if getattr(model, "text", None) is None:
            raise SpecError("strategy 'zscl' needs a model with an aligned text tower (it distils image-text "
                            "similarities); this model has none: choose another strategy or model")
        return [ZSCLPlugin(self)]
