"""Numeric precision of forward passes: fp32 (the paper's) or bf16 autocast (`train.precision`)."""
from __future__ import annotations

import contextlib

import torch


def autocast(device: str, precision: str):
    """bf16 autocast for `precision: bf16`; a no-op context for fp32 (the paper default)."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
