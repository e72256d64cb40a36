"""Reliability, second campaign: hostile files and settings. Each case asserts the exit
code, one line, no traceback, nothing left behind, and that it ends within a time bound (several
of these hung before: alias bombs, FIFOs, huge files, huge grids)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from experiment import cli
from benchmark import strict_yaml
from evaluation.storage.records import check_run

BOUND_S = 20  # every case here answers within this (in-process: no interpreter start-up)


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


def _main(argv, capsys):
    t0 = time.perf_counter()
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err, time.perf_counter() - t0


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


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
    code, err, took = _main(resolved, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err[-2000:]
    assert "Traceback" not in err and len(lines[0]) < 600
    assert _files(out) == [] and took < BOUND_S


def test_yaml_1_1_surprises_are_read_as_written():
    assert strict_yaml.loads("a: 010\nb: 1:30\nc: yes\nd: off\ne: 2024-01-02\nf: 1e-4\ng: 0x10") == \
        {"a": 10, "b": "1:30", "c": "yes", "d": "off", "e": "2024-01-02", "f": 1e-4, "g": 16}


def test_epochs_010_means_ten(capsys):
    from experiment import config as C

    cfg = C.load_preset("micro")
    C.set_dotted(cfg, "train.epochs=010")
    assert C.validate(cfg)["train"]["epochs"] == 10


@pytest.mark.parametrize("how", ["duplicate_keys", "deep", "fifo"])
def test_hostile_records_are_named_not_followed(tmp_path, how):
    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    (run / "done").write_text("")
    rec = run / "records.json"
    if how == "duplicate_keys":
        rec.write_text('{"run_id": "abc", "run_id": "def"}')
    elif how == "deep":
        rec.write_text("[" * 100_000 + "]" * 100_000)
    else:
        os.mkfifo(rec)
    t0 = time.perf_counter()
    why = check_run(run)
    assert why is not None and "records.json cannot be read" in why and "\n" not in why
    assert time.perf_counter() - t0 < 5


def test_a_broken_pipe_ends_quietly(tmp_path, capsys, monkeypatch):
    class Closed:
        def write(self, s):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            return os.open(os.devnull, os.O_WRONLY)

    monkeypatch.setattr(sys, "stdout", Closed())
    code, err, took = _main(["--dry-run", "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "Traceback" not in err and "BrokenPipe" not in err and took < BOUND_S


# ----------------------------------------------------------------------------------------------
# A run that goes NaN inside a larger plan: named in one line, recorded as failed, the rest goes on.

TINY = ["--jobs", "1", "--orderings", "textures,digits", "--suite", "textures", "digits", "--set", "data.max_train=40",
        "--set", "data.max_test=20", "--epochs", "1", "--set", "train.batch_size=20"]


def test_lwf_temperature_that_would_overflow_is_refused(tmp_path, capsys):
    code, err, _ = _main(["--out", str(tmp_path), "--strategies", "lwf:temperature=1e-300"], capsys)
    assert code == 2 and "temperature must be in [0.01, 100], got 1e-300" in err and len(err.strip().splitlines()) == 1


def test_a_nan_run_is_named_recorded_failed_and_the_plan_goes_on(tmp_path, capsys, monkeypatch):
    import torch

    import strategies.lwf as lwf

    monkeypatch.setattr(lwf, "lwf_distillation", lambda s, t, temp: torch.tensor(float("nan")))
    t0 = time.perf_counter()
    code, err, _ = _main(["--out", str(tmp_path), *TINY, "--strategies", "ft", "lwf"], capsys)
    assert code == 1 and "Traceback" not in err, err[-3000:]
    bad = [line for line in err.splitlines() if "the training loss became nan" in line]
    assert len(bad) == 1 and bad[0].startswith("error: run ") and "lwf textures>digits seed " in bad[0]
    assert "task 2, epoch 1, iteration 1" in bad[0] and "likely cause" in bad[0]
    runs = {json.loads((p / "config.json").read_text())["strategy"]["name"]: p for p in (tmp_path / "micro" / "runs").iterdir()}
    assert check_run(runs["ft"]) is None and check_run(runs["lwf"]) is not None
    assert (runs["lwf"] / "failed").read_text().startswith(f"run {runs['lwf'].name} ")
    import pandas as pd

    assert list(pd.read_csv(tmp_path / "micro" / "leaderboard.csv")["strategy"]) == ["ft"]
    assert time.perf_counter() - t0 < 300
    # tamper evidence on the finished run: a hand-edited accuracy no longer matches its done marker
    rec = json.loads((runs["ft"] / "records.json").read_text())
    rec["R"][1][0] = 0.123
    (runs["ft"] / "records.json").write_text(json.dumps(rec))
    assert "no longer matches the checksum in its done marker" in check_run(runs["ft"])


# ----------------------------------------------------------------------------------------------
# --jobs: no helper for an invalid configuration; helpers die with their parent.


def test_jobs_with_an_invalid_config_starts_no_helper(tmp_path, capsys, monkeypatch):
    import experiment.executors.processes as processes

    started = []
    monkeypatch.setattr(processes.subprocess, "Popen", lambda *a, **k: started.append(a) or 1 / 0)
    code, err, took = _main(["--out", str(tmp_path / "o"), "--jobs", "12", "--set", "train.lr=-1"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and started == [] and took < BOUND_S
    assert _files(tmp_path / "o") == []


def test_a_helper_dies_with_its_parent(tmp_path):
    import signal
    import subprocess

    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        "from experiment.executors.processes import _die_with_parent\n"
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=_die_with_parent)\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        try:  # a zombie of init's counts as gone
            if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
                return
        except OSError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    raise AssertionError("the helper outlived its parent")


# ----------------------------------------------------------------------------------------------
# Nothing written outside --out and the cache: Avalanche's ~/.avalanche, matplotlib's ~/.cache.


def test_the_commands_imports_of_avalanche_and_matplotlib_write_nothing_in_home(tmp_path):
    import subprocess

    home, cache = tmp_path / "home", tmp_path / "cache"
    env = {**os.environ, "HOME": str(home), "CFBENCH_CACHE": str(cache)}
    env.pop("MPLCONFIGDIR", None)
    env.pop("XDG_CACHE_HOME", None)
    code = ("import os; from benchmark.process_env import prepare_command; prepare_command()\n"
            "import benchmark.training, matplotlib.pyplot; print(os.environ['HOME'])")
    p = subprocess.run([sys.executable, "-c", code], env=env,
                       cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert not home.exists() and p.stdout.strip() == str(home)  # HOME itself is given back


def test_importing_the_packages_changes_nothing_in_the_process():
    """A library user's process keeps its HOME, its matplotlib folder, its Hugging Face settings and its
    import machinery: no HOME swap, no MPLCONFIGDIR, no HF_HUB_OFFLINE, no import hook of ours (the command
    does those itself, and the models set Hugging Face's offline mode only while they build the packaged
    text tower: benchmark/process_env.py)."""
    import subprocess

    code = ("import os, sys; home = os.environ.get('HOME')\n"
            "import benchmark, benchmark.data, benchmark.models, strategies, evaluation.reporting.collect, "
            "experiment.config\n"
            "ours = ('benchmark', 'strategies', 'evaluation', 'experiment')\n"
            "print(os.environ.get('HOME') == home and 'MPLCONFIGDIR' not in os.environ,\n"
            "      not [h for h in sys.meta_path if type(h).__module__.split('.')[0] in ours],\n"
            "      'HF_HUB_OFFLINE' not in os.environ and 'TRANSFORMERS_OFFLINE' not in os.environ)")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["True", "True", "True"], p.stdout


def test_hugging_face_is_offline_only_while_the_packaged_text_tower_is_built(monkeypatch):
    """hub_offline sets the variables and huggingface_hub's flag (read once, at its import) for the
    duration and gives both back; a user's own setting stands. The packaged model loads under it."""
    import huggingface_hub.constants as hub

    from benchmark.models import load_foundation_model
    from benchmark.process_env import hub_offline

    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and hub.HF_HUB_OFFLINE is True
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
    assert hub.HF_HUB_OFFLINE is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the user's choice is theirs
    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "0" and hub.HF_HUB_OFFLINE is False
    monkeypatch.delenv("HF_HUB_OFFLINE")
    seen = []
    import open_clip

    real = open_clip.tokenizer.HFTokenizer
    monkeypatch.setattr(open_clip.tokenizer, "HFTokenizer",
                        lambda *a, **k: seen.append((os.environ.get("HF_HUB_OFFLINE"), hub.HF_HUB_OFFLINE)) or real(*a, **k))
    load_foundation_model("micro-effnet-lite0-minilm", "packaged")
    assert seen and seen[0] == ("1", True)
    assert "HF_HUB_OFFLINE" not in os.environ and hub.HF_HUB_OFFLINE is False


