"""Grids of hyperparameters, and a strategy added from outside to an existing experiment."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import pandas as pd
import pytest

from experiment import cli
import strategies
from evaluation.storage.identity import run_id


def test_a_list_on_a_scalar_hyperparameter_is_a_grid_of_runs():
    got = strategies.expand("ldifs:lam=[1,10,100]")
    assert [c["lam"] for c in got] == [1.0, 10.0, 100.0]
    assert all(c["anchor"] == "previous" and c["layers"] == "reference" for c in got)
    ids = {run_id({"strategy": c, "seed": 0}) for c in got}
    assert len(ids) == 3  # one run id each
    # the same from YAML (a mapping) and the same ids
    assert strategies.expand({"name": "ldifs", "lam": [1, 10, 100]}) == got
    # combinations, in the order written; fixed values apply to each
    ewc = strategies.expand("ewc:lam=[100,1000],mode=online")
    assert [(c["lam"], c["mode"]) for c in ewc] == [(100.0, "online"), (1000.0, "online")]
    both = strategies.expand("ewc:lam=[100,1000],mode=[separate,online]")
    assert [(c["lam"], c["mode"]) for c in both] == [(100.0, "separate"), (100.0, "online"),
                                                     (1000.0, "separate"), (1000.0, "online")]
    assert strategies.expand("ldifs:lam=[1,1.0]") == strategies.expand("ldifs:lam=1")  # one run, not two
    assert strategies.expand("ft") == [{"name": "ft"}]


def test_a_list_on_a_list_valued_hyperparameter_is_one_value_unless_it_holds_lists():
    (one,) = strategies.expand("ldifs:layers=[0,4,7]")
    assert one["layers"] == [0, 4, 7]
    three = strategies.expand("ldifs:layers=[[0,4,7],[11],last]")
    assert [c["layers"] for c in three] == [[0, 4, 7], [11], "last"]
    grid = strategies.expand({"name": "ldifs", "layers": [[1], [2]], "lam": [1, 2]})
    assert [(c["layers"], c["lam"]) for c in grid] == [([1], 1.0), ([1], 2.0), ([2], 1.0), ([2], 2.0)]


@pytest.mark.parametrize("spec, message", [
    ("ldifs:gamma=[1,2]", "strategy 'ldifs' has no hyperparameter gamma; allowed: lam, anchor, layers, norm_axis"),
    ("ldifs:lam=[]", "strategy 'ldifs': lam=[] is an empty grid; give at least one value"),
    ({"name": "ewc", "lam": []}, "strategy 'ewc': lam=[] is an empty grid"),
    ("ldifs:lam=[1,-1]", "strategy 'ldifs': lam must be >= 0, got -1.0"),
    ("ldifs:layers=[last,all]", "got ['last', 'all']; to sweep choices give a list of lists"),
    ("ldifs:layers=[]", "a non-empty list of tap indices, got []"),
    ("nope:lam=[1]", "unknown strategy 'nope'"),
])
def test_bad_grids_are_one_line(spec, message):
    with pytest.raises(strategies.SpecError) as e:
        strategies.expand(spec)
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("spec, message", [
    ("ldifs:gamma=[1,2]", "no hyperparameter gamma"), ("ldifs:lam=[]", "empty grid")])
def test_bad_grids_on_the_command_line_exit_2(spec, message, tmp_path, capsys):
    assert cli.main(["--strategies", spec, "--out", str(tmp_path), "--dry-run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_a_grid_on_the_command_line_plans_one_run_per_value(tmp_path, capsys):
    argv = ["--strategies", "ft", "ldifs:lam=[1,10,100]", "--orderings", "digits", "--suite", "digits",
            "--out", str(tmp_path), "--dry-run"]
    assert cli.main(argv) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "todo" in line]
    assert len(rows) == 4 and len({r[0] for r in rows}) == 4  # four distinct run ids
    assert sum("'lam':" in " ".join(r) for r in rows) == 3


SMALL = ["--orderings", "textures,digits", "--suite", "textures", "digits", "--set", "data.max_train=40",
         "--set", "data.max_test=20", "--epochs", "1", "--set", "train.batch_size=20", "--set", "threads=1"]

OUTSIDE = '''
"""A strategy written outside the project: fine-tuning with a smaller step on the encoder."""
from dataclasses import dataclass

from avalanche.core import SupervisedPlugin

from . import Strategy, check_range, register


class ShrinkGrad(SupervisedPlugin):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def after_backward(self, strategy, **kwargs):
        for p in strategy.model.encoder.parameters():
            if p.grad is not None:
                p.grad.mul_(self.factor)


@register("{name}")
@dataclass
class Outside(Strategy):
    """Fine-tune with the encoder's gradients scaled down."""

    factor: float = 0.5  # scale of the encoder's gradients

    def validate(self):
        check_range("factor", self.factor, lo=0, hi=1)

    def plugins(self, model):
        return [ShrinkGrad(self.factor)]
'''


@pytest.mark.strategy_files
def test_a_strategy_file_added_from_outside_trains_only_its_runs(tmp_path, monkeypatch, tiny_experiment):
    from experiment import runner

    # an existing experiment with the finished ft run of this plan: the one tiny_experiment trained
    # (conftest.TINY is SMALL with --jobs 1, which no run id holds); were it another run, ft would be trained below
    shutil.copytree(tiny_experiment, tmp_path / "micro")
    for run in (tmp_path / "micro" / "runs").iterdir():
        if json.loads((run / "config.json").read_text())["strategy"]["name"] != "ft":
            shutil.rmtree(run)
    name = f"outside_{uuid.uuid4().hex[:8]}"  # never a name that a real file could hold
    folder = Path(strategies.__file__).parent
    path = folder / f"{name}.py"
    trained = []
    real = runner.execute_run

    def counting(run, *a, **k):
        trained.append(run["strategy"]["name"])
        return real(run, *a, **k)

    monkeypatch.setattr(runner, "execute_run", counting)
    try:
        path.write_text(textwrap.dedent(OUTSIDE).replace("{name}", name))
        importlib.invalidate_caches()
        strategies._loaded = False  # as a new process would, scan the folder again
        assert name in strategies.available()
        assert cli.main(["--strategies", "ft", name, "--out", str(tmp_path), *SMALL, "--no-plots"]) == 0
    finally:
        path.unlink(missing_ok=True)
        for pyc in (folder / "__pycache__").glob(f"{name}.*"):
            pyc.unlink()
        strategies._REGISTRY.pop(name, None)
        sys.modules.pop(f"strategies.{name}", None)
    assert trained == [name]  # the finished ft run was not trained again
    df = pd.read_csv(tmp_path / "micro" / "leaderboard.csv")
    assert sorted(df["strategy"]) == sorted(["ft", name])
    assert name not in strategies.available() and not path.exists()
