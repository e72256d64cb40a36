"""What importing the packages and starting the command do to the process and the machine: nothing
changed in the importing process, nothing written in HOME by Avalanche's and matplotlib's imports."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


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
    """A library user's process keeps its HOME, its matplotlib folder and its import machinery: no HOME
    swap, no MPLCONFIGDIR, no import hook of ours (the command does those itself: benchmark/process_env.py).
    (Importing the models sets HF_HUB_OFFLINE unless set: the packaged text tower never asks a hub.)"""
    import subprocess

    code = ("import os, sys; home = os.environ.get('HOME')\n"
            "import benchmark, benchmark.data, strategies, evaluation.reporting.collect, experiment.config\n"
            "ours = ('benchmark', 'strategies', 'evaluation', 'experiment')\n"
            "print(os.environ.get('HOME') == home and 'MPLCONFIGDIR' not in os.environ,\n"
            "      not [h for h in sys.meta_path if type(h).__module__.split('.')[0] in ours])")
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == ["True", "True"], p.stdout
