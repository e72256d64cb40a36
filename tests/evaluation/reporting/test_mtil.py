"""MTIL: the presets hold ZSCL's orders and protocol, the table's formulas by hand, and a micro MTIL run
with ft, ldifs and zscl that produces the table, the zero-shot matrix and zscl's terms."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evaluation.reporting.mtil_table import per_dataset

ORDER_1 = ["Aircraft", "Caltech101", "CIFAR100", "DTD", "EuroSAT", "Flowers", "Food", "MNIST", "OxfordPet", "Cars",
           "SUN397"]
# ZSCL's results.ipynb: Order II is Order I's datasets taken in the order [9, 6, 7, 8, 5, 10, 0, 1, 3, 4, 2]
ORDER_2 = [ORDER_1[i] for i in [9, 6, 7, 8, 5, 10, 0, 1, 3, 4, 2]]


def test_per_dataset_mtil_values_by_hand():
    # A[i, j]: zero-shot accuracy on dataset j after task i (three tasks).
    A = [[0.9, 0.2, 0.4],
         [0.7, 0.8, 0.6],
         [0.5, 0.6, 0.9]]
    v = per_dataset(A)
    # Transfer: dataset 2 before its task = A[0,1] = 0.2; dataset 3 = mean(0.4, 0.6) = 0.5; mean 0.35
    assert math.isnan(v["Transfer"][0])
    assert v["Transfer"][1:] == pytest.approx([0.2, 0.5, 0.35])
    # Avg: column means 0.7, 0.5333, 0.6333, and their mean (= the mean of A) 0.6222
    assert v["Avg"] == pytest.approx([0.7, 1.6 / 3, 1.9 / 3, 5.6 / 9])
    # Last: the last row and its mean
    assert v["Last"] == pytest.approx([0.5, 0.6, 0.9, 2.0 / 3])


@pytest.mark.parametrize("preset, order", [("mtil-order1", ORDER_1), ("mtil-order2", ORDER_2)])
def test_mtil_presets_hold_zscls_order_and_protocol(preset, order):
    from experiment.config import load_preset, plan, validate
    from experiment.dryrun import describe

    cfg = validate(load_preset(preset))
    assert cfg["orderings"] == [order] and sorted(cfg["suite"]) == sorted(ORDER_1)
    assert (cfg["model"]["name"], cfg["model"]["pretrained"]) == ("ViT-B-16", "openai")
    t = cfg["train"]
    assert (t["iterations"], t["batch_size"], t["weight_decay"], t["warmup_steps"], t["grad_clip"]) == (1000, 64, 0, 100, 0)
    assert t["label_smoothing"] == 0.2 and t["precision"] == "fp32" and t["head_init"] == "zs"
    assert {d: lr for d, lr in t["lr"].items() if lr != 1e-5} == {"Aircraft": 5e-5, "MNIST": 5e-5}
    assert set(t["lr"]) == set(ORDER_1)
    zscl = [s for s in cfg["strategies"] if s["name"] == "zscl"][0]
    assert (zscl["ref_images"], zscl["we_freq"], zscl["l2"], zscl["T"]) == ("folder:ImageNet/train", 100, 1.0, 2.0)
    text = describe(cfg, plan(cfg))
    assert "1000 steps x 64 = 64,000 images" in text and "GPU-hours" in text and "disk: about" in text
    assert ("protocol: AdamW lr 5e-05 (Aircraft, MNIST); 1e-05 (Caltech101, CIFAR100, DTD, EuroSAT, Flowers, Food, "
            "OxfordPet, Cars, SUN397), weight decay 0, 100 warm-up steps then cosine (per task), clipping none, "
            "label smoothing 0.2, ZS-init heads") in text


def test_legacy_settings_stay_out_of_the_micro_runs_config():
    from experiment.config import load_preset, validate

    train = validate(load_preset("micro"))["train"]
    assert "iterations" not in train and "label_smoothing" not in train and train["lr"] == 1e-3


def test_a_per_dataset_rate_must_cover_every_task():
    from experiment.config import ConfigError, load_preset, validate

    cfg = load_preset("micro")
    cfg["train"]["lr"] = {"mnist": 1e-3}
    with pytest.raises(ConfigError, match="train.lr gives lr per dataset but none for fashion_mnist"):
        validate(cfg)


def test_micro_mtil_runs_ft_ldifs_zscl_and_writes_the_mtil_table(tmp_path):
    """The MTIL table, the zero-shot matrix and zscl's terms of a micro MTIL plan, shrunk to what they need:
    a few images (10 a task to train on, 5 to test), one template, batches of 5, two steps a task; no
    plots (nothing here is about them; the MTIL rehearsal's collection draws them)."""
    from experiment.cli import main

    out = tmp_path / "out"
    code = main(["--config", "micro-mtil", "--out", str(out), "--jobs", "1", "-q", "--no-plots",
                 "--set", "data.max_train=10", "--set", "data.max_test=5", "--set", "data.max_templates=1",
                 "--set", "train.iterations=2", "--set", "train.batch_size=5", "--set", "drift=0",
                 "--set", "strategy_defaults.zscl.ref_batch=4", "--set", "strategy_defaults.zscl.we_freq=1"])
    assert code == 0
    exp = out / "micro-mtil"
    md = (exp / "mtil_tables.md").read_text()
    assert "*Transfer*" in md and "*Avg*" in md and "*Last*" in md
    header = "| method | mnist | fashion_mnist | animals | digits | textures | mean |"
    assert md.count(header) == 3
    rows = [line for line in md.splitlines() if line.startswith("| zscl")]
    assert len(rows) == 3 and all(line.count("(n=1)") >= 5 for line in rows)
    assert "\\begin{table*}" in (exp / "mtil_tables.tex").read_text()
    assert "## MTIL (ZSCL's Table 1)" in (exp / "report.md").read_text()

    import pandas as pd

    lb = pd.read_csv(exp / "leaderboard.csv")
    assert sorted(lb["strategy"]) == ["ft", "ldifs", "zscl"]
    for rec_path in sorted((exp / "runs").glob("*/records.json")):
        rec = json.loads(rec_path.read_text())
        assert np.asarray(rec["ZS"]).shape == (6, 5)  # step 0 and five tasks, every dataset of the suite
        last = [line for line in md.split("*Last*")[1].splitlines() if line.startswith(f"| {rec['config']['strategy']['name']} ")]
        row = lb[lb["run_id"] == rec["run_id"]].iloc[0]
        assert float(last[0].split("|")[-2].split()[0]) == pytest.approx(row["Last"] * 100, abs=0.051)
        if rec["config"]["strategy"]["name"] == "zscl":
            pen = rec["steps"][1]["penalties"]
            assert set(pen) == {"zscl_image", "zscl_text", "l2"} and pen["zscl_image"]["steps"] == 2


def test_a_missing_reference_set_is_reported_before_training(tmp_path, capsys):
    from experiment.cli import main

    code = main(["--strategies", "zscl", "--out", str(tmp_path / "out"), "--jobs", "1", "--data-root", str(tmp_path),
                 "--set", "data.max_train=20", "--set", "data.max_test=10"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"reference images folder:ImageNet/train: no image folder at {tmp_path / 'ImageNet' / 'train'}" in err
    assert "reference texts captions:Validation_GCC-1.1.0-Validation_output.csv: no file" in err
    assert "Traceback" not in err and not list((tmp_path / "out").rglob("records.json"))


def test_iterations_follow_zscls_schedule_and_stop_the_task():
    """train.iterations with a per-task rate: ZSCL's cosine_lr (mtil/src/utils.py) for 6 steps, 2 of warm-up,
    base rate 0.5: step s < 2 -> 0.5 (s + 1) / 2; else 0.25 (1 + cos(pi (s - 2) / 4)); the task stops after 6."""
    from types import SimpleNamespace

    import torch

    from benchmark.training import WarmupCosinePlugin

    p = torch.nn.Parameter(torch.zeros(1))
    stops = []
    strategy = SimpleNamespace(optimizer=torch.optim.SGD([p], lr=0.1), dataloader=[0, 1, 2, 3], train_epochs=1,
                               task_lr=0.5, task_iterations=6, stop_training=lambda: stops.append(len(seen)))
    plugin = WarmupCosinePlugin(2)
    plugin.before_training_exp(strategy)
    assert strategy.train_epochs == 2  # 6 steps of 4 batches an epoch
    seen = []
    for _ in range(6):
        seen.append(strategy.optimizer.param_groups[0]["lr"])
        strategy.optimizer.step()  # (no gradient: nothing moves) as the template steps before the scheduler
        plugin.after_training_iteration(strategy)
    expected = [0.25, 0.5] + [0.25 * (1 + math.cos(math.pi * (s - 2) / 4)) for s in range(2, 6)]
    assert seen == pytest.approx(expected, abs=1e-12)
    assert seen[2:] == pytest.approx([0.5, 0.25 * (1 + math.sqrt(0.5)), 0.25, 0.25 * (1 - math.sqrt(0.5))])
    assert stops == [6]
