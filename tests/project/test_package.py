"""The distribution: the wheel `pip install .` builds carries the packages and their data (presets,
the micro suite, model configs, Avalanche's stand-in home), and the command runs from it outside the
repository. Built without dependencies (those of the test's own environment are used), so the test
costs seconds, not a 5 GB torch install."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    (whl,) = out.glob("cfbench-*.whl")
    return whl


def test_the_wheel_carries_the_packages_data_and_the_command(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("experiment/cli.py", "evaluation/reporting/collect.py", "strategies/ldifs.py",
                   "experiment/configs/micro.yaml", "experiment/configs/paper-single.yaml",
                   "benchmark/assets/datasets.json", "benchmark/assets/micro/mnist.npz",
                   "benchmark/assets/avalanche_home/.avalanche/config.json",
                   "benchmark/model_configs/micro-effnet-lite0-minilm.json"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "results/"))]
    meta = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "cfbench = experiment.cli:entry" in zipfile.ZipFile(wheel).read(meta).decode()
    lic = [n for n in names if n.endswith("LICENSE")]
    assert lic, "the licence travels with the wheel"


def test_the_installed_command_finds_its_presets_and_data_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}  # the installed copy, not the checkout
    code = "from experiment.cli import entry; import experiment; print(experiment.__file__, flush=True); entry()"
    out = subprocess.run([sys.executable, "-c", code, "--list", "--config", "paper-single"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0].startswith(str(target))
    assert "micro, micro-evidence" in out.stdout and "mnist" in out.stdout and "EuroSAT" in out.stdout
