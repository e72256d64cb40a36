"""scripts/rehearse_paper.py: the paper path end to end on the CPU, in a reduced form (two datasets, two
methods of paper-single), and the rehearsal's own choices (reduced orderings, the QuickGELU architecture,
refusals)."""
from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from benchmark.data import writers
from experiment import config as C

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("rehearse_paper", ROOT / "scripts" / "rehearse_paper.py")
rehearse = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rehearse)


class _ForkedProcess:
    """What rehearse.Worker uses of a Popen (stdout=PIPE, stderr=STDOUT), for a process forked by the tests'
    zygote (tests/forked.py) whose stdout and stderr go to a FIFO: `stdout` gives its lines as they come and
    ends when the process has ended (a writer end held here until then, so that no read ends early)."""

    def __init__(self, forked, fifo: Path, script: str, argv: list[str]):
        os.mkfifo(fifo)
        read = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opens without a writer; the reads block below
        self._held = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        fcntl.fcntl(read, fcntl.F_SETFL, fcntl.fcntl(read, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        self.stdout = open(read, encoding="utf-8", errors="replace")
        self.handle = forked.run(argv, script=script, output=fifo)

    def _ended(self, code):
        if code is not None and self._held is not None:
            os.close(self._held)
            self._held = None
        return code

    def poll(self):
        return self._ended(self.handle.poll())

    def wait(self, timeout=None):
        return self._ended(self.handle.wait(timeout))

    def send_signal(self, sig):
        if self.handle.returncode is None:
            os.kill(self.handle.pid, sig)

    def kill(self):
        self.handle.kill()


class _ForkedWorker(rehearse.Worker):
    """rehearse.Worker, its process started from the zygote of tests/forked.py instead of a fresh interpreter:
    worker_command's script and arguments (`rehearse_paper.py --worker K ...`, its __main__ block), in a process
    of its own, its lines relayed by Worker's own code. Only the interpreter's start-up and imports (12-15
    CPU-s) are not done again; a fresh Popen of a worker is test_a_failing_worker_is_named_and_fails_the_rehearsal's."""

    def __init__(self, forked, folder: Path, k: int, command: list[str]):
        self.forked, self.folder = forked, folder
        super().__init__(k, command)

    def _start(self, command: list[str]) -> _ForkedProcess:
        python, script, *argv = command
        assert python == sys.executable and script == str(ROOT / "scripts" / "rehearse_paper.py"), command
        return _ForkedProcess(self.forked, self.folder / f"worker{self.k}.fifo", script, argv)

    def finish(self, stop: bool) -> bool:
        try:
            return super().finish(stop)
        finally:
            self.proc.stdout.close()


@pytest.mark.parametrize("preset", ["paper-single", "paper-continual"])
def test_every_dataset_of_the_paper_presets_has_a_writer(preset):
    assert set(C.load_preset(preset)["suite"]) <= set(writers.WRITERS)


def test_reduced_suites_keep_the_presets_orderings_within_them():
    preset = C.load_preset("paper-continual")
    assert rehearse.reduced(preset, None) == (preset["suite"], preset["orderings"])
    # [SVHN, CIFAR10, RESISC45] keeps SVHN alone; the suite keeps the preset's order
    assert rehearse.reduced(preset, ["SVHN", "EuroSAT"]) == (
        ["EuroSAT", "SVHN"], [["SVHN", "EuroSAT"], ["EuroSAT", "SVHN"], ["SVHN"]])
    assert rehearse.reduced(C.load_preset("paper-single"), ["SVHN", "MNIST"]) == (["MNIST", "SVHN"], [["MNIST"], ["SVHN"]])


def test_a_train_split_keeps_its_last_class_when_a_validation_part_is_carved_from_it():
    """seed 0's 10% of CIFAR100's 100 images (one a class) takes class 99's: its head would have 99 rows."""
    d = C.load_preset("paper-single")["data"]
    assert not rehearse._last_class_kept("CIFAR100", 100, 1, d) and rehearse._last_class_kept("CIFAR100", 100, 2, d)
    assert rehearse._last_class_kept("GTSRB", 43, 1, d)
    assert rehearse._last_class_kept("DTD", 47, 1, d)  # its own validation list (variant train: no carving)


def test_random_weights_are_built_in_the_architecture_of_openais_weights():
    import open_clip

    sets = rehearse.model_overrides({"name": "ViT-B-32", "pretrained": "openai"})
    assert sets == ["model.pretrained=null", "model.name=ViT-B-32-quickgelu"]
    assert open_clip.get_model_config("ViT-B-32-quickgelu")["quick_gelu"] is True
    assert open_clip.get_model_config("ViT-B-32")["vision_cfg"] == open_clip.get_model_config("ViT-B-32-quickgelu")["vision_cfg"]
    assert rehearse.model_overrides({"name": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"}) == ["model.pretrained=null"]


@pytest.mark.parametrize("argv, words", [
    (["--datasets", "MNIST", "mnist"], "--datasets mnist: not in the suite of this preset"),
    (["--config", "no-such-preset"], "no config 'no-such-preset'"),
    (["--image-size", "0"], "--image-size 0: give a positive number"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, words):
    assert rehearse.main(["--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1 and err.startswith("error: ")


def test_a_data_folder_it_did_not_write_is_left_alone(tmp_path, capsys):
    mine = tmp_path / "data" / "mine.txt"
    mine.parent.mkdir()
    mine.write_text("a user's file")
    assert rehearse.main(["--out", str(tmp_path), "--datasets", "MNIST"]) == 2
    assert "was not written by a rehearsal" in capsys.readouterr().err and mine.read_text() == "a user's file"


def test_a_reduced_rehearsal_runs_the_preset_end_to_end(tmp_path, capsys, monkeypatch, forked):
    """paper-single on MNIST and SVHN with a ZS-init and an LP-init method: 4 runs on the preset's own
    protocol (reference probe, variants, checkpoint), shared out by two processes (this one and a worker,
    each with the written files' checksums off; the worker forked from the tests' pre-imported interpreter),
    then the collection."""
    monkeypatch.setattr(rehearse, "Worker", functools.partial(_ForkedWorker, forked, tmp_path))
    methods = ["ft:head_init=zs", "ldifs:head_init=lp"]
    code = rehearse.main(["--config", "paper-single", "--out", str(tmp_path), "--datasets", "MNIST", "SVHN",
                          "--strategies", *methods, "--threads", "1", "--probe-steps", "10", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "4 runs planned (2 methods x 2 orderings, seed 0), 4 done" in err
    assert "rehearsal of paper-single passed" in err and "(2 processes)" in err
    exp = tmp_path / "paper-single"
    preset = C.validate(C.load_preset("paper-single"))
    records = [json.loads(p.read_text()) for p in sorted((exp / "runs").glob("*/records.json"))]
    assert len(records) == 4
    # each run trained once, by one of the two processes (the worker's lines are prefixed: its share
    # depends on the machine's speed, the sum does not)
    done = re.findall(r"^(worker 1: )?\[\d+/\d+ [^]]*\] done: run (\w+)", err, re.M)
    assert sorted(rid for _, rid in done) == sorted(r["run_id"] for r in records)
    for rec in records:
        cfg = rec["config"]
        assert cfg["model"]["name"] == "ViT-B-32-quickgelu" and cfg["model"]["pretrained"] is None
        assert cfg["data"]["variants"] == preset["data"]["variants"] and cfg["data"]["train_transform"] == "openclip"
        assert {k: cfg["train"][k] for k in ("probe", "probe_lr", "lr", "weight_decay")} == \
            {k: preset["train"][k] for k in ("probe", "probe_lr", "lr", "weight_decay")}
        assert cfg["train"]["probe_steps"] == 10 and cfg["train"]["epochs"] == 1
        assert rec["complete"] and rec["suite"] == ["MNIST", "SVHN"]
        assert len(rec["LP"]) == len(rec["ZS"]) == 2 and all(0 <= v <= 1 for row in rec["ZS"] for v in row)
        if cfg["train"]["head_init"] == "zs":  # a ZS-init head before training is the zero-shot classifier
            assert rec["R"][0][0] == rec["ZS"][0][rec["suite"].index(rec["ordering"][0])]
    assert {(r["config"]["strategy"]["name"], r["config"]["train"]["head_init"]) for r in records} == {("ft", "zs"), ("ldifs", "lp")}
    tables = (exp / "tables.md").read_text()
    assert "MNIST" in tables and "SVHN" in tables
    assert (exp / "report.md").is_file() and list((exp / "plots").glob("*.png"))
    assert (tmp_path / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert (tmp_path / "data" / "svhn" / "test_32x32.mat").is_file()


def test_the_mtil_rehearsal_runs_zscl_on_five_tasks_and_writes_the_mtil_table(tmp_path, capsys):
    """mtil-order1 reduced to five of its datasets (an MTIL-shaped ordering: the collection writes ZSCL's table)
    with zscl, whose reference images and captions the rehearsal writes where the preset reads them."""
    five = ["Aircraft", "Food", "OxfordPet", "Cars", "SUN397"]  # mtil-order1's order kept: Aircraft ... SUN397
    # ViT-B/16 on one patch of 16 pixels, as the default 32 is one patch of ViT-B/32; no feature drift (the
    # reduced paper-single rehearsal measures it): a third less CPU, the same path and files
    code = rehearse.main(["--config", "mtil-order1", "--out", str(tmp_path), "--datasets", *five,
                          "--strategies", "zscl", "--threads", "1", "--probe-steps", "5", "--templates", "1", "-q",
                          "--image-size", "16", "--drift", "0"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "1 runs planned (1 methods x 1 orderings, seed 0), 1 done" in err and "MTIL table of 1 ordering(s)" in err
    exp = tmp_path / "mtil-order1"
    (rec,) = [json.loads(p.read_text()) for p in (exp / "runs").glob("*/records.json")]
    cfg, preset = rec["config"], C.validate(C.load_preset("mtil-order1"))
    assert rec["complete"] and rec["ordering"] == five and len(rec["ZS"]) == 6  # step 0, then after each task
    assert cfg["model"]["name"] == "ViT-B-16-quickgelu" and cfg["model"]["pretrained"] is None
    assert cfg["strategy"]["name"] == "zscl" and cfg["strategy"]["ref_images"] == "folder:ImageNet/train"
    assert cfg["train"]["iterations"] == 2 and cfg["data"]["max_templates"] == 1
    assert {k: cfg["train"][k] for k in ("label_smoothing", "lr", "head_init", "weight_decay")} == \
        {k: preset["train"][k] for k in ("label_smoothing", "lr", "head_init", "weight_decay")}
    assert cfg["data"]["variants"] == preset["data"]["variants"]
    table = (exp / "mtil_tables.md").read_text()
    assert all(w in table for w in [*five, "Transfer", "Avg", "Last"])
    assert table.count("| zscl |") == 3  # its row in each block (the MTIL table labels methods by strategy)
    data = tmp_path / "data"
    assert (data / "ImageNet" / "train").is_dir() and (data / "Validation_GCC-1.1.0-Validation_output.csv").is_file()
    assert (data / "fgvc-aircraft-2013b" / "data" / "variants.txt").is_file()


def test_a_failing_worker_is_named_and_fails_the_rehearsal(capsys):
    """A worker's lines reach the user prefixed with its number, and its exit status counts: a run that
    failed there (exit 1) fails the rehearsal even when this process finished the rest."""
    line = "error: run 0a1b2c3d4e5f (ft SVHN seed 0): the strategy raised ValueError"
    w = rehearse.Worker(1, [sys.executable, "-c", f"import sys; print({line!r}, file=sys.stderr); sys.exit(1)"])
    assert w.finish(stop=False) is True and w.code == 1
    assert f"worker 1: {line}\n" in capsys.readouterr().err
    ok = rehearse.Worker(2, [sys.executable, "-c", "print('experiment x: 4 runs planned')"])
    assert ok.finish(stop=False) is False and capsys.readouterr().err == "worker 2: experiment x: 4 runs planned\n"
