"""Numeric precision of a run (`train.precision`): fp32 (the paper's), tf32 (float32 matmuls and
convolutions on TF32 tensor cores, CUDA only: on the CPU it computes what fp32 does) or bf16 (autocast
forward passes; loss, optimiser state and weights stay float32)."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


def autocast(device: str, precision: str):
    """bf16 autocast for `precision: bf16`; a no-op context otherwise."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Within the block, `precision: tf32` lets CUDA run float32 matmuls and cuDNN convolutions on TF32
    tensor cores (10-bit mantissa inputs, float32 accumulation); the previous settings come back after,
    so one run's choice never leaks into the next run of the process."""
    if precision != "tf32":
        yield
        return
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before[0])
        torch.backends.cudnn.allow_tf32 = before[1]