# ----------------------------------------------------------------------------------------------
# Tamper evidence: records vouched for by their done marker; cache files bound to their key.


def test_a_hand_edited_record_no_longer_matches_its_done_marker(tmp_path):
    from evaluation.storage.records import mark_done

    run = tmp_path / "runs" / "abc"
    run.mkdir(parents=True)
    (run / "records.json").write_text('{"R": [[0.5]]}')
    mark_done(run)
    assert (run / "done").read_text().startswith("sha256:")
    (run / "done").unlink()
    (run / "done").mkdir()  # a done that is a folder: named, no IsADirectoryError
    assert "marker is not a plain file" in check_run(run)


def test_a_cache_file_moved_to_another_key_is_a_miss(tmp_path):
    import shutil

    import torch

    from benchmark import cache_files as cache

    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    cache.save(a, {"f": torch.ones(2)})
    cache.save(b, {"f": torch.zeros(2)})
    shutil.copy(a, b)  # same shape, valid checksum of its own: before, b silently held a's features
    assert cache.load(a) is not None and cache.load(b) is None


def test_a_run_folder_name_cannot_forge_a_second_warning_line(tmp_path, capsys):
    from evaluation.storage.records import finished_runs

    run = tmp_path / "runs" / "x\nwarning: forged"
    run.mkdir(parents=True)
    (run / "done").write_text("")
    finished_runs(tmp_path)
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------------
# Symlinks: nothing is written, locked or deleted through a link out of --out.


