"""Kept weights and scoring again: train with `save_weights`, add a dataset to the
suite, `--rescore`, and compare with runs that scored the larger suite from the start."""
from __future__ import annotations

import json

import pytest
import torch

from experiment import cli as run_benchmark

# one xdist worker runs the whole file (`make test`: --dist loadgroup): its module fixture (runs trained
# with their weights kept) is made once
pytestmark = pytest.mark.xdist_group("test_rescore")

# conftest.SMALL's training (ldifs only), so that the larger suite's run scored from the start is
# small_experiment's ldifs run, trained once per session
PLAN = ["--strategies", "ldifs", "--jobs", "1", "--seeds", "0", "--orderings", "textures,digits", "--set",
        "data.max_train=60", "--set", "data.max_test=40", "--epochs", "1", "--set", "train.batch_size=20"]
SUITE = ["--suite", "textures", "digits"]
LARGER = ["--suite", "textures", "digits", "mnist"]  # SMALL's suite


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """The two runs trained on the small suite with their weights kept."""
    out = tmp_path_factory.mktemp("kept")
    assert run_benchmark.main([*PLAN, *SUITE, "--out", str(out), "--set", "save_weights=true", "-q", "--no-plots"]) == 0
    return out


def test_weights_are_kept_after_each_task_and_stay_out_of_the_run_id(kept):
    from experiment.arguments import build_parser, resolve_config
    from experiment.config import plan

    runs = sorted((kept / "micro" / "runs").iterdir())
    assert len(runs) == 1
    for run in runs:
        assert sorted(p.name for p in (run / "weights").iterdir()) == ["step1.pt", "step2.pt"]
        saved = torch.load(run / "weights" / "step2.pt", weights_only=True)
        assert saved["run_id"] == run.name and saved["after"] == "digits" and sorted(saved["heads"]) == [0, 1]
        assert "save_weights" not in json.loads((run / "config.json").read_text())
    # the same plan without keeping weights: the same run id (the folder a run is trained into is its planned id)
    assert {p.name for p in runs} == {r["run_id"] for r in plan(resolve_config(build_parser().parse_args([*PLAN, *SUITE])))}


def test_rescoring_a_larger_suite_equals_scoring_it_from_the_start(kept, small_experiment):
    before = _files(kept / "micro" / "runs")
    args = [*PLAN, *LARGER, "--out", str(kept), "--experiment", "larger", "-q", "--no-plots"]
    assert run_benchmark.main([*args, "--rescore", "micro"]) == 0
    assert _files(kept / "micro" / "runs") == before  # the originals untouched
    # small_experiment (conftest.py) scored the larger suite from the start with this plan's training: its ldifs run
    rescored = sorted((kept / "larger" / "runs").iterdir())
    trained = [p for p in sorted((small_experiment / "runs").iterdir())
               if json.loads((p / "records.json").read_text())["config"]["strategy"]["name"] == "ldifs"]
    assert [p.name for p in rescored] == [p.name for p in trained] and len(trained) == 1
    for a, b in zip(rescored, trained):
        ra, rb = (json.loads((p / "records.json").read_text()) for p in (a, b))
        assert ra["suite"] == ["textures", "digits", "mnist"]
        for key in ("config", "R", "LP", "ZS", "drift"):
            assert ra[key] == rb[key], key  # bit for bit: training never depends on the suite
        assert ra["rescored"]["from"] in {p.name for p in (kept / "micro" / "runs").iterdir()}
        assert "rescored" not in rb
    board = (kept / "larger" / "leaderboard.csv").read_text().splitlines()
    assert "rescored_from" in board[0] and len(board) == 2  # the collector reads them like any other run
    assert "Rescored: 1 run(s)" in (kept / "larger" / "report.md").read_text()
    # done runs are not scored twice
    assert run_benchmark.main([*args, "--rescore", "micro"]) == 0


def test_rescoring_runs_that_kept_no_weights_is_one_line_and_exit_2(tiny_experiment, capsys):
    out = tiny_experiment.parent
    code = run_benchmark.main([*PLAN, *LARGER, "--out", str(out), "--experiment", "x", "--rescore", "micro"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: --rescore: 1 of the 1 runs")
    assert "save_weights=true" in err[0] and not (out / "x" / "runs").exists()
    code = run_benchmark.main([*PLAN, *LARGER, "--out", str(out), "--rescore", "nowhere"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no experiment folder" in err[0]


def test_dry_run_says_the_size_of_the_kept_weights(capsys):
    assert run_benchmark.main([*PLAN, *SUITE, "--dry-run", "--set", "save_weights=true"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if "kept weights" in s]
    # the micro image tower: 3.9M float32 parameters and buffers, 1 run x 2 tasks
    assert len(line) == 1 and "16 MB per task" in line[0] and "2 tasks" in line[0]


def test_prompt_tuning_weights_load_into_a_rebuilt_model(tiny_vit, tmp_path):
    """prompt_tuning adds modules to the encoder while it trains; rebuild() adds them to a fresh model."""
    import copy

    import strategies
    from benchmark.models import TaskModel
    from benchmark.models.saved import load_step, save_step, weights_path

    strategy = strategies.from_config({"name": "prompt_tuning", "n_prompts": 3})
    trained = TaskModel(copy.deepcopy(tiny_vit.visual), tiny_vit.embed_dim)
    strategy.rebuild(trained)
    with torch.no_grad():
        trained.encoder.ln_pre.prompts.normal_()
        trained.head(0).weight.normal_()
    save_step(tmp_path, "r", 1, "a", trained, n_heads=1)
    fresh = TaskModel(copy.deepcopy(tiny_vit.visual), tiny_vit.embed_dim)
    strategy.rebuild(fresh)
    load_step(weights_path(tmp_path, 1), fresh)
    x = torch.randn(2, 3, 32, 32)
    trained.eval(), fresh.eval()
    assert torch.equal(trained(x, torch.zeros(2, dtype=torch.long)), fresh(x, torch.zeros(2, dtype=torch.long)))
    assert not torch.equal(fresh.embed(x), TaskModel(copy.deepcopy(tiny_vit.visual), tiny_vit.embed_dim).embed(x))


def test_save_weights_on_ray_is_refused_in_one_line():
    from experiment import config as C

    cfg = C.load_preset("micro")
    cfg.update(save_weights=True, executor={"kind": "ray"})
    with pytest.raises(C.ConfigError, match="^save_weights: the Ray executor returns a run's records, not its weights"):
        C.validate(cfg)
    cfg["executor"] = {"kind": "local"}
    assert C.validate(cfg)["save_weights"] is True
