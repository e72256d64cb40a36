"""Surgical fine-tuning (Lee et al., ICLR 2023): fine-tune only some parts of the encoder by depth.

The encoder's parameters are split into depth groups by benchmark.models.groups (stem, each block
or stage, head: the same split for open_clip ViTs, ResNets and the micro convnet); the groups not
chosen are frozen (requires_grad off, so AdamW neither steps nor decays them) before training starts.
Task heads always train. BatchNorm running statistics of frozen convnet groups still follow the data
in training mode unless `model.freeze_bn_stats` is set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from avalanche.core import SupervisedPlugin

from benchmark.models.groups import parameter_groups

from . import SpecError, Strategy, register

CHOICES = ("first_half", "last_half")


def chosen_groups(names: list[str], train) -> list[str]:
    """The group names `train` selects: "first_half" / "last_half" of the groups by depth (the middle
    one, for an odd count, goes to the first half), or a list of group names or indices (negative from
    the head)."""
    half = (len(names) + 1) // 2
    if train == "first_half":
        return names[:half]
    if train == "last_half":
        return names[half:]
    items = train if isinstance(train, list) else [train]
    out = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and -len(names) <= item < len(names):
            out.append(names[item])
        elif isinstance(item, str) and item in names:
            out.append(item)
        else:
            raise ValueError(f"train: {item!r} is no group of this encoder; groups by depth: {', '.join(names)} "
                             f"(or indices 0..{len(names) - 1}, or {', '.join(CHOICES)})")
    return sorted(set(out), key=names.index)


class SurgicalPlugin(SupervisedPlugin):
    """Freezes the encoder's groups that are not chosen, once, before training starts."""

    def __init__(self, train):
        super().__init__()
        self.train = train

    def before_training(self, strategy, **kwargs):
        groups = parameter_groups(strategy.model.encoder)
        keep = set(chosen_groups([n for n, _ in groups], self.train))
        for name, params in groups:
            for _, p in params:
                p.requires_grad_(name in keep)


@register("surgical")
@dataclass
class Surgical(Strategy):
    """Fine-tune only chosen depth groups of the encoder (stem, blocks, head); the others stay frozen."""

    train: Union[str, list] = "last_half"  # "first_half", "last_half", or group names/indices (benchmark/models/groups.py)

    def validate(self) -> None:
        if isinstance(self.train, str) and self.train not in CHOICES and not self.train:
            raise ValueError(f"train must be one of {', '.join(CHOICES)}, or group names or indices")
        if isinstance(self.train, list) and not self.train:
            raise ValueError("train: an empty list trains no part of the encoder; use lp_ft or ft's heads instead")

    def plugins(self, model):
        names = [n for n, _ in parameter_groups(model.encoder)]
        try:  # the groups depend on the encoder: checked here, before any training
            chosen_groups(names, self.train)
        except ValueError as e:
            raise SpecError(f"strategy 'surgical': {e}") from None
        return [SurgicalPlugin(self.train)]
