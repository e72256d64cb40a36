"""Shared fixtures: a tiny open_clip ViT added as a config at test time (no special code path), the
reduced micro plans trained once per session (for all xdist workers), the command run in-process."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest

from benchmark.process_env import prepare_command

ROOT = Path(__file__).resolve().parents[1]

# Under pytest-xdist (`make test`: -n 2) each worker is one process on one of the two cores: torch's
# in-process work takes one thread there (as the micro presets' runs do, `threads: 1`), not one per core
# in each worker. Tests about the thread count set it themselves.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def pytest_configure(config):
    """Before the test files are imported, in each process that runs tests (not in pytest-xdist's
    controller, which only hands tests out: it used to import torch and Avalanche here too, 9 s of
    `make test` before the workers started)."""
    if not hasattr(config, "workerinput") and config.getoption("numprocesses", None):
        return
    prepare_command()  # as the command does: Avalanche's and matplotlib's files go to the cache, not HOME
    warnings.filterwarnings("ignore", message="no QP solver found")
    import torch

    # A process's CPU kernels (ATen's capability level, MKL's and oneDNN's instruction sets) are chosen
    # once, at their first use, from the environment of that moment (benchmark/numerics.py). Have them
    # chosen now, from the environment the suite was started with: a test that changes those variables
    # in-process (as tests/benchmark/test_numerics.py does to check describe()) would otherwise, by being
    # first, put every later test of this process on a hybrid numeric path that the subprocesses they start
    # do not run (under the emulated avx2 and generic paths, the kill -9 test's in-process and resumed
    # records then differed). These two calls, not numerics.describe(): it caches which OpenBLAS builds
    # are loaded, and at this point fewer are than in a run's process, so the records' fingerprint would
    # not match the tests' describe().
    torch.backends.cpu.get_cpu_capability()  # ATen's capability level
    torch.__config__.show()  # MKL's and oneDNN's instruction sets
    if XDIST_WORKER:
        torch.set_num_threads(1)


def _flock(path: Path, mode: int):
    f = open(path, "a")
    fcntl.flock(f, mode)
    return f


# The files whose tests cost the most (a module fixture or a command of tens of seconds each on 2 cores,
# `pytest --durations`), costliest first. Under `make test` they are handed out first
# (`--no-loadscope-reorder` keeps this order), so that the two workers end together instead of one
# running a long file alone at the end; the cheap tests fill the gaps. Order only: any file may be
# missing or added here without changing what is tested.
COSTLY_FIRST = ("test_ray_executor.py", "test_rehearsal.py", "test_layers.py", "test_cli.py", "test_end_to_end.py",
                "test_collect.py", "test_interruptions.py", "test_process_side_effects.py", "test_mtil.py",
                "test_paper_tables.py", "test_damaged_records.py", "test_record_text.py", "test_rescore.py")


# The xdist group of the tests that start commands from the `forked` fixture's interpreter: on one worker,
# so that one such interpreter is started per session (its imports are 13 CPU-s) instead of one per worker.
# A file whose tests share a module fixture and some use `forked` puts all its tests in this group.
FORKED_GROUP = "forked"


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which names each test's group in its id
def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(COSTLY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    for item in items:
        if "forked" not in item.fixturenames:
            continue
        group = item.get_closest_marker("xdist_group")
        if group is None:
            item.add_marker(pytest.mark.xdist_group(FORKED_GROUP))
        elif group.args[:1] != (FORKED_GROUP,):
            raise pytest.UsageError(f"{item.nodeid} uses `forked` in xdist group {group.args[0]!r}: its worker would "
                                    f"start a second forked-from interpreter; put the file in FORKED_GROUP (conftest.py)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Tests marked `strategy_files` put files into strategies/ for a while, and every command scans that
    folder: under xdist such a test runs alone (an exclusive lock), every other test with the others (a
    shared one). The turnstile, taken first by both, lets a waiting writer in before later readers."""
    if not XDIST_WORKER:
        return (yield)
    base = item.config._tmp_path_factory.getbasetemp().parent  # the folder the session's workers share
    mode = fcntl.LOCK_EX if item.get_closest_marker("strategy_files") else fcntl.LOCK_SH
    turnstile = _flock(base / "turnstile", fcntl.LOCK_EX)
    main = _flock(base / "strategies", mode)
    turnstile.close()  # closing releases the lock
    try:
        return (yield)
    finally:
        main.close()


