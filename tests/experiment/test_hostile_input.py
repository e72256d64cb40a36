"""Hostile config files and settings (alias bombs, FIFOs, huge files, duplicate keys, overflowing values,
huge grids): one line, exit 2, nothing left behind, and an answer within a time bound (several hung before)."""
from __future__ import annotations

import os
import sys

import pytest

from benchmark import strict_yaml
from conftest import paths_under, run_main

BOUND_S = 20  # every case here answers within this (in-process: no interpreter start-up)


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


def _alias_bomb() -> bytes:
    lines = ["experiment: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for k in range(1, 9):
        lines.append(f"x{k}: &{chr(97 + k)} [" + ", ".join([f"*{chr(96 + k)}"] * 9) + "]")
    return ("\n".join(lines) + "\n").encode()


# config files: name -> bytes, or a callable making the path (FIFO)
FILES = {
    "alias_bomb": _alias_bomb(),
    "duplicate_key": b"experiment: micro\nexperiment: other\n",
    "duplicate_section": b"train: {epochs: 1}\ntrain: {epochs: 2}\n",
    "binary_tag": b"experiment: !!binary bWljcm8=\n",
    "python_tag": b"experiment: !!python/name:os.system\n",
    "too_big": b"# " + b"x" * (2 << 20) + b"\n",
    "deep": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "huge_int": b"seeds: [" + b"9" * 400 + b"]\n",
}


CASES_2 = [
    # (argv, words of the one line); {file:NAME} is a file of FILES, {fifo} a FIFO, {dev} /dev/zero
    (["--strategies", "ldifs:lam=1" + "0" * 400], "has more than 18 digits"),
    (["--set", "train.lr=1" + "0" * 400], "has more than 18 digits"),
    (["--strategies", "ldifs:layers=" + "[" * 5000 + "]" * 5000], "nested more than"),
    (["--set", "train.epochs=" + "[" * 5000 + "]" * 5000], "nested more than"),
    (["--strategies", "ldifs:lam=10,lam=100"], "lam is given twice"),
    (["--strategies", "ldifs:lam=1:30"], "lam must be a number, got '1:30'"),
    (["--strategies", "ldifs:lam=!!binary aGk="], "the tag !!binary is not accepted"),
    (["--strategies", "ldifs:lam=[" + ",".join(map(str, range(1000))) + "],anchor=[previous,pretrained],"
      "layers=[[0],[1],[2],[3],[4],[5],[6],[7],[8],[9]]", "--dry-run"], "more than the limit of 10000"),
    (["--set", "orderings=[5]"], "orderings: '5' is not an ordering"),
    (["--strategies", "ewc:lam=1e9"], "lam must be <= 1e+08, got 1000000000.0"),
    (["--strategies", "lp_ft:probe_epochs=1000000000"], "probe_epochs must be an integer in 0..10000"),
    (["--strategies", "lwf:temperature=1e-300"], "temperature must be in [0.01, 100]"),
    (["--set", "orderings=[[textures,digits],null]"], "is not an ordering"),
    (["--set", "orderings=[{textures: digits}]"], "is not an ordering"),
    (["--set", "train.epochs={mnsit: 3, mnist: 1, fashion_mnist: 1}"], "train.epochs names 'mnsit', which is no dataset"),
    (["--set", "experiment=&a x"], "anchors and aliases"),
    (["--set", "train.lr={a: 1, a: 2}"], "the key 'a' is given twice"),
    (["--experiment", ""], "experiment: must be one folder name"),
    (["--out", ""], "argument --out: an empty path"),
    (["--strategies", "ft", "--seeds", *map(str, range(501))], "the plan has 501 runs"),
    (["--config", "{dev}"], "not a regular file"),
    (["--config", "{fifo}"], "not a regular file"),
    *[(["--config", f"{{file:{name}}}"], words) for name, words in [
        ("alias_bomb", "anchors and aliases"), ("duplicate_key", "the key 'experiment' is given twice"),
        ("duplicate_section", "the key 'train' is given twice"), ("binary_tag", "the tag !!binary is not accepted"),
        ("python_tag", "is not accepted"), ("too_big", "more than the limit of"), ("deep", "nested more than"),
        ("huge_int", "more than 18 digits")]],
]


@pytest.mark.parametrize("argv, words", CASES_2, ids=[f"case-{i}" for i in range(len(CASES_2))])
def test_hostile_input_is_one_line_exit_2_quick_and_leaves_nothing(argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    resolved = []
    for a in argv:
        if a.startswith("{file:"):
            p = tmp_path / f"{a[6:-1]}.yaml"
            p.write_bytes(FILES[a[6:-1]])
            a = str(p)
        elif a == "{fifo}":
            p = tmp_path / "config-fifo"
            os.mkfifo(p)
            a = str(p)
        elif a == "{dev}":
            a = "/dev/zero"
        resolved.append(a)
    if "--out" not in resolved:
        resolved = ["--out", str(out), *resolved]
    code, _, err, took = run_main(resolved, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err[-2000:]
    assert "Traceback" not in err and len(lines[0]) < 600
    assert paths_under(out) == [] and took < BOUND_S


def test_yaml_1_1_surprises_are_read_as_written():
    assert strict_yaml.loads("a: 010\nb: 1:30\nc: yes\nd: off\ne: 2024-01-02\nf: 1e-4\ng: 0x10") == \
        {"a": 10, "b": "1:30", "c": "yes", "d": "off", "e": "2024-01-02", "f": 1e-4, "g": 16}


def test_epochs_010_means_ten(capsys):
    from experiment import config as C

    cfg = C.load_preset("micro")
    C.set_dotted(cfg, "train.epochs=010")
    assert C.validate(cfg)["train"]["epochs"] == 10


def test_a_broken_pipe_ends_quietly(tmp_path, capsys, monkeypatch):
    class Closed:
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            return os.open(os.devnull, os.O_WRONLY)

    monkeypatch.setattr(sys, "stdout", Closed())
    code, _, err, took = run_main(["--dry-run", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "Traceback" not in err and "BrokenPipe" not in err and took < BOUND_S


def test_lwf_temperature_that_would_overflow_is_refused(tmp_path, capsys):
    code, _, err, _ = run_main(["--out", str(tmp_path), "--strategies", "lwf:temperature=1e-300"], capsys)
    assert code == 2 and "temperature must be in [0.01, 100], got 1e-300" in err and len(err.strip().splitlines()) == 1


def test_jobs_with_an_invalid_config_starts_no_helper(tmp_path, capsys, monkeypatch):
    import experiment.executors.processes as processes

    started = []
    monkeypatch.setattr(processes.subprocess, "Popen", lambda *a, **k: started.append(a) or 1 / 0)
    code, _, err, took = run_main(["--out", str(tmp_path / "o"), "--jobs", "12", "--set", "train.lr=-1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and started == [] and took < BOUND_S
    assert paths_under(tmp_path / "o") == []


def test_a_plan_too_large_to_start_says_its_size_and_estimated_time(tmp_path, capsys):
    code, _, err, took = run_main(["--out", str(tmp_path), "--config", "paper-single", "--seeds", *map(str, range(6)),
                             "--gpus", "4"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("error: the plan has 600 runs (10 orderings x 10 strategies x 6 seeds), an estimated ")
    assert " h of wall time on 4 GPUs (" in lines[0] and " GPU-hours at 1320 training images/s)" in lines[0]
    assert lines[0].endswith("add --yes to train them all") and paths_under(tmp_path) == [] and took < BOUND_S
    # the figure is the dry run's
    from experiment import config as C
    from experiment.dryrun import estimate_phrase

    cfg = {**C.validate({**C.load_preset("paper-single"), "seeds": list(range(6))}), "gpus": 4}
    assert estimate_phrase(cfg, C.plan(cfg)) in lines[0]
