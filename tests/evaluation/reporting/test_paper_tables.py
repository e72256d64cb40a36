"""The paper's tables and heat maps on real (tiny) runs: methods with their own head init, the reference's
accuracy beside the trained head's, and the forgetting matrices, each checked against the records."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from evaluation.storage.records import Records

from conftest import TINY


@pytest.fixture(scope="module")
def methods_experiment(tmp_path_factory):
    """LP-init-CE, ZS-init-CE and ZS-init-LDIFS on TINY (textures > digits), one seed, collected."""
    from experiment import cli

    out = tmp_path_factory.mktemp("methods")
    assert cli.main(["--strategies", "ft", "ft:head_init=zs", "ldifs:head_init=zs", "--out", str(out), *TINY,
                     "--set", "drift=0", "-q"]) == 0
    exp = out / "micro"
    runs = {}
    for p in (exp / "runs").glob("*/records.json"):
        rec = json.loads(p.read_text())
        runs[(rec["config"]["strategy"]["name"], rec["config"]["train"]["head_init"])] = rec
    return exp, runs


def test_a_zs_init_run_starts_from_the_zero_shot_head(methods_experiment):
    _, runs = methods_experiment
    assert set(runs) == {("ft", "lp"), ("ft", "zs"), ("ldifs", "zs")}
    zs, lp = runs[("ft", "zs")], runs[("ft", "lp")]
    # before training, a ZS-init task is scored with the zero-shot head: R[0] is the ZS row on the ordering
    assert zs["R"][0] == [zs["ZS"][0][zs["suite"].index(d)] for d in zs["ordering"]]
    assert zs["LP"][0] == lp["LP"][0]  # the same pre-trained encoder and probes
    assert zs["config"]["strategy"] == lp["config"]["strategy"] == {"name": "ft"}


def test_tables_show_the_references_accuracy_beside_the_heads(methods_experiment):
    exp, runs = methods_experiment
    md = (exp / "tables.md").read_text()
    ft = "textures"
    block = md.split(f"**Fine-tuned on {ft}:")[1].split("**")[1]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in block.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"LP-init-CE", "ZS-init-CE", "ZS-init-LDIFS"}
    for (name, init), rec in runs.items():
        label = {"ft": "CE", "ldifs": "LDIFS"}[name]
        j = rec["suite"].index(ft)
        ref = (rec["ZS"] if init == "zs" else rec["LP"])[1][j]  # zero-shot for ZS-init, the probe for LP-init
        others = [k for k, d in enumerate(rec["suite"]) if d != ft]
        dlp = sum(rec["LP"][1][k] - rec["LP"][0][k] for k in others) / len(others)
        want = f"| {init.upper()}-init-{label} | {ref * 100:.1f} (n=1) | {rec['R'][1][0] * 100:.1f} (n=1) | " \
               f"{round(dlp * 100, 1) + 0.0:+.1f} (n=1) |"
        assert rows[f"{init.upper()}-init-{label}"].startswith(want), (rows, want)
    assert "the zero-shot head on them (its zs_acc) for ZS-init-CE, ZS-init-LDIFS" in md
    # the continual table (textures > digits): ACC (ref) is the mean of the reference's accuracies after task 2
    rec = runs[("ft", "zs")]
    acc_ref = sum(rec["ZS"][2][rec["suite"].index(d)] for d in rec["ordering"]) / 2
    lb = pd.read_csv(exp / "leaderboard.csv")
    row = lb[(lb["method"] == "ZS-init-CE")].iloc[0]
    assert row["ACC_ref"] == pytest.approx(acc_ref, abs=1e-4)  # the CSV keeps four decimals
    assert f"| ZS-init-CE | {acc_ref * 100:.1f} (n=1) | {row['ACC'] * 100:.1f} (n=1) |" in md


def test_one_heat_map_per_method_and_its_cells_are_the_records(methods_experiment):
    exp, runs = methods_experiment
    for label in ("LP-init-CE", "ZS-init-CE", "ZS-init-LDIFS"):
        png = exp / "plots" / f"heatmap_{label}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", label
        assert f"](plots/heatmap_{label}.png)" in (exp / "report.md").read_text()
    m = pd.read_csv(exp / "forgetting_matrices.csv")
    rec = runs[("ldifs", "zs")]
    g = m[(m["method"] == "ZS-init-LDIFS") & (m["fine_tuned_on"] == "textures")]
    assert sorted(g["evaluated_on"].unique()) == sorted(rec["suite"]) and set(g["metric"]) == {"dLP", "dZS"}
    for r in g.itertuples():
        k = rec["suite"].index(r.evaluated_on)
        mat = rec["LP"] if r.metric == "dLP" else rec["ZS"]
        assert r.mean == pytest.approx(mat[1][k] - mat[0][k], abs=1e-4) and r.n == 1 and math.isnan(r.ci95)


def test_matrices_average_seeds_with_their_interval():
    from evaluation.reporting.heatmaps import colour_scale, grid, matrices

    def rec(seed, lp1):
        return Records.model_construct(config={"strategy": {"name": "ft"}, "train": {"head_init": "zs"}, "seed": seed},
                                       ordering=["a"], suite=["a", "b"], R=[[0.5], [0.9]],
                                       LP=[[0.5, 0.6], lp1], ZS=[[0.4, 0.4], [0.6, 0.2]])

    m = matrices([("r0", rec(0, [0.9, 0.5])), ("r1", rec(1, [0.7, 0.3]))])
    rows, cols, a = grid(m, "ZS-init-CE", "dLP")
    # dLP on b: .5 - .6 = -.1 and .3 - .6 = -.3 -> mean -.2, CI 12.706 * sd(.1414) / sqrt(2) = 1.2706
    assert rows == ["a"] and cols == ["a", "b"] and a[0].tolist() == pytest.approx([0.3, -0.2])
    b = m[(m["evaluated_on"] == "b") & (m["metric"] == "dLP")].iloc[0]
    assert b["ci95"] == pytest.approx(1.2706, abs=1e-4) and b["n"] == 2
    # the colour scale is set off the diagonal (|-.2| for dLP; dZS on b: -.2), not by the gain on a (+.3)
    assert colour_scale(m, "dLP") == pytest.approx(0.2) and colour_scale(m, "dZS") == pytest.approx(0.2)


def test_drift_plots_keep_the_two_head_inits_of_a_strategy_apart():
    from evaluation.reporting.plots_drift import strategy_label, with_drift

    def rec(init):
        return Records.model_construct(config={"strategy": {"name": "ft"}, "train": {"head_init": init}},
                                       drift={"ldifs": [[[0.0]]]})

    both = with_drift([("r0", rec("lp")), ("r1", rec("zs"))])
    assert [strategy_label(r) for _, r in both] == ["ft (LP-init)", "ft (ZS-init)"]
    assert [strategy_label(r) for _, r in with_drift([("r0", rec("zs"))])] == ["ft"]  # one init: the plain name


def test_matrix_rows_follow_the_suite_so_the_diagonal_is_one():
    from evaluation.reporting.heatmaps import grid, matrices

    def rec(first):  # suite [b, a], not alphabetical: rows and columns keep its order
        return Records.model_construct(config={"strategy": {"name": "ft"}, "train": {"head_init": "lp"}, "seed": 0},
                                       ordering=[first], suite=["b", "a"], R=[[0.5], [0.9]],
                                       LP=[[0.5, 0.5], [0.6, 0.4] if first == "b" else [0.3, 0.7]])

    rows, cols, a = grid(matrices([("r0", rec("a")), ("r1", rec("b"))]), "LP-init-CE", "dLP")
    assert rows == cols == ["b", "a"] and a.ravel().tolist() == pytest.approx([0.1, -0.1, -0.2, 0.2])
