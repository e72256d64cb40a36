"""Metrics on small matrices whose expected values are worked out by hand (DESIGN.md conventions)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import acc, bwt, deltas, fwt, mean_ci95, mean_over, mtil

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
#   MTIL on A = rows 1..3:
#     Transfer = mean over j = 2, 3 of (mean over i < j of A[i, j])
#              = (A[1,2] + (A[1,3] + A[2,3]) / 2) / 2 = (40 + (25 + 45) / 2) / 2 = (40 + 35) / 2 = 37.5
#     Avg  = (80+40+25 + 74+90+45 + 60+85+95) / 9 = (145 + 209 + 240) / 9 = 594 / 9 = 66
#     Last = (60 + 85 + 95) / 3 = 80


def test_acc_bwt_fwt_by_hand():
    assert acc(R) == pytest.approx(80.0)
    assert bwt(R) == pytest.approx(-12.5)
    assert fwt(R) == pytest.approx(17.5)


def test_mtil_by_hand():
    m = mtil(R)
    assert set(m) == {"Transfer", "Avg", "Last"}
    assert m["Transfer"] == pytest.approx(37.5)
    assert m["Avg"] == pytest.approx(66.0)
    assert m["Last"] == pytest.approx(80.0)


def test_metrics_accept_nested_lists_and_return_floats():
    rows = R.tolist()
    for value in (acc(rows), bwt(rows), fwt(rows), *mtil(rows).values()):
        assert isinstance(value, float)
    assert bwt(rows) == pytest.approx(-12.5)


def test_two_task_matrix_by_hand():
    # T = 2: R = [[5, 15], [70, 30], [50, 80]]
    #   ACC = (50 + 80) / 2 = 65;  BWT = R[2,1] - R[1,1] = 50 - 70 = -20
    #   FWT = R[1,2] - R[0,2] = 30 - 15 = 15
    #   Transfer = A[1,2] = 30;  Avg = (70 + 30 + 50 + 80) / 4 = 57.5;  Last = 65
    R2 = [[5.0, 15.0], [70.0, 30.0], [50.0, 80.0]]
    assert acc(R2) == pytest.approx(65.0)
    assert bwt(R2) == pytest.approx(-20.0)
    assert fwt(R2) == pytest.approx(15.0)
    assert mtil(R2) == pytest.approx({"Transfer": 30.0, "Avg": 57.5, "Last": 65.0})


def test_single_task_gives_nan_for_bwt_fwt_transfer():
    R1 = np.array([[10.0], [70.0]])
    assert acc(R1) == pytest.approx(70.0)
    assert math.isnan(bwt(R1))
    assert math.isnan(fwt(R1))
    m = mtil(R1)
    assert math.isnan(m["Transfer"])
    assert m["Avg"] == pytest.approx(70.0)
    assert m["Last"] == pytest.approx(70.0)


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 3), (3,), (2, 2, 1)])
@pytest.mark.parametrize("fn", [acc, bwt, fwt, mtil])
def test_wrong_shape_raises(fn, shape):
    with pytest.raises(ValueError):
        fn(np.zeros(shape))


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
