"""Paper tables on the committed sample records: values by hand, best entry bold, LaTeX booktabs."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from evaluation.reporting.leaderboard import load_runs
from evaluation.reporting.tables import Table, first_step, main, render, to_latex, to_markdown

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_experiment"


@pytest.fixture(scope="module")
def runs():
    return load_runs(SAMPLE)


def test_first_step_counts_each_seed_once(runs):
    df = first_step(runs).set_index(["ft", "label", "seed"])
    # ft (LP-init-CE) on a: the a>b runs of seeds 0 and 1 (R[1, a] = .9, .8); ldifs on b: the b>a run
    assert df.loc[("a", "LP-init-CE", 0), "acc"] == pytest.approx(0.9)
    assert df.loc[("a", "LP-init-CE", 1), "acc"] == pytest.approx(0.8)
    assert df.loc[("b", "LP-init-LDIFS", 0), "acc"] == pytest.approx(0.9)
    # the reference's accuracy of an LP-init run: the probe refitted after step 1, LP[1, a] = .7
    assert df.loc[("a", "LP-init-CE", 0), "acc_ref"] == pytest.approx(0.7)
    assert set(df["ref"]) == {"LP"}
    # ft on c (single task): LP [[.6,.5,.8],[.5,.6,.9]] -> dLP on a, b = -.1, +.1
    assert df.loc[("c", "LP-init-CE", 0), "dLP|a"] == pytest.approx(-0.1)
    assert df.loc[("c", "LP-init-CE", 0), "dLP|b"] == pytest.approx(0.1)
    assert len(df) == 5 + 3  # ft: seeds 0, 1 on a and on b, seed 0 on c; ldifs: seed 0 on a, b, c


def test_markdown_tables_by_hand(runs):
    md, _ = render(runs)
    # fine-tuned on a, LP-init-CE: the reference's accuracy LP[1, a] = .7, .7 -> 70.0 ± 0.0; the head's
    # (.9 + .8) / 2 = 85, CI 12.706 * .0707 / 1.414 = 63.5, an interval clipped to [0, 100]: [21.5, 100.0];
    # LP-init-LDIFS has one seed: "(n=1)", no interval and no bold
    a_text = md.split("**Fine-tuned on a:")[1].split("**Fine-tuned on b:")[0]
    assert "| LP-init-CE | 70.0 ± 0.0 | 85.0 [21.5, 100.0] | +0.0 ± 63.5 | -2.5 ± 31.8 |" in a_text
    assert "| LP-init-LDIFS | 70.0 (n=1) | 90.0 (n=1) | +0.0 (n=1) | +0.0 (n=1) |" in a_text
    assert "| method | Acc (ref) | Acc (head) | dLP others | dZS others |" in a_text
    # after fine-tuning on c: one seed each -> nothing bold, however far apart (-10 against 0)
    c_text = md.split("after fine-tuning on c")[1]
    assert "| a | -10.0 (n=1) | -10.0 (n=1) | +0.0 (n=1) | +0.0 (n=1) |" in c_text
    # continual table on a>b: ACC (ref) = mean of LP[2, a], LP[2, b]: seed 0 (.6 + .9) / 2 = .75, seed 1
    # (.5 + .9) / 2 = .70 -> 72.5, CI 12.706 * .0354 / 1.414 = 31.8 -> clipped [40.7, 100.0]; the heads' ACC
    # beside it; LP-init-LDIFS 82.5 (one seed) is not bold against 75.0 ± 0.0
    assert "| LP-init-LDIFS | 77.5 (n=1) | 82.5 (n=1) | -5.0 (n=1) | +10.0 (n=1) |" in md
    assert "| LP-init-CE | 72.5 [40.7, 100.0] | 75.0 ± 0.0 | -20.0 ± 0.0 | +15.0 ± 63.5 |" in md
    assert not any("**" in line for line in md.splitlines() if line.startswith("| "))  # no interval separates
    assert md.startswith("### Single-task fine-tuning (step 1 of the runs)")
    assert "linear probe refitted on the fine-tuned features (its lp_acc) for LP-init-CE, LP-init-LDIFS" in md
    assert "(0 such); 4 comparison(s) tied" in a_text


def test_bold_only_where_the_interval_clears_the_runner_up():
    def table(*cells):
        return Table("t", "s", [("", ["ACC"])], [(f"r{k}", [c]) for k, c in enumerate(cells)])

    # .80 ± .01 against .70 ± .02: .79 > .72, clear -> bold
    assert table((0.8, 0.01), (0.7, 0.02), (0.1, 0.01)).bold()[:, 0].tolist() == [True, False, False]
    # .80 ± .05 against .77 ± .02: .75 < .79, tied -> nothing bold, and the note says so
    t = table((0.8, 0.05), (0.77, 0.02))
    assert not t.bold().any() and "(0 such); 1 comparison(s) tied" in t.note()
    # one seed of .90 against .50 ± .01: n < 2, undecided -> nothing bold, "(n=1)" shown
    t = table((0.9, math.nan), (0.5, 0.01))
    assert not t.bold().any() and "| r0 | 90.0 (n=1) |" in to_markdown(t)
    # the runner-up with one seed: no interval to clear either
    assert not table((0.9, 0.01), (0.5, math.nan)).bold().any()
    # an accuracy's interval is clipped to [0, 100]; a difference's is not
    assert "| r0 | 95.0 [85.0, 100.0] |" in to_markdown(table((0.95, 0.1)))
    d = Table("t", "s", [("", ["BWT"])], [("r0", [(-0.95, 0.1)])])
    assert "| r0 | -95.0 ± 10.0 |" in to_markdown(d)


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
    # dLP in the row: +3.0 (ft) over +1.0, both one seed -> no bold; dZS has one value only
    assert r"+3.0 (n=1)" in tex and r"-2.0 $\pm$ 1.0" in tex and r"\textbf" not in tex
    assert r"\footnotesize Bold: the best entry" in tex
    md = to_markdown(t)
    assert "| fashion_mnist | +1.0 (n=1) | -2.0 ± 1.0 | +3.0 (n=1) |  |" in md


def test_tables_cli_writes_markdown_and_latex(tmp_path, capsys):
    exp = tmp_path / "exp"
    shutil.copytree(SAMPLE, exp)
    assert main([str(exp)]) == 0
    assert (exp / "tables.md").read_text().startswith("### Single-task fine-tuning (step 1 of the runs)")
    assert r"\begin{table}" in (exp / "tables.tex").read_text()
    assert main([str(tmp_path / "missing")]) == 2
    assert "no runs/ folder" in capsys.readouterr().err
