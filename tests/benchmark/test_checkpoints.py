"""`train.checkpoint`: score one of the reference's 100 checkpoints of each task instead of its end."""
from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest
import torch

from experiment import cli
from experiment import config as C
from benchmark.checkpoints import CheckpointPlugin, checkpoint_step


def test_checkpoint_steps_follow_the_reference_interval():
    # S = 1,000 steps: one checkpoint every floor(1000 / 100) = 10 steps, saved after the optimiser step of
    # steps 0, 10, 20, ...: checkpoint K has seen 10 K + 1 steps.
    assert [checkpoint_step(k, 1000) for k in (0, 1, 50, 99)] == [1, 11, 501, 991]
    # S = 1,234: interval 12; checkpoint 99 is 99 * 12 + 1 = 1,189 steps in, 45 before the end.
    assert checkpoint_step(99, 1234) == 1189
    # Fewer than 100 steps: the reference's interval would be 0; here every step is a checkpoint.
    assert [checkpoint_step(k, 40) for k in (0, 5, 99)] == [1, 6, 40]


def test_checkpoint_100_is_the_last_and_at_most_the_end():
    # DTD under the paper presets: 76 epochs x ceil(1692 / 128) = 1,064 steps, interval 10: checkpoint 100
    # has seen 100 * 10 + 1 = 1,001 steps, 63 before the end; SVHN's 5,160 steps: 100 * 51 + 1 = 5,101.
    assert checkpoint_step(100, 1064) == 1001 and checkpoint_step(100, 5160) == 5101
    # S = 1,000, a multiple of 100: the reference has no checkpoint 100 (its last is step 990 + 1); here it
    # is the end of the task, not a step beyond it.
    assert checkpoint_step(100, 1000) == 1000 and checkpoint_step(99, 1000) == 991
    cfg = C.load_preset("paper-single")
    cfg["train"]["checkpoint"] = 100
    assert C.validate(cfg)["train"]["checkpoint"] == 100


def test_the_plugin_scores_the_snapshot_and_restores_the_end():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = SimpleNamespace(model=model, train_epochs=2, dataloader=range(5))  # 10 steps: interval 1
    plugin = CheckpointPlugin(3)  # after 4 steps
    plugin.before_training_exp(strategy)
    seen = []
    for _ in range(10):
        opt.zero_grad()
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        seen.append(copy.deepcopy(model.state_dict()))
        plugin.after_training_iteration(strategy)
    with plugin.scored(model):
        assert torch.equal(model.weight, seen[3]["weight"]) and torch.equal(model.bias, seen[3]["bias"])
    assert torch.equal(model.weight, seen[9]["weight"])  # the next task starts from the end
    assert model.weight is not None and opt.param_groups[0]["params"][0] is model.weight  # same tensors


@pytest.mark.parametrize("value", ["last", 101, -1, 1.5, True])
def test_bad_checkpoints_are_refused(value):
    cfg = C.load_preset("micro")
    cfg["train"]["checkpoint"] = value
    with pytest.raises(C.ConfigError, match="train.checkpoint: input should be 'end', or the index 0..100"):
        C.validate(cfg)


def test_end_is_the_default_and_leaves_run_ids_alone():
    cfg = C.load_preset("micro")
    ids = [r["run_id"] for r in C.plan(C.validate(copy.deepcopy(cfg)))]
    cfg["train"]["checkpoint"] = "end"
    assert [r["run_id"] for r in C.plan(C.validate(copy.deepcopy(cfg)))] == ids
    cfg["train"]["checkpoint"] = 50
    assert not set(ids) & {r["run_id"] for r in C.plan(C.validate(cfg))}


def test_a_run_scores_its_checkpoint(tmp_path, tiny_experiment):
    # Two tiny tasks of 2 steps each (40 images, batch 20, one epoch): checkpoint 0 is after one step.
    # The run scored at the end is tiny_experiment's ft run (conftest.py: the same plan, trained once per
    # session); only the checkpoint-0 run is trained here.
    argv = ["--jobs", "1", "--orderings", "textures,digits", "--suite", "textures", "digits", "--strategies", "ft",
            "--set", "data.max_train=40", "--set", "data.max_test=20", "--epochs", "1", "--set",
            "train.batch_size=20", "--set", "threads=1", "-q", "--no-plots"]
    assert cli.main([*argv, "--out", str(tmp_path / "k0"), "--set", "train.checkpoint=0"]) == 0
    ends = [json.loads(p.read_text()) for p in sorted((tiny_experiment / "runs").glob("*/records.json"))]
    end, = [r for r in ends if r["config"]["strategy"]["name"] == "ft"]
    k0, = (tmp_path / "k0").glob("*/runs/*/records.json")
    k0 = json.loads(k0.read_text())
    assert k0["complete"] and k0["config"]["train"]["checkpoint"] == 0
    # the end run is this plan without the checkpoint: every other key of the config the same
    same = copy.deepcopy(k0["config"])
    del same["train"]["checkpoint"], same["run_id"]
    assert same == {k: v for k, v in end["config"].items() if k != "run_id"} and "checkpoint" not in end["config"]["train"]
    assert end["LP"][0] == k0["LP"][0] and end["R"][0] == k0["R"][0]  # step 0: nothing trained yet
    assert end["LP"][1:] != k0["LP"][1:] or end["R"][1:] != k0["R"][1:]  # one step in is not the end
