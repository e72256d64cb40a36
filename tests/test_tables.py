"""Paper tables on the committed sample records: values by hand, best entry bold, LaTeX booktabs."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from evaluation.leaderboard import load_runs
from evaluation.tables import Table, first_step, main, render, to_latex, to_markdown

SAMPLE = Path(__file__).resolve().parent / "data" / "sample_experiment"


@pytest.fixture(scope="module")
def runs():
    return load_runs(SAMPLE)


def test_first_step_counts_each_seed_once(runs):
    df = first_step(runs).set_index(["ft", "label", "seed"])
    # ft on a: the a>b runs of seeds 0 and 1 (R[1, a] = .9, .8); ldifs on b: the b>a run
    assert df.loc[("a", "ft", 0), "acc"] == pytest.approx(0.9) and df.loc[("a", "ft", 1), "acc"] == pytest.approx(0.8)
    assert df.loc[("b", "ldifs", 0), "acc"] == pytest.approx(0.9)
    # ft on c (single task): LP [[.6,.5,.8],[.5,.6,.9]] -> dLP on a, b = -.1, +.1
    assert df.loc[("c", "ft", 0), "dLP|a"] == pytest.approx(-0.1) and df.loc[("c", "ft", 0), "dLP|b"] == pytest.approx(0.1)
    assert len(df) == 5 + 3  # ft: seeds 0, 1 on a and on b, seed 0 on c; ldifs: seed 0 on a, b, c


def test_markdown_tables_by_hand(runs):
    md, _ = render(runs)
    # single task, fine-tuned on a: ft acc (.9 + .8) / 2 = 85, CI 12.706 * .0707 / 1.414 = 63.5;
    # ldifs 90 (one seed) is best, in bold
    assert "| a | 85.0 ± 63.5 | **+0.0 ± 63.5** | -2.5 ± 31.8 | **90.0** | **+0.0** | **+0.0** |" in md
    # after fine-tuning on c: ft dLP on a = -10, ldifs 0 -> ldifs bold; on b ft +10 bold
    c_text = md.split("after fine-tuning on c")[1]
    assert "| a | -10.0 | -10.0 | **+0.0** | **+0.0** |" in c_text
    assert "| b | **+10.0** | **+0.0** | +0.0 | **+0.0** |" in c_text
    # continual table on a>b: ldifs ACC 82.5 bold, ft 75.0 ± 0.0 not
    assert "| ldifs | **82.5** | **-5.0** | +10.0 |" in md
    assert "| ft | 75.0 ± 0.0 | -20.0 ± 0.0 | **+15.0 ± 63.5** |" in md


def test_latex_is_booktabs_with_escaped_names():
    t = Table("Forgetting after fashion_mnist & more", "evaluated on",
              [("ldifs lam=1", ["dLP", "dZS"]), ("ft", ["dLP", "dZS"])],
              [("fashion_mnist", [(0.01, math.nan), (-0.02, 0.01), (0.03, math.nan), (math.nan, math.nan)])],
              best="row")
    tex = to_latex(t)
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-3}", r"\cmidrule(lr){4-5}",
                  r"\multicolumn{2}{c}{ldifs lam=1}", r"fashion\_mnist", r"fashion\_mnist \& more",
                  r"\begin{tabular}{l cc cc}"):
        assert token in tex, token
    # best dLP in the row: +3.0 (ft) over +1.0; dZS has one value only -> nothing to compare, no bold
    assert r"\textbf{+3.0}" in tex and r"-2.0 $\pm$ 1.0" in tex and r"\textbf{-2.0" not in tex
    md = to_markdown(t)
    assert "| fashion_mnist | +1.0 | -2.0 ± 1.0 | **+3.0** |  |" in md


def test_tables_cli_writes_markdown_and_latex(tmp_path, capsys):
    exp = tmp_path / "exp"
    shutil.copytree(SAMPLE, exp)
    assert main([str(exp)]) == 0
    assert (exp / "tables.md").read_text().startswith("### Single-task fine-tuning")
    assert r"\begin{table}" in (exp / "tables.tex").read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert "no runs/ folder" in capsys.readouterr().err
