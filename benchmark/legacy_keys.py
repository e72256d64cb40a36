"""Settings added to reproduce the reference protocol, and how they stay out of older runs' ids.

A run's id hashes its config (evaluation/storage/records.py). A setting added later would change the id of
every run made before it, even of runs it does not affect, so each new setting here is left out of
a run's config while it holds the value that reproduces the earlier behaviour (`LEGACY`); any other
value is part of the config and of the id. The micro presets' ids and records therefore stand.
"""
from __future__ import annotations

from typing import Any

from .reference_probe import REFERENCE_ONLY_KEYS


def strip_legacy(cfg: dict[str, Any]) -> dict[str, Any]:
    """`cfg` (a validated, dumped config) without the new settings that hold their legacy value."""
    train = cfg.get("train")
    if isinstance(train, dict) and train.get("probe", "sklearn") == "sklearn":
        for k in REFERENCE_ONLY_KEYS:
            train.pop(k, None)
    data = cfg.get("data")
    if isinstance(data, dict) and not data.get("variants"):
        data.pop("variants", None)
    if isinstance(data, dict) and data.get("max_templates") is None:  # every template, as before
        data.pop("max_templates", None)
    if isinstance(train, dict) and train.get("checkpoint", "end") == "end":
        train.pop("checkpoint", None)
    if isinstance(train, dict) and not train.get("anchor_autocast", False):
        train.pop("anchor_autocast", None)
    if isinstance(train, dict) and train.get("compile", "off") == "off":
        train.pop("compile", None)
    if isinstance(train, dict) and train.get("iterations") is None:  # epochs, as before
        train.pop("iterations", None)
    if isinstance(train, dict) and train.get("label_smoothing", 0.0) == 0.0:
        train.pop("label_smoothing", None)
    return cfg