def _outside(tmp_path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "lock").write_text("precious\n")
    (out / "records.json").write_text("{damaged")
    (out / "done").write_text("")
    return out


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_a_run_folder_that_is_a_link_is_named_and_left_alone(tmp_path, capsys):
    from evaluation.storage.records import clean_stale, finished_runs
    from experiment.executors.base import Job
    from experiment.executors.local import train_runs

    outside = _outside(tmp_path)
    before = _snapshot(outside)
    exp = tmp_path / "exp"
    (exp / "runs").mkdir(parents=True)
    (exp / "runs" / "abc123").symlink_to(outside)
    assert clean_stale(exp) == []
    assert finished_runs(exp) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs/abc123 is a symbolic link" in err[0]
    run = {"run_id": "abc123", "strategy": {"name": "ft"}, "ordering": ["a"], "seed": 0}
    assert train_runs([run], Job(exp_dir=exp, resources=None, log=sys.stderr)) == 1  # failed, not trained
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: run abc123: runs/abc123 is a symbolic link")
    assert _snapshot(outside) == before


def test_a_lock_that_is_a_link_is_never_written_or_deleted(tmp_path):
    from evaluation.storage.records import LinkError, RunLock, clean_stale

    outside = _outside(tmp_path)
    run = tmp_path / "exp" / "runs" / "abc123"
    run.mkdir(parents=True)
    (run / "lock").symlink_to(outside / "lock")
    clean_stale(tmp_path / "exp")
    with pytest.raises(LinkError):
        RunLock(run).acquire()
    assert (outside / "lock").read_text() == "precious\n" and (run / "lock").is_symlink()


