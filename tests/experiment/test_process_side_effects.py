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
                       cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300)
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
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parents[2],
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
