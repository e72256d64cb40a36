"""Reliability: bad input refused before any work, corrupt results redone, kill -9 and Ctrl-C survived,
two processes on one experiment. Each case asserts the exit code, one line, no traceback, and what is
(not) left on disk."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiment import cli
from benchmark.files import TMP_SUFFIX
from conftest import TINY
from evaluation.storage.records import LOCK, check_run, load_records

ROOT = Path(__file__).resolve().parents[1]
# Two tiny runs of the micro model (conftest.TINY): enough to cross every code path that writes a file.


def _main(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse's own errors exit from inside parse_args
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module", autouse=True)
def _forking_interpreter(forked):
    """Started with the module: its imports overlap the in-process cases on the other core."""


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ----------------------------------------------------------------------------------------------
# The catalogue: (class, argv, words the one line must contain). `{cfg}` is a config-file fixture.

# Whole files broken ("raw"), or the micro preset with one part broken ("patch").
BAD_CONFIGS = {
    "train_not_mapping": ("patch", {"train": 5}),
    "strategy_without_name": ("patch", {"strategies": [{"lam": 1}]}),
    "experiment_null": ("patch", {"experiment": None}),
    "model_not_mapping": ("patch", {"model": "ViT-B-32"}),
    "suite_not_list": ("patch", {"suite": "mnist"}),
    "unknown_top_key": ("patch", {"learning_rate": 0.1}),
    "not_utf8": ("raw", b"experiment: micro\xff\xfe\n"),
    "not_yaml": ("raw", b"experiment: [micro\n"),
    "top_level_list": ("raw", b"- a\n- b\n"),
    "empty_file": ("raw", b""),
}


CATALOGUE = [
    # values that no run can use
    ("value", ["--strategies", "ldifs:lam=nan"], "lam must be a finite number"),
    ("value", ["--strategies", "ldifs:lam=inf"], "lam must be a finite number"),
    ("value", ["--strategies", "ldifs:lam=-1"], "lam must be >= 0"),
    ("value", ["--set", "train.lr=1e9"], "train.lr: input should be less than or equal to 1"),
    ("value", ["--set", "train.lr=-1"], "train.lr: input should be greater than 0"),
    ("value", ["--set", "train.lr=0"], "train.lr: input should be greater than 0"),
    ("value", ["--set", "train.lr=.nan"], "train.lr: input should be a finite number"),
    ("value", ["--set", "train.lr=true"], "train.lr: a number is expected, not true/false"),
    ("value", ["--set", "train.weight_decay=-1"], "train.weight_decay: input should be greater than or equal to 0"),
    ("value", ["--set", "train.probe_C=0"], "train.probe_C: input should be greater than 0"),
    ("value", ["--set", "train.grad_clip=.inf"], "train.grad_clip: input should be a finite number"),
    ("value", ["--set", "train.warmup_steps=-3"], "train.warmup_steps: input should be greater than or equal to 0"),
    ("value", ["--epochs", "0"], "train.epochs: input should be greater than or equal to 1"),
    ("value", ["--set", "train.epochs=1.5"], "train.epochs: input should be a valid integer"),
    ("value", ["--set", "train.batch_size=0"], "train.batch_size: input should be greater than or equal to 1"),
    ("value", ["--set", "train.head_init=random"], "train.head_init: input should be 'lp' or 'zs'"),
    ("value", ["--seeds", "-1"], "seeds.0: input should be greater than or equal to 0"),
    ("value", ["--seeds", "0", "0"], "seeds list 0 more than once"),
    ("value", ["--set", "seeds=[]"], "seeds: list should have at least 1 item"),
    ("value", ["--set", "strategies=[]"], "strategies: list should have at least 1 item"),
    ("value", ["--set", "orderings=[]"], "orderings: list should have at least 1 item"),
    ("value", ["--set", "threads=-1"], "threads: input should be greater than or equal to 0"),
    ("value", ["--set", "threads=abc"], "threads: input should be a valid integer"),
    ("value", ["--set", "data.max_test=-5"], "data.max_test: input should be greater than or equal to 1"),
    ("value", ["--set", "model.image_size=abc"], "model.image_size: input should be a valid integer"),
    ("value", ["--set", "model.image_size=2"], "model.image_size: input should be greater than or equal to 8"),
    ("value", ["--set", "model.freeze_bn_stats=maybe"], "model.freeze_bn_stats: must be true or false"),
    ("value", ["--device", "foo"], "device: must be cpu, cuda, cuda:N or mps"),
    ("value", ["--strategies", "ft", "ft"], "strategy ft is asked for twice"),
    ("value", ["--strategies", "ldifs:lam=1", "ldifs:lam=1.0"], "strategy ldifs:lam=1.0"),
    ("value", ["--strategies", "ldifs:anchor=first"], "anchor must be one of previous, pretrained"),
    ("value", ["--strategies", "ldifs:norm_axis=0"], "norm_axis must be 1 (tokens) or 2 (channels)"),
    # unknown names and keys
    ("name", ["--set", "foo=1"], "unknown setting 'foo'; allowed: experiment, model"),
    ("name", ["--set", "train.optimiser=sgd"], "unknown setting 'train.optimiser'; allowed in train: epochs"),
    ("name", ["--set", "model.size=3"], "unknown setting 'model.size'; allowed in model: name, pretrained"),
    ("name", ["--strategies", "nope"], "unknown strategy 'nope'; available: "),
    ("name", ["--strategies", "ldifs:gamma=1"], "has no hyperparameter gamma; allowed: "),
    ("name", ["--orderings", "mnist,cifar10"], "unknown dataset 'cifar10' in ordering"),
    ("name", ["--orderings", "mnist,textures", "--suite", "mnist"], "which the suite does not score"),
    ("name", ["--suite", "mnist", "imagenet"], "unknown dataset 'imagenet' in suite"),
    ("name", ["--suite", "mnist", "mnist", "--orderings", "mnist"], "suite lists mnist more than once"),
    ("name", ["--set", "model.name=ViT-X-99"], "unknown model 'ViT-X-99'"),
    ("name", ["--config", "nonexistent"], "no config 'nonexistent'; presets: "),
    # malformed shapes
    ("shape", ["--strategies", "ldifs:lam"], "expected name:key=value"),
    ("shape", ["--strategies", "ldifs:layers=null"], "layers must be one of reference, last, all"),
    ("shape", ["--strategies", "ldifs:layers=[0,"], "is not valid YAML"),
    ("shape", ["--set", "train=5"], "train must be a mapping of settings, got 5"),
    ("shape", ["--set", "train.lr.x=1"], "'lr' is a value, not a section"),
    ("shape", ["--set", "train.lr=[1"], "the value is not valid YAML"),
    ("shape", ["--set", "experiment=null"], "experiment: input should be a valid string"),
    ("shape", ["--orderings", "mnist,mnist"], "each at most once"),
    ("shape", ["--config", "{cfg:train_not_mapping}"], "train must be a mapping of settings, got 5"),
    ("shape", ["--config", "{cfg:strategy_without_name}"], "a strategy in a config is a name"),
    ("shape", ["--config", "{cfg:experiment_null}"], "experiment: input should be a valid string"),
    ("shape", ["--config", "{cfg:not_utf8}"], "not a UTF-8 text file"),
    ("shape", ["--config", "{cfg:not_yaml}"], "not valid YAML"),
    ("shape", ["--config", "{cfg:top_level_list}"], "expected a mapping of settings at the top level"),
    ("shape", ["--config", "{cfg:empty_file}"], "expected a mapping of settings at the top level"),
    ("shape", ["--config", "{cfg:model_not_mapping}"], "model must be a mapping of settings"),
    ("shape", ["--config", "{cfg:suite_not_list}"], "suite: input should be a valid list"),
    ("shape", ["--config", "{cfg:unknown_top_key}"], "unknown setting 'learning_rate'"),
    # paths: everything stays inside --out/<experiment>
    ("path", ["--experiment", "../escape"], "experiment: must be one folder name"),
    ("path", ["--experiment", "/tmp/abs"], "experiment: must be one folder name"),
    ("path", ["--experiment", "a/b"], "experiment: must be one folder name"),
    ("path", ["--experiment", ".hidden"], "experiment: must be one folder name"),
    ("path", ["--experiment", "x" * 300], "experiment: must be one folder name of at most 100 characters"),
    ("path", ["--collect-only", "--experiment", "typo"], "--collect-only: no experiment 'typo'"),
    ("path", ["--out", "/proc/no-results-here"], "cannot write results there"),
    # argparse
    ("cli", ["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    ("cli", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
]


def test_the_catalogue_is_large_and_covers_every_class():
    classes = {c for c, _, _ in CATALOGUE}
    assert len(CATALOGUE) >= 40 and classes == {"value", "name", "shape", "path", "cli"}


@pytest.mark.parametrize("kind, argv, words", CATALOGUE, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CATALOGUE)])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(kind, argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    cfgs = tmp_path / "configs"
    cfgs.mkdir()
    resolved = []
    for a in argv:
        if a.startswith("{cfg:"):
            name = a[5:-1]
            kind, body = BAD_CONFIGS[name]
            p = cfgs / f"{name}.yaml"
            if kind == "raw":
                p.write_bytes(body)
            else:
                cfg = yaml.safe_load((ROOT / "configs" / "micro.yaml").read_text())
                p.write_text(yaml.safe_dump({**cfg, **body}))
            a = str(p)
        resolved.append(a)
    if "--out" not in resolved:
        resolved = ["--out", str(out), *resolved]
    code, err = _main(resolved, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert "Traceback" not in err
    assert _files(out) == []  # nothing written, not even an empty experiment folder's files
    assert not (out / "micro").exists() and not (tmp_path.parent / "escape").exists()


# ----------------------------------------------------------------------------------------------
# Corrupt results: detected, reported in one line, redone; the collector never crashes.


@pytest.fixture(scope="module")
def finished(tiny_experiment):
    """ft and ldifs on TINY, finished (conftest.py: trained once per session); read only, or copied."""
    return tiny_experiment


def _copy(finished, tmp_path) -> Path:
    dst = tmp_path / "micro"
    shutil.copytree(finished, dst)
    return dst


def _runs(exp: Path) -> dict[str, Path]:
    return {json.loads((p / "config.json").read_text())["strategy"]["name"]: p for p in (exp / "runs").iterdir()}


def _damage(run: Path, how: str) -> None:
    text = (run / "records.json").read_text()
    rec = json.loads(text)
    if how == "truncate":
        (run / "records.json").write_text(text[: len(text) // 2])
        return
    if how == "ill_typed":
        rec["R"][1][0] = "high"
    elif how == "out_of_range":
        rec["LP"][0][0] = 1.5
    elif how == "wrong_shape":
        rec["LP"] = rec["LP"][:-1]
    elif how == "edited_config":
        rec["config"]["train"]["lr"] = 0.5
    elif how == "incomplete":
        rec["complete"] = False
    (run / "records.json").write_text(json.dumps(rec))


@pytest.mark.parametrize("how", ["truncate", "ill_typed", "out_of_range", "wrong_shape", "edited_config", "incomplete"])
def test_a_damaged_record_is_named_and_left_out_by_the_collector(finished, tmp_path, how, capsys):
    exp = _copy(finished, tmp_path)
    run = _runs(exp)["ft"]
    _damage(run, how)
    assert check_run(run) is not None
    code, err = _main(["--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    assert code == 0 and f"run {run.name} is left out" in err and "Traceback" not in err
    assert list(pd.read_csv(exp / "leaderboard.csv")["strategy"]) == ["ldifs"]


def test_a_damaged_record_is_redone_and_equal_to_the_original(finished, tmp_path, capsys):
    exp = _copy(finished, tmp_path)
    run = _runs(exp)["ft"]
    original = load_records(run)
    _damage(run, "truncate")
    code, err = _main(["--strategies", "ft", "ldifs", "--out", str(tmp_path), *TINY], capsys)
    assert code == 0 and f"run {run.name}: " in err and "training it again" in err
    again = load_records(run)
    assert (again.R, again.LP, again.ZS) == (original.R, original.LP, original.ZS)
    assert sorted(pd.read_csv(exp / "leaderboard.csv")["strategy"]) == ["ft", "ldifs"]


def test_a_record_edited_after_its_done_marker_is_left_out_then_retrained_by_the_next_run(finished, tmp_path, capsys):
    """Records still valid as records (one accuracy changed by hand) but not the ones their done marker
    vouches for: the collector names the run in one line that says what happens next and leaves it out
    of the leaderboard; the next command that plans it trains it again, to the original records."""
    from evaluation.storage.records import check_records

    exp = _copy(finished, tmp_path)
    run = _runs(exp)["ft"]
    original = load_records(run)
    rec = json.loads((run / "records.json").read_text())
    rec["R"][1][0] = 0.123
    (run / "records.json").write_text(json.dumps(rec))
    assert check_records(rec, run.name) is None  # only the done marker's checksum tells
    why = "records.json no longer matches the checksum in its done marker (edited after the run finished?)"
    code, err = _main(["--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert code == 0 and "Traceback" not in err and warnings == [
        f"warning: run {run.name} is left out of the leaderboard: {why}; the next command whose plan has this run "
        "(not --collect-only or --dry-run) trains it again"], err
    assert list(pd.read_csv(exp / "leaderboard.csv")["strategy"]) == ["ldifs"]
    code, err = _main(["--strategies", "ft", "ldifs", "--out", str(tmp_path), *TINY], capsys)
    assert code == 0 and "Traceback" not in err and f"run {run.name}: {why}; training it again" in err, err[-2000:]
    assert "is left out" not in err and check_run(run) is None  # (a plan warning about the tiny warm-up may stand)
    again = load_records(run)
    assert (again.R, again.LP, again.ZS) == (original.R, original.LP, original.ZS)
    assert sorted(pd.read_csv(exp / "leaderboard.csv")["strategy"]) == ["ft", "ldifs"]


def test_a_full_disk_while_plotting_stops_the_collector_in_one_line(finished, tmp_path, capsys, monkeypatch):
    """A plot that fails is skipped with a warning, but not for want of room: every later file would
    fail too, and the command said it had finished. One line naming the file and what it means, exit 2."""
    import errno

    import evaluation.reporting.plots as plots

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    exp = _copy(finished, tmp_path)
    monkeypatch.setattr(plots, "atomic_write_bytes", full)
    code, err = _main(["-q", "--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith(f"error: {exp / 'plots'}/") and lines[0].endswith(
        ".png: No space left on device: the file system is full; free space, or choose another --out (or CFBENCH_CACHE "
        "for the cache); during collection: every finished run is kept; rebuild the tables with --collect-only")
    assert all(check_run(r) is None for r in _runs(exp).values()) and _stray(exp) == []


def test_records_copied_into_another_run_folder_are_not_counted_twice(finished, tmp_path, capsys):
    exp = _copy(finished, tmp_path)
    runs = _runs(exp)
    shutil.copy(runs["ft"] / "records.json", runs["ldifs"] / "records.json")
    code, err = _main(["--collect-only", "--out", str(tmp_path), *TINY, "--strategies", "ft", "ldifs"], capsys)
    assert code == 0 and "copied from another folder" in err
    df = pd.read_csv(exp / "leaderboard.csv")
    assert list(df["strategy"]) == ["ft"] and df["run_id"].is_unique


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, monkeypatch):
    import torch

    from benchmark import cache_files as cache

    monkeypatch.setenv("CFBENCH_CACHE", str(tmp_path))
    p = tmp_path / "x.pt"
    cache.save(p, {"emb": torch.arange(6.0).view(2, 3)})
    assert torch.equal(cache.load(p)["emb"], torch.arange(6.0).view(2, 3))
    blob = p.read_bytes()
    p.write_bytes(blob[: len(blob) // 2])  # truncated
    assert cache.load(p) is None and not p.exists()
    # valid tensors, wrong values: the checksum catches it
    torch.save({"tensors": {"emb": torch.zeros(2, 3)}, "sha256": cache.digest({"emb": torch.ones(2, 3)})}, p)
    assert cache.load(p) is None and not p.exists()
    p.write_bytes(b"garbage")
    assert cache.load(p) is None


def test_result_files_have_normal_permissions(finished):
    umask = os.umask(0)
    os.umask(umask)
    for p in [finished / "leaderboard.csv", *(finished / "runs").rglob("*.json")]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p


# ----------------------------------------------------------------------------------------------
# kill -9 at several points, then resume; Ctrl-C; two processes at once.


def _cli(args, out, env_extra=None, **kw):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([sys.executable, str(ROOT / "run_benchmark.py"), "--out", str(out), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT, **kw)


def _stray(exp: Path) -> list[Path]:
    return [p for p in exp.rglob("*") if p.name.endswith(TMP_SUFFIX) or p.name == LOCK]


def _forked(forked, args, out, env_extra=None):
    """Like _cli, in a process forked from an interpreter that has done the imports (tests/forked.py)."""
    return forked.run(["--out", str(out), *args], env={**os.environ, **(env_extra or {})})


def test_kill_9_at_several_points_then_resume_gives_the_uninterrupted_records(finished, tmp_path, forked):
    args = ["--strategies", "ft", *TINY]
    # each crash happens in the process that resumes the previous one: between two steps, inside an
    # atomic write of the records, inside the collector's write of the leaderboard
    for fault in ("after-step-1", "mid-write:records.json", "mid-write:leaderboard.csv"):
        p = _forked(forked, args, tmp_path, {"CFBENCH_FAULT": fault})
        _, err = p.communicate(timeout=300)
        assert p.returncode == -signal.SIGKILL, (fault, err[-2000:])
    p = _forked(forked, args, tmp_path)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    exp = tmp_path / "micro"
    want, got = _runs(finished), _runs(exp)
    assert sorted(got) == ["ft"]
    a, b = load_records(want["ft"]), load_records(got["ft"])
    assert a.run_id == b.run_id and (a.R, a.LP, a.ZS) == (b.R, b.LP, b.ZS)
    assert _stray(exp) == []
    lb_a = pd.read_csv(finished / "leaderboard.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(lb_a[lb_a["strategy"] == "ft"].reset_index(drop=True),
                                  pd.read_csv(exp / "leaderboard.csv", keep_default_na=False))


# The command, with a gate at the start of torch's import (the heart of the start-up): the gate says so on
# stderr and then waits, so that the test's Ctrl-C arrives inside the start-up on any machine, however fast.
_GATED = """
import importlib.abc, sys, time
class Gate(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            print("gate: importing torch", file=sys.stderr, flush=True)
            time.sleep(300)
        return None
sys.meta_path.insert(0, Gate())
sys.path.insert(0, sys.argv[1])
sys.argv = ["cfbench", *sys.argv[2:]]
from experiment.cli import entry
entry()
"""


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", _GATED, str(ROOT), "--out", str(tmp_path), "--strategies", "ft", *TINY],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    seen = []
    for line in p.stderr:  # wait for the event, not for a delay
        seen.append(line)
        if line.startswith("gate: importing torch"):
            break
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    err = "".join(seen) + err
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "interrupted during start-up: nothing was written"
    assert not (tmp_path / "micro").exists()


def test_two_processes_on_one_experiment_train_each_run_once(finished, tmp_path, forked):
    args = ["--strategies", "ft", "ldifs", *TINY]
    a = _forked(forked, args, tmp_path)
    time.sleep(0.5)
    b = _forked(forked, args, tmp_path)
    (_, ea), (_, eb) = a.communicate(timeout=400), b.communicate(timeout=400)
    assert a.returncode == 0 and b.returncode == 0, (ea[-1500:], eb[-1500:])
    trained = re.findall(r"done: run ([0-9a-f]{12}) \(", ea + eb)
    assert len(trained) == 2 and len(set(trained)) == 2, ea + eb  # two runs, each trained once
    exp = tmp_path / "micro"
    assert len(pd.read_csv(exp / "leaderboard.csv")) == 2 and _stray(exp) == []


# ----------------------------------------------------------------------------------------------
# Corrupt packaged assets: one line naming the file and how to restore it.


def test_a_truncated_micro_dataset_is_named_with_its_fix(tmp_path, monkeypatch, capsys):
    import benchmark.data.sources as sources

    micro = tmp_path / "micro"
    shutil.copytree(sources.MICRO_DIR, micro)
    blob = (micro / "digits.npz").read_bytes()
    (micro / "digits.npz").write_bytes(blob[: len(blob) // 3])
    monkeypatch.setattr(sources, "MICRO_DIR", micro)
    code, err = _main(["--out", str(tmp_path / "out"), *TINY, "--strategies", "ft"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert lines[-1].startswith("error: dataset digits: the packaged file benchmark/assets/micro/digits.npz is "
                                "damaged") and "scripts/build_micro_suite.py" in lines[-1]
    assert not (tmp_path / "out" / "micro" / "runs").exists()


def test_a_damaged_dataset_registry_is_one_line(tmp_path, monkeypatch, capsys):
    import benchmark.data.registry as registry

    assets = tmp_path / "benchmark" / "assets"
    assets.mkdir(parents=True)
    text = (registry.ASSETS / "datasets.json").read_text()
    (assets / "datasets.json").write_text(text[: len(text) // 2])
    monkeypatch.setattr(registry, "ASSETS", assets)
    registry.catalog.cache_clear()
    try:
        code, err = _main(["--out", str(tmp_path / "out"), *TINY], capsys)
    finally:
        registry.catalog.cache_clear()
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: benchmark/assets/datasets.json is damaged (")
    assert lines[0].endswith("restore it with `git checkout -- benchmark/assets/datasets.json`")
