"""Continual-learning and concept-forgetting metrics: pure functions of accuracy matrices.

Conventions (docs/design.md): R has shape [T+1, T]; R[i, j] is the accuracy on task j (0-based column)
after training on the first i tasks (row 0: before any training, with the head's initialisation).
LP and ZS have shape [T+1, D]: one column per dataset of the evaluation suite.

Where Avalanche defines the same quantity (tests/evaluation/reporting/test_metrics.py compares on the same matrices):
- ACC: Avalanche's stream accuracy pools every test sample of the stream, so it weights tasks by
  test-set size; ACC here is the unweighted mean over tasks (GEM's ACC). Equal for equal test sets.
- BWT: Avalanche's `Forgetting` of experience k is (accuracy just after training on k) minus
  (accuracy now), averaged over the experiences trained before the last one; its `BWT` is minus
  that. So `bwt(R)` = Avalanche's stream BWT = -(Avalanche's stream forgetting), same sign as GEM.
  (Forgetting as "max over earlier steps minus final", as in Chaudhry et al., is not this metric.)
- FWT: Avalanche's `ForwardTransfer` of experience k is (accuracy after training on k-1) minus
  (accuracy at initialisation): the same as `fwt(R)` per task, averaged over k >= 2.
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


def mtil(A) -> dict[str, float]:
    """ZSCL's MTIL metrics on A [T, T]: A[i, j] = accuracy on dataset j after training on task i (0-based).

    As computed by ZSCL's own results script (Thunderbeee/ZSCL, mtil/results.ipynb, `statistics`):
    transfer_j = mean over i < j of A[i, j] for j = 2..T (1-based), Transfer = mean of those;
    Avg = mean of every entry; Last = mean of the last row. Transfer is NaN for T = 1 (no entry
    above the diagonal).
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 1:
        raise ValueError(f"A must have shape [T, T] (rows: after each task; columns: the ordering's datasets), got {A.shape}")
    T = A.shape[1]
    transfer = float(np.mean([A[:j, j].mean() for j in range(1, T)])) if T > 1 else math.nan
    return {"Transfer": transfer, "Avg": float(A.mean()), "Last": float(A[-1].mean())}


def zs_task_matrix(ZS, suite: Sequence[str], ordering: Sequence[str]) -> np.ndarray:
    """ZSCL's A: the zero-shot matrix after steps 1..T, columns = the ordering's datasets in order."""
    ZS = np.asarray(ZS, dtype=float)
    if ZS.ndim != 2 or ZS.shape[1] != len(suite) or ZS.shape[0] != len(ordering) + 1:
        raise ValueError(f"ZS must have shape [T+1, D] = [{len(ordering) + 1}, {len(suite)}], got {ZS.shape}")
    missing = [d for d in ordering if d not in suite]
    if missing:
        raise ValueError(f"ordering datasets {missing} are not columns of the suite {list(suite)}")
    return ZS[1:, [list(suite).index(d) for d in ordering]]


def mtil_zs(ZS, suite: Sequence[str], ordering: Sequence[str]) -> dict[str, float]:
    """MTIL Transfer / Avg / Last as ZSCL reports them: every entry scored zero-shot."""
    return mtil(zs_task_matrix(ZS, suite, ordering))


def mtil_lp(R) -> dict[str, float]:
    """The same formulas on R's rows 1..T, suffixed `_LP`: entries for tasks not trained yet are the
    accuracy of the head the task would start from (the linear probe under the default LP-init), so
    Transfer_LP measures probe transfer, not ZSCL's zero-shot transfer."""
    return {f"{k}_LP": v for k, v in mtil(_check_r(R)[1:]).items()}


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
