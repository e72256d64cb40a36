"""The paper presets on a machine with no data: the dry-run plan, and one line per missing dataset."""
from __future__ import annotations

import pytest

from experiment import cli
from experiment import config as C
from experiment.dryrun import describe, split_sizes

PAPER = ["Cars", "CIFAR10", "CIFAR100", "DTD", "EuroSAT", "GTSRB", "MNIST", "RESISC45", "SUN397", "SVHN"]
EPOCHS = {"Cars": 35, "DTD": 76, "EuroSAT": 12, "GTSRB": 11, "MNIST": 10, "CIFAR10": 10, "CIFAR100": 10,
          "RESISC45": 15, "SUN397": 14, "SVHN": 10}


@pytest.mark.parametrize("preset", ["paper-single", "paper-continual"])
def test_presets_hold_the_reference_protocol(preset):
    cfg = C.validate(C.load_preset(preset))
    t = cfg["train"]
    assert cfg["model"] == {**cfg["model"], "name": "ViT-B-32", "pretrained": "openai"}
    assert (t["lr"], t["weight_decay"], t["batch_size"], t["warmup_steps"], t["grad_clip"], t["precision"]) == \
        (1e-5, 0.1, 128, 500, 1.0, "fp32")
    assert t["epochs"] == EPOCHS and cfg["suite"] == PAPER
    assert cfg["data"]["train_transform"] == "openclip" and len(t["probe_C"]) > 1
    # the authors' probe, data and class names
    assert (t["probe"], t["probe_lr"], t["probe_steps"]) == ("reference", [0.01, 0.05, 0.1, 0.5, 1.0], 1000)
    assert cfg["data"]["variants"] == {"CIFAR100": "torchvision", "Cars": "files", "DTD": "train", "EuroSAT": "folders"}


def test_split_sizes_follow_design():
    d = {"val_fraction": 0.1, "val_cap": 20000}
    assert split_sizes("EuroSAT", d) == {"train": 21600, "val": 2700, "test": 2700}
    assert split_sizes("SVHN", d) == {"train": 73257 - 7325, "val": 7325, "test": 26032}
    assert split_sizes("SVHN", {**d, "val_cap": 1000})["val"] == 1000


def test_dry_run_of_paper_continual_prints_the_plan(tmp_path, capsys):
    assert cli.main(["--config", "paper-continual", "--dry-run", "--out", str(tmp_path),
                               "--data-root", str(tmp_path / "nodata")]) == 0
    out = capsys.readouterr().out
    # SVHN: 73,257 - 7,325 validation = 65,932 training images; 10 epochs of ceil(65932 / 128) = 516 steps.
    assert "SVHN 10 ep x 65932 = 5160 steps" in out and "EuroSAT 12 ep x 21600 = 2028 steps" in out
    assert "6 runs" in out and "missing Cars, CIFAR10" in out and "weights: ViT-B-32/openai" in out
    assert "GPU-hours at 1320 training images/s" in out
    assert not any(tmp_path.glob("paper-continual/runs/*"))
    # how to get each missing input, as the exact command to type (this one, with --download)
    cmd = f"python run_benchmark.py --config paper-continual --out {tmp_path} --data-root {tmp_path / 'nodata'} --download"
    assert f"    CIFAR10: missing; get it: {cmd} (torchvision fetches" in out
    assert "    Cars (files): missing; no command gets it here: no working automatic download" in out
    # EuroSAT's split folders: this command with --download fetches the archive and builds them
    # (benchmark/data/eurosat_splits.py), which also builds them alone
    line = [x for x in out.splitlines() if x.startswith("    EuroSAT (folders): ")][0]
    assert line.startswith(f"    EuroSAT (folders): missing; get it: {cmd} (torchvision fetches EuroSAT.zip")
    assert f"python -m benchmark.data.eurosat_splits --data-root {tmp_path / 'nodata'} --download)" in line
    assert f"get them: {cmd} (about 338 MB)" in out
    assert "disk: about 42.1 GB for the suite's datasets; to download: about 41.0 GB" in out
    assert "python run_benchmark.py --download" not in out


