"""Metrics on small matrices whose expected values are worked out by hand (docs/design.md conventions),
and compared with Avalanche's definitions of the same quantities."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluation.reporting.metrics import (acc, bwt, deltas, fwt, mean_ci95, mean_over, mtil, mtil_lp, mtil_zs,
                                zs_task_matrix)

# T = 3 tasks. R[i, j]: accuracy on task j (0-based column = task j+1) after training on the
# first i tasks; row 0 is before any training.
#
#                task1  task2  task3
R = np.array([[10.0, 20.0, 30.0],   # row 0: before training
              [80.0, 40.0, 25.0],   # row 1: after task 1
              [74.0, 90.0, 45.0],   # row 2: after task 2
              [60.0, 85.0, 95.0]])  # row 3: after task 3 (= T)

# By hand (tasks 1-based, R[i, j] with j the task number):
#   ACC = mean_j R[3, j] = (60 + 85 + 95) / 3 = 240 / 3 = 80
#   BWT = mean over j = 1, 2 of R[3, j] - R[j, j]
#       = ((60 - 80) + (85 - 90)) / 2 = (-20 - 5) / 2 = -12.5
#   FWT = mean over j = 2, 3 of R[j-1, j] - R[0, j]
#       = ((R[1,2] - R[0,2]) + (R[2,3] - R[0,3])) / 2 = ((40 - 20) + (45 - 30)) / 2 = 35 / 2 = 17.5
#   The MTIL formulas on A = rows 1..3 of R (the *_LP variants):
#     Transfer = mean over j = 2, 3 of (mean over i < j of A[i, j])
#              = (A[1,2] + (A[1,3] + A[2,3]) / 2) / 2 = (40 + (25 + 45) / 2) / 2 = (40 + 35) / 2 = 37.5
#     Avg  = (80+40+25 + 74+90+45 + 60+85+95) / 9 = (145 + 209 + 240) / 9 = 594 / 9 = 66
#     Last = (60 + 85 + 95) / 3 = 80


def test_acc_bwt_fwt_by_hand():
    assert acc(R) == pytest.approx(80.0)
    assert bwt(R) == pytest.approx(-12.5)
    assert fwt(R) == pytest.approx(17.5)


def test_mtil_formulas_on_r_by_hand():
    assert mtil(R[1:]) == pytest.approx({"Transfer": 37.5, "Avg": 66.0, "Last": 80.0})
    assert mtil_lp(R) == pytest.approx({"Transfer_LP": 37.5, "Avg_LP": 66.0, "Last_LP": 80.0})


# ZSCL's Transfer on the zero-shot matrix. Suite w, x, y, z; ordering y > w > x (z held out).
# ZS[i, d]: zero-shot accuracy (%) on dataset d after step i.
#                 w     x     y     z
ZS = np.array([[50.0, 40.0, 30.0, 60.0],   # pre-trained (not part of ZSCL's matrix)
               [45.0, 35.0, 20.0, 55.0],   # after y
               [30.0, 25.0, 15.0, 50.0],   # after w
               [20.0, 10.0,  5.0, 45.0]])  # after x
SUITE, ORDER = ["w", "x", "y", "z"], ["y", "w", "x"]
# A = rows 1..3, columns in the ordering's order (y, w, x):
#   A = [[20, 45, 35],
#        [15, 30, 25],
#        [ 5, 20, 10]]
#   Transfer: dataset 2 (w): mean of A[1, w] = 45; dataset 3 (x): mean of A[1, x], A[2, x] = (35 + 25) / 2 = 30
#             Transfer = (45 + 30) / 2 = 37.5
#   Avg  = (20 + 45 + 35 + 15 + 30 + 25 + 5 + 20 + 10) / 9 = 205 / 9 = 22.777...
#   Last = (5 + 20 + 10) / 3 = 35 / 3 = 11.666...
# The held-out column z and the pre-trained row never enter.


def test_zscl_transfer_on_the_zero_shot_matrix_by_hand():
    np.testing.assert_allclose(zs_task_matrix(ZS, SUITE, ORDER), [[20, 45, 35], [15, 30, 25], [5, 20, 10]])
    m = mtil_zs(ZS, SUITE, ORDER)
    assert m["Transfer"] == pytest.approx(37.5)
    assert m["Avg"] == pytest.approx(205 / 9)
    assert m["Last"] == pytest.approx(35 / 3)


def test_zscl_transfer_matches_zscl_statistics_written_per_dataset():
    # ZSCL's script averages per dataset first (avg = arr.mean(axis=0), then the mean of that);
    # on a full square matrix that is the mean of every entry.
    A = zs_task_matrix(ZS, SUITE, ORDER)
    per_dataset_avg = A.mean(axis=0)
    per_dataset_transfer = [np.mean([A[i, j] for i in range(j)]) for j in range(1, 3)]
    assert mtil(A)["Avg"] == pytest.approx(per_dataset_avg.mean())
    assert mtil(A)["Transfer"] == pytest.approx(np.mean(per_dataset_transfer))


def test_metrics_accept_nested_lists_and_return_floats():
    rows = R.tolist()
    for value in (acc(rows), bwt(rows), fwt(rows), *mtil_lp(rows).values(), *mtil_zs(ZS.tolist(), SUITE, ORDER).values()):
        assert isinstance(value, float)
    assert bwt(rows) == pytest.approx(-12.5)


def test_two_task_matrix_by_hand():
    # T = 2: R = [[5, 15], [70, 30], [50, 80]]
    #   ACC = (50 + 80) / 2 = 65;  BWT = R[2,1] - R[1,1] = 50 - 70 = -20
    #   FWT = R[1,2] - R[0,2] = 30 - 15 = 15
    #   Transfer_LP = A[1,2] = 30;  Avg_LP = (70 + 30 + 50 + 80) / 4 = 57.5;  Last_LP = 65
    R2 = [[5.0, 15.0], [70.0, 30.0], [50.0, 80.0]]
    assert acc(R2) == pytest.approx(65.0)
    assert bwt(R2) == pytest.approx(-20.0)
    assert fwt(R2) == pytest.approx(15.0)
    assert mtil_lp(R2) == pytest.approx({"Transfer_LP": 30.0, "Avg_LP": 57.5, "Last_LP": 65.0})


def test_single_task_gives_nan_for_bwt_fwt_transfer():
    R1 = np.array([[10.0], [70.0]])
    assert acc(R1) == pytest.approx(70.0)
    assert math.isnan(bwt(R1))
    assert math.isnan(fwt(R1))
    m = mtil_lp(R1)
    assert math.isnan(m["Transfer_LP"])
    assert m["Avg_LP"] == pytest.approx(70.0) and m["Last_LP"] == pytest.approx(70.0)
    # zero-shot, one task (x) of the suite: A = [[ZS[1, x]]] = [[35]]
    z = mtil_zs(ZS[:2], SUITE, ["x"])
    assert math.isnan(z["Transfer"])
    assert z["Avg"] == pytest.approx(35.0) and z["Last"] == pytest.approx(35.0)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 3), (3,), (2, 2, 1)])
@pytest.mark.parametrize("fn", [acc, bwt, fwt, mtil_lp])
def test_wrong_shape_raises(fn, shape):
    with pytest.raises(ValueError):
        fn(np.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 3), (0, 0), (3,)])
def test_mtil_needs_a_square_matrix(shape):
    with pytest.raises(ValueError):
        mtil(np.zeros(shape))


def test_zero_shot_matrix_checks_shape_and_names():
    with pytest.raises(ValueError, match="shape"):
        zs_task_matrix(ZS[:3], SUITE, ORDER)  # T + 1 = 4 rows expected
    with pytest.raises(ValueError, match="not columns"):
        zs_task_matrix(ZS, SUITE, ["y", "w", "q"])


# --- The same quantities as Avalanche defines them, on the same matrix R -----------------------

def test_bwt_is_minus_avalanche_forgetting():
    from avalanche.evaluation.functional import forgetting
    from avalanche.evaluation.metrics import BWT, Forgetting

    T = R.shape[1]
    # Avalanche's standalone metrics: "initial" = accuracy right after training on k, "last" = now.
    f, b = Forgetting(), BWT()
    for k in range(T - 1):  # the last task has no later step: Avalanche leaves it out too
        for m in (f, b):
            m.update(k, R[k + 1, k], initial=True)
            m.update(k, R[T, k])
    assert np.mean(list(f.result().values())) == pytest.approx(-bwt(R))
    assert np.mean(list(b.result().values())) == pytest.approx(bwt(R))
    # avalanche.evaluation.functional.forgetting on the square [time, experience] matrix (rows 1..T)
    F = forgetting(R[1:])
    assert np.mean(F[-1, : T - 1]) == pytest.approx(-bwt(R))


def test_fwt_equals_avalanche_forward_transfer():
    from avalanche.evaluation.metrics import ForwardTransfer

    T = R.shape[1]
    ft = ForwardTransfer()
    for k in range(T):
        ft.update(k, R[0, k], initial=True)  # before any training (Avalanche: at initialisation)
    for k in range(1, T):
        ft.update(k, R[k, k])  # after training on the previous experience k-1 (row k)
    assert np.mean(list(ft.result().values())) == pytest.approx(fwt(R))


def _predictions(accuracy: float, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.zeros(n, dtype=torch.long)
    pred = y.clone()
    pred[round(accuracy * n):] = 1  # the first accuracy * n predictions are right
    return pred, y


def test_acc_is_avalanches_per_task_accuracy_averaged_not_its_pooled_stream_accuracy():
    from avalanche.evaluation.metrics import Accuracy, TaskAwareAccuracy

    final = R[-1] / 100  # 0.60, 0.85, 0.95
    per_task, pooled = TaskAwareAccuracy(), Accuracy()
    sizes = [20, 20, 20]
    for k, (a, n) in enumerate(zip(final, sizes)):
        per_task.update(*_predictions(a, n), k)
        pooled.update(*_predictions(a, n))
    assert np.mean(list(per_task.result().values())) * 100 == pytest.approx(acc(R))
    assert pooled.result() * 100 == pytest.approx(acc(R))  # equal test sets: the same number
    # Unequal test sets: Avalanche's stream accuracy weights tasks by size, ACC does not.
    pooled = Accuracy()
    for a, n in zip(final, [20, 20, 60]):
        pooled.update(*_predictions(a, n))
    assert pooled.result() == pytest.approx((12 + 17 + 57) / 100)  # 0.86
    assert acc(R) / 100 == pytest.approx(0.80)


def test_deltas():
    # LP over 3 steps (rows) and 2 datasets (columns); deltas = each row minus row 0.
    M = [[50.0, 60.0],
         [45.0, 70.0],
         [30.0, 65.0]]
    expected = np.array([[0.0, 0.0],
                         [-5.0, 10.0],
                         [-20.0, 5.0]])
    np.testing.assert_allclose(deltas(M), expected)
    assert deltas(np.array(M)).shape == (3, 2)


def test_mean_over_held_out_names():
    names = ["mnist", "animals", "digits", "textures"]
    values = np.array([-4.0, 2.0, -10.0, 6.0])
    ordering = ["mnist", "digits"]
    held_out = [n for n in names if n not in ordering]  # animals, textures
    assert mean_over(values, names, held_out) == pytest.approx((2.0 + 6.0) / 2)  # 4
    assert mean_over(values, names, ordering) == pytest.approx((-4.0 - 10.0) / 2)  # -7
    assert mean_over(values, names, names) == pytest.approx(-6.0 / 4)  # -1.5
    # Names in `keep` that are not in `names` are ignored; none at all -> NaN.
    assert mean_over(values, names, ["textures", "not_a_dataset"]) == pytest.approx(6.0)
    assert math.isnan(mean_over(values, names, []))
    assert math.isnan(mean_over(values, names, ["not_a_dataset"]))


def test_mean_ci95_three_values():
    # mean 2; sample std (ddof=1) = 1; half-width = t_{0.975, 2} * 1 / sqrt(3)
    #   = 4.302653 * 0.577350 = 2.484138
    m, h = mean_ci95([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0)
    assert h == pytest.approx(2.4841, abs=1e-4)


def test_mean_ci95_single_value_and_empty():
    m, h = mean_ci95([0.7])
    assert m == pytest.approx(0.7)
    assert math.isnan(h)
    m, h = mean_ci95([])
    assert math.isnan(m) and math.isnan(h)
