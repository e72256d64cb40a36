"""Continual-learning and concept-forgetting metrics: pure functions of accuracy matrices.

Conventions (DESIGN.md): R has shape [T+1, T]; R[i, j] is the accuracy on task j (0-based column)
after training on the first i tasks (row 0: before any training, with the head's initialisation).
LP and ZS have shape [T+1, D]: one column per dataset of the evaluation suite.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _check_r(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] + 1:
        raise ValueError(f"R must have shape [T+1, T], got {R.shape}")
    return R


def acc(R) -> float:
    """ACC = mean_j R[T, j]: final accuracy over all tasks."""
    R = _check_r(R)
    return float(R[-1].mean())


def bwt(R) -> float:
    """BWT = mean over j < T of (R[T, j] - R[j, j]) (tasks 1-based); NaN for a single task."""
    R = _check_r(R)
    T = R.shape[1]
    if T < 2:
        return math.nan
    return float(np.mean([R[T, j] - R[j + 1, j] for j in range(T - 1)]))


def fwt(R) -> float:
    """FWT = mean over j >= 2 of (R[j-1, j] - R[0, j]) (tasks 1-based); NaN for a single task."""
    R = _check_r(R)
    T = R.shape[1]
    if T < 2:
        return math.nan
    return float(np.mean([R[j, j] - R[0, j] for j in range(1, T)]))


def mtil(R) -> dict[str, float]:
    """ZSCL's MTIL metrics on A = rows 1..T of R: Transfer, Avg, Last."""
    A = _check_r(R)[1:]  # A[i-1, j] = after training on task i (1-based)
    T = A.shape[1]
    transfer = float(np.mean([A[:j, j].mean() for j in range(1, T)])) if T > 1 else math.nan
    return {"Transfer": transfer, "Avg": float(A.mean()), "Last": float(A[-1].mean())}


def deltas(M) -> np.ndarray:
    """Concept forgetting per step and dataset: M[i, d] - M[0, d]."""
    M = np.asarray(M, dtype=float)
    return M - M[0:1]


def mean_over(values: np.ndarray, names: Sequence[str], keep: Sequence[str]) -> float:
    """Mean of the entries of a per-dataset vector whose name is in `keep` (NaN when none is)."""
    sel = [i for i, n in enumerate(names) if n in set(keep)]
    return float(np.mean(np.asarray(values, dtype=float)[sel])) if sel else math.nan


def mean_ci95(xs: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% t-interval (NaN half-width below two values)."""
    x = np.asarray([v for v in xs if not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    from scipy.stats import t

    return float(x.mean()), float(t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