def test_dry_run_of_paper_single_estimate_by_hand():
    cfg = C.validate(C.load_preset("paper-single"))
    cfg["throughput"] = 1000.0
    text = describe(cfg, C.plan(cfg))
    assert "300 runs" in text  # 10 methods x 10 datasets x 3 seeds
    sizes = {n: split_sizes(n, cfg["data"]) for n in PAPER}
    # per seed: eight methods at one training step per image, and ZS- and LP-init-LDIFS whose anchor forward
    # pass costs a third of a training step more
    train = 3 * (8 + 2 * 4 / 3) * sum(EPOCHS[n] * sizes[n]["train"] for n in PAPER)
    # every run embeds the whole suite once after its task: 30 runs per fine-tuning dataset
    evals = 30 * sum(s["train"] + s["val"] + s["test"] for s in sizes.values()) * 10
    assert f"estimate: {(train + evals / 3) / 1000 / 3600:.1f} GPU-hours" in text
    # one method's share: LP-init-LDIFS on every dataset, 3 seeds
    ldifs = 3 * (4 / 3 * sum(EPOCHS[n] * sizes[n]["train"] for n in PAPER) + 10 * sum(
        s["train"] + s["val"] + s["test"] for s in sizes.values()) / 3)
    assert f"LP-init-LDIFS {ldifs / 1000 / 3600:.1f}" in text
    assert "methods (10, seeds 0, 1, 2): ZS-init-CE = ft, head_init zs; LP-init-CE = ft, head_init lp;" in text


def test_dry_run_counts_ewcs_fisher_epoch_by_hand():
    # SVHN > EuroSAT, one seed: ft, LwF (a teacher forward pass per step, 1/3) and EWC (one forward and backward
    # epoch over each task's training split after the task: 65,932 + 21,600 images)
    cfg = C.load_preset("paper-continual")
    cfg.update(orderings=[["SVHN", "EuroSAT"]], seeds=[0], strategies=["ft", "lwf", "ewc"], throughput=1000.0)
    cfg = C.validate(cfg)
    text = describe(cfg, C.plan(cfg))
    imgs = 10 * 65932 + 12 * 21600
    per_eval = sum(s["train"] + s["val"] + s["test"] for s in (split_sizes(n, cfg["data"]) for n in PAPER))
    train = imgs + imgs * 4 / 3 + (imgs + 65932 + 21600)
    assert f"estimate: {(train + 3 * 2 * per_eval / 3) / 1000 / 3600:.1f} GPU-hours" in text
    assert f"LP-init-EWC {(imgs + 65932 + 21600 + 2 * per_eval / 3) / 1000 / 3600:.1f}" in text


@pytest.mark.parametrize("preset", ["paper-single", "paper-continual"])
def test_presets_list_the_papers_methods_with_their_head_init(preset):
    runs = C.plan(C.validate(C.load_preset(preset)))
    from experiment.dryrun import methods

    got = {m: spec.rsplit(" ", 1)[1] for m, spec in methods(runs).items()}
    want = {"ZS-init-CE": "zs", "LP-init-CE": "lp", "ZS-init-L2SP": "zs", "LP-init-L2SP": "lp", "FLYP": "zs",
            "ZS-init-LDIFS": "zs", "LP-init-LDIFS": "lp", "LP-FT": "lp", "WiSE-FT": "zs", "LP-init-VPT": "lp"}
    if preset == "paper-continual":
        want.update({"LP-init-EWC": "lp", "LP-init-LwF": "lp"})
    assert got == want
    assert sorted({r["seed"] for r in runs}) == [0, 1, 2]
    # every run carries its method's head init in its train section, and its strategy config has none
    assert all(r["train"]["head_init"] in ("lp", "zs") and "head_init" not in r["strategy"] for r in runs)


def test_missing_datasets_each_one_line_and_exit_2(tmp_path, capsys):
    code = cli.main(["--config", "paper-continual", "--device", "cpu", "--out", str(tmp_path),
                               "--data-root", str(tmp_path / "nodata"), "--orderings", "SVHN,EuroSAT",
                               "--suite", "SVHN", "EuroSAT", "RESISC45"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    errors = [line for line in err if line.startswith("error: ")]
    assert [e.split(":")[1].strip() for e in errors[:3]] == ["dataset SVHN", "dataset EuroSAT", "dataset RESISC45"]
    assert errors[3].startswith("error: cannot load model ViT-B-32 with pretrained='openai': the weights are not")
    # every hint names the exact command: this one, with --download (the preset included)
    for e in (errors[0], errors[3]):
        assert "python run_benchmark.py --config paper-continual --device cpu --out" in e and "--download" in e, e
    # the paper presets read EuroSAT's fixed split folders (data.variants), so that is the layout asked for
    assert "EuroSAT_splits/{train,val,test}/<class>/*.jpg" in errors[1] and "no working automatic download" in errors[2]