# ----------------------------------------------------------------------------------------------
# Full disks and files where folders belong: one line naming the path, exit 2, no partial results.


def test_a_file_where_the_experiment_folder_belongs_is_one_line(tmp_path, capsys):
    (tmp_path / "micro").write_text("not a folder")
    code, err, took = _main(["--out", str(tmp_path), "--strategies", "ft"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"{tmp_path / 'micro'}: cannot write results there" in lines[0]
    assert "Traceback" not in err and took < BOUND_S and sorted(p.name for p in tmp_path.iterdir()) == ["micro"]


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_no_partial_results(tmp_path, capsys, monkeypatch):
    import errno

    import benchmark.files as files

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    code, err, _ = _main(["-q", "--out", str(tmp_path), *TINY, "--strategies", "ft"], capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and ": No space left on device: the file system is full" in errors[0], err
    left = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp") or p.name == "done"]
    assert left == []


# ----------------------------------------------------------------------------------------------
# The leaderboard's identity is the whole run config: two learning rates are never two seeds.


def _rec(lr: float, seed: int) -> dict:
    cfg = {"strategy": {"name": "ft"}, "ordering": ["a", "b"], "seed": seed, "suite": ["a", "b"],
           "train": {"lr": lr, "epochs": 1}, "model": {"name": "m"}}
    return {"config": cfg, "ordering": ["a", "b"], "suite": ["a", "b"], "R": [[0.1, 0.1], [0.5, 0.1], [0.4, 0.6]],
            "LP": [[0.5, 0.5], [0.6, 0.5], [0.55, 0.6]], "ZS": None, "complete": True}


def test_runs_differing_in_a_setting_outside_the_strategy_are_not_pooled_as_seeds():
    from evaluation.reporting.leaderboard import leaderboard_from, summary

    runs = [("r1", _rec(1e-3, 0)), ("r2", _rec(1e-2, 0)), ("r3", _rec(1e-2, 1))]
    df = leaderboard_from(runs)
    assert sorted(df["settings"]) == ["train.lr=0.001", "train.lr=0.01", "train.lr=0.01"]
    s = summary(df)
    assert sorted(zip(s["settings"], s["n"])) == [("train.lr=0.001", 1), ("train.lr=0.01", 2)]
    assert s["label"].is_unique
    one = leaderboard_from(runs[1:])  # all agree: no setting shown, one row of two seeds
    assert list(one["settings"]) == ["", ""] and list(summary(one)["n"]) == [2]


# ----------------------------------------------------------------------------------------------
# The command as a user meets it: Ctrl-C twice, another user, a size limit on files. Subprocesses.

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534  # the unprivileged uid the non-root cases run as when the tests run as root


def _start(argv, env=None, preexec=None, cwd=ROOT, unset=(), python=sys.executable):
    import signal
    import subprocess

    def child():
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as in a terminal: a background job of bash ignores it
        if preexec:
            preexec()

    return subprocess.Popen([python, str(ROOT / "run_benchmark.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, preexec_fn=child, start_new_session=True,
                            env={k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset})


def _no_traces(*folders: Path) -> list[Path]:
    """Files under the folders (temporary files, markers, records): none may be left by a refused command."""
    return [p for f in folders for p in _files(f) if p.is_file()]


def test_two_ctrl_c_during_start_up_exit_130_with_one_line(tmp_path):
    """Ctrl-C twice (a terminal sends SIGINT to the whole process group), the second while the first is
    being handled: exit status 130 (not killed by the signal), the one line, nothing written. (Two sent
    back to back are often merged into one by the time Python runs its handler: 0.3 s apart they are
    two; this case failed with status -2 before the fix, 3 times in 3.)"""
    import signal

    out, cache = tmp_path / "out", tmp_path / "cache"
    p = _start(["--out", str(out), "--strategies", "ft", *TINY], {"CFBENCH_CACHE": str(cache)})
    time.sleep(1.0)  # inside the imports or the config check: start-up takes seconds
    t0 = time.perf_counter()
    os.killpg(p.pid, signal.SIGINT)
    time.sleep(0.3)
    try:
        os.killpg(p.pid, signal.SIGINT)
    except ProcessLookupError:  # already gone after the first: the second Ctrl-C came too late to matter
        pass
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, err[-2000:])
    assert err.strip().splitlines() == ["interrupted during start-up: nothing was written"], err[-2000:]
    # nothing under --out; in the cache, at most whole entries (a model load the Ctrl-C came after)
    assert _no_traces(out) == [] and not [q for q in _no_traces(cache) if q.name.endswith(".tmp")]
    assert time.perf_counter() - t0 < 60  # generous: a no-hang bound on a loaded 2-core machine


def test_a_file_where_the_tensorboard_folder_belongs_is_one_line_before_training(tmp_path, capsys):
    (tmp_path / "micro").mkdir()
    (tmp_path / "micro" / "tensorboard").write_text("not a folder")
    code, err, took = _main(["--out", str(tmp_path), "--tensorboard", "--strategies", "ft", *TINY], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0] == (f"error: {tmp_path / 'micro' / 'tensorboard'}: cannot write results there (not a folder); "
                        "make it writable (or a folder), or choose another --out")
    assert _files(tmp_path) == [tmp_path / "micro", tmp_path / "micro" / "tensorboard"] and took < BOUND_S


@pytest.mark.parametrize("where", ["CFBENCH_CACHE", "data.cache_dir"])
def test_a_cache_folder_that_cannot_be_written_is_one_line_before_training(tmp_path, capsys, monkeypatch, where):
    """Checked with --out's probe before any model or data is loaded (a file where the folder belongs:
    the case root meets too; a folder without write permission is the non-root test's below)."""
    bad = tmp_path / "a-file"
    bad.write_text("")
    argv = ["--out", str(tmp_path / "out"), "--strategies", "ft", *TINY]
    if where == "CFBENCH_CACHE":
        monkeypatch.setenv("CFBENCH_CACHE", str(bad))
        words = f"error: the cache folder {bad} (CFBENCH_CACHE): cannot write the cache there ("
        fix = "; set CFBENCH_CACHE to a writable folder"
    else:
        argv += ["--set", f"data.cache_dir={bad}"]
        words = f"error: data.cache_dir {bad}: cannot write the cache there ("
        fix = "; set data.cache_dir to a writable folder, or leave it unset for CFBENCH_CACHE"
    code, err, took = _main(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith(words) and lines[0].endswith(fix), lines[0]
    assert _no_traces(tmp_path / "out") == [] and took < BOUND_S


def _demote(uid: int):
    def preexec():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    return preexec


@pytest.fixture
def shared_tmp():
    """A folder that the unprivileged user can reach (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="cfbench-nonroot-"))
    base.chmod(0o755)
    yield base
    for p in [base, *base.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(base)


def _as_user(shared_tmp: Path):
    """(preexec, chown to the user, environment, interpreter): root runs the command as uid 65534, any
    other user as itself. Where uid 65534 cannot reach this interpreter (a pyenv build under root's 0700
    home, as on this project's machine), the system's interpreter of the same version runs it with this
    one's site-packages on PYTHONPATH: the same packages, files and code; only the interpreter binary
    differs. Skips, naming why, where no interpreter can read them as that user."""
    import shutil
    import site
    import subprocess

    root = os.geteuid() == 0
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    env = {"PYTHONPATH": os.pathsep.join(site.getsitepackages())}
    probe = ("import importlib.util as u\n"
             "for m in ('json', 'torch', 'avalanche', 'open_clip', 'sklearn', 'experiment.guards'):\n"
             "    s = u.find_spec(m); s.loader.get_data(s.origin)\n")
    why = "no interpreter"
    for python in dict.fromkeys([sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")]):
        if not python:
            continue
        try:
            p = subprocess.run([python, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                               env={**os.environ, **env}, preexec_fn=_demote(NOBODY) if root else None)
        except (OSError, subprocess.SubprocessError) as e:  # not executable for that user; no setuid here
            why = f"{python}: {getattr(e, 'strerror', None) or e}"
            continue
        if p.returncode == 0:
            break
        why = f"{python}: {(p.stderr.strip().splitlines() or ['?'])[-1]}"
    else:
        pytest.skip(f"uid {NOBODY if root else os.getuid()} cannot run {version} with this project's packages ({why})")
    home = shared_tmp / "home"
    home.mkdir(mode=0o555)  # a home the command cannot write: nothing may go there

    def own(path: Path) -> None:
        if root:
            os.chown(path, NOBODY, NOBODY)
    return (_demote(NOBODY) if root else None), own, {**env, "HOME": str(home)}, python


@pytest.mark.parametrize("what", ["read-only --out", "read-only CFBENCH_CACHE"])
def test_a_non_root_user_gets_one_line_for_a_folder_it_cannot_write(shared_tmp, what):
    """As root the tests run the command as uid 65534 (root writes into a 0555 folder regardless), with a
    home it cannot write; --out or the cache is a 0555 folder it does not own. One line, exit 2, before
    any model or data is loaded, and nothing written anywhere."""
    import tempfile

    preexec, own, env, python = _as_user(shared_tmp)
    out, cache = shared_tmp / "out", shared_tmp / "cache"
    for folder in (out, cache):
        folder.mkdir()
        own(folder)
    locked = out if what == "read-only --out" else cache
    locked.chmod(0o555)
    before = sorted(Path(tempfile.gettempdir()).glob("cfbench-matplotlib-*"))
    t0 = time.perf_counter()
    p = _start(["--out", str(out), "--strategies", "ft", *TINY], {**env, "CFBENCH_CACHE": str(cache)}, preexec,
               cwd=shared_tmp, unset=("XDG_CACHE_HOME", "MPLCONFIGDIR"), python=python)
    _, err = p.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    if locked is out:
        assert lines[0] == f"error: --out {out}: cannot write results there (Permission denied); choose a writable folder"
    else:
        assert lines[0] == (f"error: the cache folder {cache} (CFBENCH_CACHE): cannot write the cache there "
                            "(Permission denied); set CFBENCH_CACHE to a writable folder")
    # the cache may hold matplotlib's font cache (imported with Avalanche, before the checks): a cache
    # file like any other, written where the cache is writable; nothing else is written anywhere
    assert _no_traces(out, shared_tmp / "home") == [] and time.perf_counter() - t0 < 120
    assert all(p.parent == cache / "matplotlib" for p in _no_traces(cache)) if locked is out else _no_traces(cache) == []
    assert sorted(Path(tempfile.gettempdir()).glob("cfbench-matplotlib-*")) == before  # its stand-in, removed at exit


def test_a_file_size_limit_is_one_line_exit_2_and_leaves_no_partial_file(tmp_path):
    """A full disk, as far as a test can make one without privileges: RLIMIT_FSIZE of 512 bytes (SIGXFSZ
    ignored, so that writes beyond it fail with EFBIG as they fail with ENOSPC on a full disk; ENOSPC
    itself is the in-process test above). The first file larger than that (a run's config.json, or a
    cache file where the cache is cold) fails: one line naming it, exit 2, no temporary file, no
    records, no done marker. The warm default cache keeps matplotlib's font cache out of it (matplotlib
    writes that file itself, not atomically: see docs/reliability.md)."""
    import resource
    import signal

    import matplotlib.font_manager  # noqa: F401  (its font cache exists before the limit applies)

    from benchmark.cache_files import cache_dir

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))

    out = tmp_path / "out"
    t0 = time.perf_counter()
    p = _start(["-q", "--out", str(out), "--strategies", "ft", *TINY], preexec=limit)
    _, err = p.communicate(timeout=300)
    lines = err.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in err, (p.returncode, err[-2000:])
    assert lines[0].startswith(("error: " + str(out), "error: " + str(cache_dir()))), lines[0]
    assert ": File too large: the file is larger than this process may write (ulimit -f)" in lines[0]
    left = [q for q in _no_traces(out) if q.name.endswith(".tmp") or q.name in ("done", "records.json")]
    stray = [q for q in cache_dir().rglob(f".*.{p.pid}.*.tmp")]
    assert left == [] and stray == [] and time.perf_counter() - t0 < 120
    for q in _no_traces(out):  # what was written is whole
        json.loads(q.read_text())


def test_a_plan_too_large_to_start_says_its_size_and_estimated_time(tmp_path, capsys):
    code, err, took = _main(["--out", str(tmp_path), "--config", "paper-single", "--seeds", *map(str, range(6)),
                             "--gpus", "4"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("error: the plan has 600 runs (10 orderings x 10 strategies x 6 seeds), an estimated ")
    assert " h of wall time on 4 GPUs (" in lines[0] and " GPU-hours at 1320 training images/s)" in lines[0]
    assert lines[0].endswith("add --yes to train them all") and _files(tmp_path) == [] and took < BOUND_S
    # the figure is the dry run's
    from experiment import config as C
    from experiment.dryrun import estimate_phrase

    cfg = {**C.validate({**C.load_preset("paper-single"), "seeds": list(range(6))}), "gpus": 4}
    assert estimate_phrase(cfg, C.plan(cfg)) in lines[0]


def test_a_decoded_split_whose_labels_were_edited_is_rebuilt_not_used(tmp_path):
    """The sidecar .json of a cached split holds its labels under its own checksum: labels edited by hand
    (and the checksum left as it was) make a miss, rebuilt from the source, never the edited labels."""
    import numpy as np

    from benchmark.data import caches as data_cache
    from benchmark.data.sources import ArraySource

    rng = np.random.default_rng(0)
    src = ArraySource(rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    key = {"dataset": "hand-made", "split": "test"}
    data_cache.cached_split(src, key, 16, tmp_path)
    (meta,) = tmp_path.glob("*.json")
    sidecar = json.loads(meta.read_text())
    sidecar["targets"] = [2, 2, 2, 2, 2, 2]
    meta.write_text(json.dumps(sidecar))
    data_cache._verified.clear()  # as a new process would
    before = dict(data_cache.stats)
    again = data_cache.cached_split(src, key, 16, tmp_path)
    assert data_cache.stats["split_builds"] - before["split_builds"] == 1
    assert data_cache.stats["split_hits"] == before["split_hits"]
    assert list(again.targets) == [0, 1, 2, 0, 1, 2] and json.loads(meta.read_text())["targets"] == [0, 1, 2, 0, 1, 2]
    assert sorted(q.name for q in tmp_path.iterdir()) == sorted([meta.name, meta.with_suffix(".npy").name])


def test_a_full_disk_while_a_split_is_decoded_is_an_error_naming_it_not_a_crash(tmp_path, monkeypatch):
    """The decoded-split cache is a memory-mapped file, sparse until written: on a full disk a page
    written into the map killed the process with SIGBUS. Its blocks are now reserved first, so a full
    disk is an OSError there (one line, from file_problem), and no partial file is left."""
    import errno

    import numpy as np

    from benchmark.data import caches as data_cache
    from benchmark.data.sources import ArraySource
    from experiment.guards import file_problem

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data_cache.os, "posix_fallocate", full)
    src = ArraySource(np.zeros((4, 20, 20, 3), dtype=np.uint8), np.arange(4), ["a", "b", "c", "d"])
    with pytest.raises(OSError) as e:
        data_cache.cached_split(src, {"dataset": "hand-made", "split": "train"}, 16, tmp_path)
    line = file_problem(e.value)
    assert line.startswith(str(tmp_path)) and line.endswith(".npy: No space left on device: the file system is full; "
                                                            "free space, or choose another --out (or CFBENCH_CACHE for the cache)")
    assert list(tmp_path.iterdir()) == []
