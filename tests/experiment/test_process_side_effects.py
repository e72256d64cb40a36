"""What importing the packages and starting the command do to the process and the machine: nothing
changed in the importing process, nothing written in HOME by Avalanche's and matplotlib's imports.

Both import checks need a process whose first imports of the project, Avalanche and matplotlib are the
ones checked, so neither can run in pytest's process. One interpreter forked from (tests/forked.py's
Zygote, a module fixture) serves both: it imports only third-party libraries that neither check is about
(torch, torchvision, open_clip, scikit-learn, pandas, scipy, qpsolvers with jax: about 11 of the 15 CPU-s),
in the environment of the HOME check, and records that those imports changed none of what the library
check asserts; then one child per check does that check's imports first (the library check with a HOME of
its own) and reports. A write to HOME by the third-party imports would fail the HOME check, as a change to
the variables or import hooks checked would fail the library check.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forked import Zygote

ROOT = Path(__file__).resolve().parents[2]

# What the library check asserts of a process, as of HOME's value `home` before its imports: HOME given
# back, no MPLCONFIGDIR, no import hook of the project's, no Hugging Face offline variable.
UNTOUCHED = ("import os, sys\n"
             "def untouched(home):\n"
             "    ours = ('benchmark', 'strategies', 'evaluation', 'experiment')\n"
             "    return [os.environ.get('HOME') == home and 'MPLCONFIGDIR' not in os.environ,\n"
             "            not [h for h in sys.meta_path if type(h).__module__.split('.')[0] in ours],\n"
             "            'HF_HUB_OFFLINE' not in os.environ and 'TRANSFORMERS_OFFLINE' not in os.environ]\n")

# What each check's process runs (as `python -c` would): stdout, stderr and exit status come back.
HOME_CHECK = ("import os; from benchmark.process_env import prepare_command; prepare_command()\n"
              "import benchmark.training, matplotlib.pyplot; print(os.environ['HOME'])")
LIBRARY_CHECK = (UNTOUCHED + "home = os.environ.get('HOME')\n"
                 "import benchmark, benchmark.data, benchmark.models, strategies, evaluation.reporting.collect, "
                 "experiment.config\n"
                 "print(*untouched(home))")

# The zygote's imports: what both checks' imports start with, then its finding, written to {report!r}
# (UNTOUCHED of these imports, and none of the modules the checks import first loaded yet).
THIRD_PARTY = (UNTOUCHED + "home = os.environ.get('HOME')\n"
               "import json, torch, torchvision, open_clip, sklearn, pandas, scipy, qpsolvers\n"
               "left = not [m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'avalanche', 'benchmark', "
               "'strategies', 'evaluation', 'experiment')]\n"
               "with open({report!r}, 'w') as f:\n"
               "    json.dump({{'third_party_changed_nothing': all(untouched(home)), "
               "'checked_modules_left_to_the_checks': left}}, f)\n")


@pytest.fixture(scope="module")
def imports(tmp_path_factory) -> dict:
    """{check: (exit status, stdout, stderr)} and the zygote's own finding; HOME's folder, not made."""
    tmp = tmp_path_factory.mktemp("imports")
    home, cache = tmp / "home", tmp / "cache"
    # the HOME check's environment: a HOME that does not exist, a cache of its own, no matplotlib folder
    env = {**os.environ, "HOME": str(home), "CFBENCH_CACHE": str(cache)}
    for k in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(k, None)
    # the library check's: the same but a home of its own (Avalanche writes its file there when imported
    # without the command's preparation); none of the variables the command sets either
    library = {**env, "HOME": str(tmp / "library-home")}
    report = tmp / "report.json"
    zygote = Zygote(THIRD_PARTY.format(report=str(report)), env=env)
    try:
        checks = {"home": zygote.run([], env=env, code=HOME_CHECK), "library": zygote.run([], env=library, code=LIBRARY_CHECK)}
        found = {name: [p.wait(300), *p.communicate()] for name, p in checks.items()}
    finally:
        zygote.close()
    return {**json.loads(report.read_text()), **found, "home_folder": str(home)}


@pytest.fixture(scope="module", autouse=True)
def _imported():
    """The heavy imports (torch, open_clip, Avalanche) once, so that the bounds time the cases themselves."""
    import benchmark.models  # noqa: F401
    import experiment.config  # noqa: F401


@pytest.mark.xdist_group("test_process_side_effects")  # one worker: one interpreter for both import checks
def test_the_commands_imports_of_avalanche_and_matplotlib_write_nothing_in_home(imports):
    code, out, err = imports["home"]
    home = Path(imports["home_folder"])
    assert imports["checked_modules_left_to_the_checks"]  # their first import is in the check's process
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert not home.exists() and out.strip() == str(home)  # HOME itself is given back


@pytest.mark.xdist_group("test_process_side_effects")
def test_importing_the_packages_changes_nothing_in_the_process(imports):
    """A library user's process keeps its HOME, its matplotlib folder, its Hugging Face settings and its
    import machinery: no HOME swap, no MPLCONFIGDIR, no HF_HUB_OFFLINE, no import hook of ours (the command
    does those itself, and the models set Hugging Face's offline mode only while they build the packaged
    text tower: benchmark/process_env.py)."""
    code, out, err = imports["library"]
    assert code == 0, err[-2000:]
    assert imports["third_party_changed_nothing"]  # what the process had imported before the packages
    assert out.split() == ["True", "True", "True"], out


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