def _once_for_all_workers(tmp_path_factory, name: str, make) -> Path:
    """A session fixture's folder, made by `make(folder)` once per test session: under xdist by the first
    worker that needs it, while the others wait for it (a lock in the folder that the workers share)."""
    if not XDIST_WORKER:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent
    folder, made = shared / name, shared / f"{name}.made"
    with contextlib.closing(_flock(shared / f"{name}.lock", fcntl.LOCK_EX)):
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            made.write_text("")
    return folder


# Reduced micro plans that several test files train; each file's fixture of finished runs is one of
# the session fixtures below, trained once per session and only read (tests that change runs copy them).
# SMALL: three datasets, one of them held out; TINY: two datasets, --jobs 1.
SMALL = ["--seeds", "0", "--orderings", "textures,digits", "--suite", "textures", "digits", "mnist",
         "--set", "data.max_train=60", "--set", "data.max_test=40", "--epochs", "1", "--set", "train.batch_size=20"]
TINY = ["--jobs", "1", "--orderings", "textures,digits", "--suite", "textures", "digits", "--set", "data.max_train=40",
        "--set", "data.max_test=20", "--epochs", "1", "--set", "train.batch_size=20"]



class MainResult(NamedTuple):
    code: int
    out: str
    err: str
    seconds: float


def run_main(argv, capsys) -> MainResult:
    """The command in this process (cli.main), as a user meets it: its exit status (argparse's own errors
    exit from inside parse_args), what it printed on stdout and stderr, and how long it took."""
    from experiment import cli

    t0 = time.perf_counter()
    try:
        code = cli.main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return MainResult(code, out.out, out.err, time.perf_counter() - t0)


def paths_under(folder: Path) -> list[Path]:
    """Every path under `folder` (files and folders), sorted; [] where it does not exist."""
    return sorted(folder.rglob("*")) if folder.exists() else []


def files_under(*folders: Path) -> list[Path]:
    """The files under the folders (temporary files, markers, records): a refused command leaves none."""
    return [p for f in folders for p in paths_under(f) if p.is_file()]


def stray_files(exp: Path) -> list[Path]:
    """What an interrupted or finished process must not leave in an experiment: temporary files, run locks."""
    from benchmark.files import TMP_SUFFIX
    from evaluation.storage.records import LOCK

    return [p for p in exp.rglob("*") if p.name.endswith(TMP_SUFFIX) or p.name == LOCK]


TINY_VIT = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 12, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine; restored afterwards."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    """A 12-block ViT with random weights, registered with open_clip like any architecture config."""
    return random_model(tmp_path_factory, "test-tiny-vit", TINY_VIT)


def random_model(tmp_path_factory, name: str, cfg: dict):
    """Registers `cfg` with open_clip as architecture `name` and loads it with random weights (seed 0)."""
    import torch

    from benchmark.models import load_foundation_model, register_model_configs

    folder = tmp_path_factory.mktemp("model_configs")
    (folder / f"{name}.json").write_text(json.dumps(cfg))
    register_model_configs(folder)
    torch.manual_seed(0)
    return load_foundation_model(name, pretrained=None)


@pytest.fixture(scope="session")
def micro_model():
    from benchmark.models import load_foundation_model

    return load_foundation_model("micro-effnet-lite0-minilm", "packaged")


@pytest.fixture(scope="session")
def forked():
    """Starts run_benchmark.py commands as processes forked from one pre-imported interpreter
    (tests/forked.py): separate processes, without paying the imports of a fresh interpreter each time.
    The interpreter imports in the background from the fixture's first use until its first command."""
    from forked import Zygote

    zygote = Zygote()
    yield zygote
    zygote.close()


