"""Shared fixtures: a tiny open_clip ViT added as a config at test time (no special code path)."""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

from benchmark.process_env import prepare_command

ROOT = Path(__file__).resolve().parents[1]

prepare_command()  # as the command does: Avalanche's and matplotlib's files go to the cache, not HOME

warnings.filterwarnings("ignore", message="no QP solver found")

# A process's CPU kernels (ATen's capability level, MKL's and oneDNN's instruction sets) are chosen once,
# at their first use, from the environment of that moment (benchmark/numerics.py). Have them chosen now,
# from the environment the suite was started with: a test that changes those variables in-process (as
# tests/benchmark/test_numerics.py does to check describe()) would otherwise, by being first, put every later test
# of this process on a hybrid numeric path that the subprocesses they start do not run (under the
# emulated avx2 and generic paths, the kill -9 test's in-process and resumed records then differed).
# These two calls, not numerics.describe(): it caches which OpenBLAS builds are loaded, and at this point
# fewer are than in a run's process, so the records' fingerprint would not match the tests' describe().
torch.backends.cpu.get_cpu_capability()  # ATen's capability level
torch.__config__.show()  # MKL's and oneDNN's instruction sets

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


TINY_VIT = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 12, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a shared machine; restored afterwards."""
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

    out = tmp_path_factory.mktemp("small")
    assert cli.main(["--strategies", "ft", "ldifs", "--out", str(out), *SMALL, "--jobs", "1"]) == 0
    return out / "micro"


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """ft and ldifs on TINY through cli.main, finished: the experiment folder (results/micro)."""
    from experiment import cli

    out = tmp_path_factory.mktemp("tiny")
    assert cli.main(["--strategies", "ft", "ldifs", "--out", str(out), *TINY]) == 0
    return out / "micro"
