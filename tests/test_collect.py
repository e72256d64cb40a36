"""The collector pinned on committed sample records (tests/data/sample_experiment), worked by hand."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from evaluation.collect import collect

SAMPLE = Path(__file__).resolve().parent / "data" / "sample_experiment"


@pytest.fixture()
def exp(tmp_path):
    dst = tmp_path / "sample"
    shutil.copytree(SAMPLE, dst)
    return dst


def test_leaderboard_values_by_hand(exp):
    df = collect(exp, plots=False).set_index("run_id")
    assert list(df.index) == ["aaaaaaaaaaa0", "aaaaaaaaaaa1", "bbbbbbbbbbb0"]  # the unfinished run is ignored
    ft0 = df.loc["aaaaaaaaaaa0"]
    # R = [[.5,.4],[.9,.5],[.7,.8]]: ACC (.7+.8)/2; BWT .7-.9; FWT .5-.4; Transfer A[1,2]=.5;
    # Avg (.9+.5+.7+.8)/4; LP final - LP0 = [0, .4, -.2] over a, b, c; c is held out
    expected = {"ACC": 0.75, "BWT": -0.2, "FWT": 0.1, "Transfer": 0.5, "Avg": 0.725, "Last": 0.75,
                "dLP_heldout": -0.2, "dLP_all": 0.2 / 3, "dZS_heldout": -0.2, "dZS_all": (-0.2 + 0.1 - 0.2) / 3,
                "dLP_a": 0.0, "dLP_b": 0.4, "dLP_c": -0.2, "LP0_c": 0.8}
    for col, want in expected.items():
        assert ft0[col] == pytest.approx(want, abs=1e-4), col
    assert df.loc["bbbbbbbbbbb0", "params"] == '{"lam": 10.0}' and ft0["params"] == ""
    assert df.loc["bbbbbbbbbbb0", "BWT"] == pytest.approx(-0.05)


def test_summary_over_seeds_and_markdown(exp):
    collect(exp, plots=False)
    s = pd.read_csv(exp / "summary.csv").set_index("strategy")
    # ft over seeds 0 and 1: ACC .75 and .75; BWT -.2 and -.2; FWT .1 and .2 -> mean .15,
    # CI half-width t(.975, 1) * sd / sqrt(2) = 12.7062 * 0.0707107 / 1.41421 = 0.63531
    assert s.loc["ft", "seeds"] == 2 and s.loc["ft", "ACC"] == pytest.approx(0.75)
    assert s.loc["ft", "FWT"] == pytest.approx(0.15) and s.loc["ft", "FWT_ci95"] == pytest.approx(0.6353, abs=1e-3)
    assert pd.isna(s.loc["ldifs", "ACC_ci95"])  # one seed: no interval
    md = (exp / "summary.md").read_text()
    assert "| ft |  | a>b | 2 | 75.0 ± 0.0 | -20.0 ± 0.0 | 15.0 ± 63.5 |" in md
    assert '| ldifs | `{"lam": 10.0}` | a>b | 1 | 82.5 | -5.0 |' in md


def test_unreadable_records_are_skipped_with_a_warning(exp, capsys):
    (exp / "runs" / "aaaaaaaaaaa1" / "records.json").write_text("{not json")
    df = collect(exp, plots=False)
    assert sorted(df["run_id"]) == ["aaaaaaaaaaa0", "bbbbbbbbbbb0"]
    assert "skipping" in capsys.readouterr().err


def test_plots_are_written(exp):
    collect(exp, plots=True)
    names = sorted(p.name for p in (exp / "plots").glob("*.png"))
    assert names == ["accuracy_matrix_ft_aaaaaaaaaaa0.png", "accuracy_matrix_ft_aaaaaaaaaaa1.png",
                     "accuracy_matrix_ldifs_bbbbbbbbbbb0.png", "dLP_per_dataset.png", "dZS_per_dataset.png"]