@pytest.fixture(scope="session")
def small_experiment(tmp_path_factory):
    """ft and ldifs on SMALL through cli.main in this process (--jobs 1: no helper to wait for),
    finished: the experiment folder (results/micro)."""
    from experiment import cli

    def make(out):
        assert cli.main(["--strategies", "ft", "ldifs", "--out", str(out), *SMALL, "--jobs", "1"]) == 0
    return _once_for_all_workers(tmp_path_factory, "small", make) / "micro"


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """ft and ldifs on TINY through cli.main, finished: the experiment folder (results/micro), its tables
    and report collected without plots (a test that collects a copy with plots draws them)."""
    from experiment import cli

    def make(out):
        assert cli.main(["--strategies", "ft", "ldifs", "--out", str(out), *TINY, "--no-plots"]) == 0
    return _once_for_all_workers(tmp_path_factory, "tiny", make) / "micro"


@pytest.fixture(scope="session")
def sample_collected(tmp_path_factory):
    """The committed sample experiment (tests/data/sample_experiment) collected with plots, once per
    session (for all xdist workers): the folder, named as when the golden files were made; read only."""
    from evaluation.reporting.collect import collect

    def make(folder):
        shutil.copytree(ROOT / "tests" / "data" / "sample_experiment", folder / "sample_experiment")
        collect(folder / "sample_experiment", plots=True)
    return _once_for_all_workers(tmp_path_factory, "sample_collected", make) / "sample_experiment"


# The command that made tests/data/portable_run: a run of LDIFS on the micro model, small enough for a
# test, on the portable numeric path (benchmark/numerics.py; docs/numerics.md says what it makes identical
# and where that was checked). tests/project/test_layers.py compares its records bit for bit.
PORTABLE_ARGS = ["--numerics", "portable", "--strategies", "ldifs:lam=30", "--seeds", "0", "--orderings", "textures,digits",
                 "--suite", "textures", "digits", "--set", "data.max_train=60", "--set", "data.max_test=40",
                 "--epochs", "1", "--set", "train.batch_size=20", "--experiment", "portable-sample", "-q", "--jobs", "1",
                 "--no-plots"]  # the test compares records: no plots to draw
# The command as run_benchmark.py runs it (cli.entry), with two lines on stdout that
# tests/benchmark/test_numerics.py reads: `start PID ATEN_CPU_CAPABILITY` as each execution of the
# interpreter begins (the re-execution keeps the pid), and `end PID CAPABILITY MKL_CBWR OPENBLAS_CORETYPE
# NUMERICS` where the checked command begins (torch imported).
_PORTABLE_REPORTING = (
    "import os, sys\nfrom experiment import cli\n"
    "print('start', os.getpid(), os.environ.get('ATEN_CPU_CAPABILITY'), flush=True)\n"
    "checked_main = cli._checked_main\n"
    "def checked(args, executor):\n"
    "    import torch\n"
    "    print('end', os.getpid(), torch.backends.cpu.get_cpu_capability(), os.environ.get('MKL_CBWR'),\n"
    "          os.environ.get('OPENBLAS_CORETYPE'), args.numerics, flush=True)\n"
    "    return checked_main(args, executor)\n"
    "cli._checked_main = checked\n"
    "cli.entry()\n")


class PortableCommand(NamedTuple):
    out: Path  # the --out folder
    code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def portable_command(tmp_path_factory) -> PortableCommand:
    """PORTABLE_ARGS run once per session as a command (a fresh interpreter, which re-executes itself with the
    portable variables), for all xdist workers: the records of test_layers' bit-for-bit test and the lines
    of test_numerics' re-execution test come from this one process. Started without any numeric-path
    variable and with OPENBLAS_CORETYPE=Haswell, a core type of the machine's that the path must override."""
    import subprocess

    from benchmark import numerics

    env = {k: v for k, v in os.environ.items() if k not in numerics.VARIABLES and k != numerics.REEXEC_MARKER}
    env["OPENBLAS_CORETYPE"] = "Haswell"

    def make(folder):
        out = subprocess.run([sys.executable, "-c", _PORTABLE_REPORTING, *PORTABLE_ARGS, "--out", str(folder / "out")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        (folder / "result.json").write_text(json.dumps([out.returncode, out.stdout, out.stderr]))
    folder = _once_for_all_workers(tmp_path_factory, "portable_command", make)
    code, stdout, stderr = json.loads((folder / "result.json").read_text())
    return PortableCommand(folder / "out", code, stdout, stderr)
