"""LDIFS: l2 distance in feature space to a frozen anchor encoder (Mukhoti et al., TMLR 2024).

For internal feature maps f_1..f_L of the image encoder (each [B, N, C]):

    norm(f) = f / (sqrt(sum over axis 1 of f^2) + 1e-10)      # axis 1: the token axis
    d_l     = mean over (N, C) of (norm(f_l_anchor) - norm(f_l_ft))^2
    LDIFS   = mean over the batch of (mean over l of d_l)
    loss    = cross_entropy + lam * LDIFS

Features are read with forward hooks on the encoder's own modules, never by re-implementing the
forward pass, so the same code serves open_clip ViTs and the micro model's convnet.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from avalanche.core import SupervisedPlugin
from torch import Tensor, nn

# ldifs_distance lives beside the taps so that evaluation/scoring/drift.py records drift with the same definition
from benchmark.models import feature_taps, ldifs_distance, select_taps

from . import SpecError, Strategy, check_range, LAM_MAX, register
from .base import PenaltyReporter

ANCHORS = ("previous", "pretrained")
LAYER_PRESETS = ("reference", "last", "all")


class _Taps:
    """Forward hooks that keep the outputs of chosen modules of one encoder."""

    def __init__(self, modules: Sequence[nn.Module], only_with_grad: bool):
        self.outputs: list[Tensor | None] = [None] * len(modules)
        self.only_with_grad = only_with_grad
        self.handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(modules)]

    def _hook(self, i):
        def fn(_module, _inp, out):
            if self.only_with_grad and not torch.is_grad_enabled():
                return  # evaluation passes: nothing to regularise, keep no tensors alive
            self.outputs[i] = out[0] if isinstance(out, tuple) else out
        return fn

    def take(self) -> list[Tensor]:
        outs, self.outputs = self.outputs, [None] * len(self.outputs)
        if any(o is None for o in outs):
            raise RuntimeError("LDIFS: a tapped layer did not run in this forward pass")
        return outs

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


class LDIFSPlugin(PenaltyReporter, SupervisedPlugin):
    """Adds lam * LDIFS(anchor(x), encoder(x)) to the loss of every training mini-batch."""

    def __init__(self, lam: float, anchor: str, taps: Sequence[int], norm_axis: int):
        super().__init__()
        self.lam, self.anchor_mode, self.taps, self.norm_axis = lam, anchor, list(taps), norm_axis
        self.anchor: nn.Module | None = None
        self._ft: _Taps | None = None
        self._pre: _Taps | None = None

    def before_training_exp(self, strategy, **kwargs):
        encoder = strategy.model.encoder
        if self.anchor is None or self.anchor_mode == "previous":
            # "previous": the encoder as it enters this task (after task t-1), as in the reference code.
            self.anchor = copy.deepcopy(encoder).eval()
            for p in self.anchor.parameters():
                p.requires_grad_(False)
        taps_ft, taps_pre = feature_taps(encoder), feature_taps(self.anchor)
        self._ft = _Taps([taps_ft[i][1] for i in self.taps], only_with_grad=True)
        self._pre = _Taps([taps_pre[i][1] for i in self.taps], only_with_grad=False)

    def before_backward(self, strategy, **kwargs):
        feats_ft = self._ft.take()
        frozen = getattr(strategy, "frozen_forward_context", None)  # train.anchor_autocast (benchmark/training.py)
        with torch.no_grad(), (frozen() if frozen is not None else contextlib.nullcontext()):
            self.anchor(strategy.mb_x)
        feats_pre = [f.float() for f in self._pre.take()]
        self.add_penalty(strategy, "ldifs", self.lam, ldifs_distance(feats_pre, feats_ft, self.norm_axis))

    def after_training_exp(self, strategy, **kwargs):
        for taps in (self._ft, self._pre):
            if taps is not None:
                taps.remove()
        self._ft = self._pre = None


@register("ldifs")
@dataclass
class LDIFS(Strategy):
    """Fine-tune with an l2 penalty between normalised internal features and a frozen anchor's."""

    lam: float = 10.0  # weight of the feature-distance term (the paper's lambda)
    anchor: str = "previous"  # "previous": encoder after task t-1 (reference code); "pretrained": the original
    layers: Union[str, list] = "reference"  # "reference" (5 taps), "last", "all", or tap indices (0 = stem/ln_pre)
    norm_axis: int = 1  # axis of [B, N, C] maps that is l2-normalised: 1 = tokens (reference), 2 = channels

    def validate(self) -> None:
        check_range("lam", self.lam, lo=0)
        check_range("lam", self.lam, hi=LAM_MAX)  # beyond it a float32 loss overflows
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")
        indices = self.layers if isinstance(self.layers, list) else [self.layers]
        if not isinstance(self.layers, str) and (not indices or any(
                isinstance(i, bool) or not isinstance(i, int) for i in indices)):
            # a flat list is one value (see strategies.expand), so [last, all] is not a sweep of presets
            hint = "; to sweep choices give a list of lists, e.g. layers=[[0,4,7],[11]]" \
                if isinstance(self.layers, list) else ""
            raise ValueError(f"layers must be one of {', '.join(LAYER_PRESETS)}, a tap index or a non-empty list of "
                             f"tap indices, got {self.layers!r}{hint}")
        if isinstance(self.layers, str) and self.layers not in LAYER_PRESETS:
            raise ValueError(f"layers must be one of {', '.join(LAYER_PRESETS)} or a list of tap indices, "
                             f"got {self.layers!r}")
        if self.norm_axis not in (1, 2):
            raise ValueError(f"norm_axis must be 1 (tokens) or 2 (channels), got {self.norm_axis}")

    def plugins(self, model):
        try:  # which taps exist depends on the encoder, so `layers` is checked here, before training
            taps = select_taps(len(feature_taps(model.encoder)), self.layers)
        except ValueError as e:
            raise SpecError(f"strategy 'ldifs': {e}") from None
        return [LDIFSPlugin(self.lam, self.anchor, taps, self.norm_axis)]
