"""A researcher's own strategy file cannot corrupt results or stop other work: a broken file is skipped
in one line naming file and line (on every command, --list included), a hyperparameter that collides
with a run config's keys is refused, the file named after a strategy keeps its name, a plugin that
raises fails its run alone, and no strategy's plugins() reaches another strategy's runs."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import strategies
from conftest import TINY, run_main
from experiment import cli
from evaluation.storage.records import check_run

FOLDER = Path(strategies.__file__).parent
pytestmark = pytest.mark.strategy_files  # files in FOLDER for a while: no other test runs meanwhile
HEAD = "from dataclasses import dataclass\nfrom . import Strategy, register\n"


@contextlib.contextmanager
def strategy_file(source: str, stem: str | None = None, raw: bytes | None = None):
    """Writes strategies/<stem>.py (a unique name unless given) for the duration; `{name}` in `source`
    is the stem. The registry scans the folder again on entry and on exit, as a new process would."""
    stem = stem or f"zz_user_{uuid.uuid4().hex[:8]}"
    path = FOLDER / f"{stem}.py"
    assert not path.exists()
    strategies.available()  # the registry without the file, restored on exit
    before = dict(strategies._REGISTRY)
    path.write_bytes(raw if raw is not None else textwrap.dedent(source).replace("{name}", stem).encode())
    importlib.invalidate_caches()
    strategies._loaded = False
    try:
        yield stem
    finally:
        path.unlink(missing_ok=True)
        for pyc in (FOLDER / "__pycache__").glob(f"{stem}.*"):
            pyc.unlink()
        sys.modules.pop(f"strategies.{stem}", None)
        strategies._REGISTRY.clear()
        strategies._REGISTRY.update(before)
        strategies._loaded = False



BROKEN = {  # source, the line it names, words of the problem
    "syntax": ("x = (\n", 1, "SyntaxError"),
    "import": ("import json\nimport no_such_package_cfbench\n", 2, "No module named 'no_such_package_cfbench'"),
    "raise": ("import os\n\nraise RuntimeError('half-written file')\n", 3, "RuntimeError: half-written file"),
    "exit": ("import sys\nsys.exit(3)\n", 2, "SystemExit: 3"),
    "no_dataclass": (HEAD + "\n@register('{name}')\nclass Mine(Strategy):\n    lam: float = 1.0\n", 4,
                     "is registered but is not a @dataclass"),
    "field_name": (HEAD + "\n@register('{name}')\n@dataclass\nclass Mine(Strategy):\n    \"\"\"Mine.\"\"\"\n"
                   "    name: str = 'ldifs'\n", 4, "declares a hyperparameter called 'name'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_strategy_file_is_one_line_and_other_commands_work(case, tmp_path, capsys):
    source, line, words = BROKEN[case]
    with strategy_file(source) as stem:
        code, out, err, _ = run_main(["--out", str(tmp_path), *TINY, "--strategies", "ft", "--dry-run"], capsys)
        lines = err.strip().splitlines()
        assert code == 0 and "Traceback" not in err, err[-2000:]
        warn = [x for x in lines if stem in x]
        assert len(warn) == 1 and warn[0].startswith(f"warning: strategies/{stem}.py is skipped: line {line}"), err
        assert words in warn[0] and "todo" in out
        code, _, err, _ = run_main(["--out", str(tmp_path), *TINY, "--strategies", stem, "--dry-run"], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
        assert lines[0].startswith(f"error: strategy '{stem}' is not available: strategies/{stem}.py is skipped")
        assert words in lines[0]
        code, out, err, _ = run_main(["--list"], capsys)
        assert code == 0 and "Traceback" not in err and "  ldifs " in out
        listed = f"warning: strategies/{stem}.py is skipped: line {line}: "  # read, not imported: no torch
        assert sum(listed in x for x in err.splitlines()) == 1, err
        assert words in err or case in ("raise", "exit")  # those are said as "raises/exits when imported"


def test_a_file_python_reads_in_its_declared_encoding_is_listed(capsys):
    source = ("# -*- coding: latin-1 -*-\n" + HEAD + "\n@register('{name}')\n@dataclass\nclass Mine(Strategy):\n"
              "    \"\"\"Fine-tune, caf\xe9 style.\"\"\"\n    lam: float = 1.0  # weight\n")
    stem = f"zz_user_{uuid.uuid4().hex[:8]}"
    with strategy_file("", stem=stem, raw=source.replace("{name}", stem).encode("latin-1")):
        code, out, err, _ = run_main(["--list"], capsys)
        assert code == 0 and err == "" and f"Fine-tune, café style." in out
        assert stem in strategies.available()
    with strategy_file("", raw=b"x = '\xff\xfe'\n") as stem:  # neither UTF-8 nor declared
        code, out, err, _ = run_main(["--list"], capsys)
        assert code == 0 and f"warning: strategies/{stem}.py is skipped: " in err and "save it as UTF-8" in err


def test_a_name_clash_keeps_the_file_named_after_the_strategy(tmp_path, capsys):
    impostor = HEAD + "\n@register('ldifs')\n@dataclass\nclass Impostor(Strategy):\n    \"\"\"An impostor.\"\"\"\n" \
                      "    lam: float = 0.0\n"
    from strategies.ldifs import LDIFS

    with strategy_file(impostor, stem="aa_user_impostor") as stem:
        code, out, err, _ = run_main(["--list"], capsys)
        assert code == 0 and "An impostor" not in out and "l2 penalty between normalised internal features" in out
        assert f"warning: strategies/{stem}.py is skipped: registers strategy 'ldifs', which strategies/ldifs.py" in err
        assert strategies.get("ldifs") is LDIFS
        code, out, err, _ = run_main(["--out", str(tmp_path), *TINY, "--strategies", "ldifs", "--dry-run"], capsys)
        assert code == 0 and "'anchor': 'previous'" in out and sum(stem in x for x in err.splitlines()) == 1


def test_a_field_colliding_with_the_run_config_is_refused_at_registration():
    with pytest.raises(strategies.StrategyFileError, match="hyperparameter called 'name'"):
        from strategies.base import Strategy
        import dataclasses

        @strategies.register("zz_collide")
        @dataclasses.dataclass
        class Collide(Strategy):
            name: str = "ldifs"
    assert "zz_collide" not in strategies._REGISTRY


RAISES = '''
from dataclasses import dataclass
from avalanche.core import SupervisedPlugin
from . import Strategy, register

class Boom(SupervisedPlugin):
    def before_backward(self, strategy, **kwargs):
        raise ValueError("the researcher's bug")

@register("{name}")
@dataclass
class Mine(Strategy):
    """Raises in a callback."""
    lam: float = 1.0

    def plugins(self, model):
        return [Boom()]
'''

SCALES = '''
from dataclasses import dataclass
import torch
from . import Strategy, register

@register("{name}")
@dataclass
class Mine(Strategy):
    """Scales the encoder it is given in plugins(), which the API forbids."""
    factor: float = 0.1

    def plugins(self, model):
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.mul_(self.factor)
        return []
'''


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory):
    """One command in this process with ft after two strategy files whose plugins misbehave, RAISES (raises
    in a callback) and SCALES (changes the encoder plugins() is given): one ft training serves the tests of
    both. (raises' stem, scales' stem, exit status, stderr, the experiment's run folders)."""
    out = tmp_path_factory.mktemp("misbehaving")
    err = io.StringIO()
    with strategy_file(RAISES) as raises, strategy_file(SCALES) as scales:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = cli.main(["--out", str(out), *TINY, "--strategies", raises, scales, "ft", "--no-plots"])
            except SystemExit as e:
                code = e.code
    return raises, scales, code, err.getvalue(), sorted((out / "micro" / "runs").iterdir())


def _by_strategy(folders: list[Path]) -> dict[str, Path]:
    """The run folders that have a config (a run whose plugins() failed the check has none), by strategy."""
    return {json.loads((p / "config.json").read_text())["strategy"]["name"]: p for p in folders
            if (p / "config.json").exists()}


def _errors(err: str, stem: str) -> tuple[list[str], list[str]]:
    """The command's `error: run ...` lines, and those of them about strategy `stem`."""
    bad = [x for x in err.splitlines() if x.startswith("error: run ")]
    return bad, [x for x in bad if stem in x]


@pytest.mark.xdist_group("test_user_strategies_misbehaving")  # one worker: one command for both tests
def test_a_plugin_that_raises_fails_its_run_alone(misbehaving, tiny_experiment):
    stem, _, code, err, folders = misbehaving
    runs = _by_strategy(folders)
    assert code == 1 and "Traceback" not in err, err[-3000:]
    bad, own = _errors(err, stem)
    assert len(bad) == 2 and len(own) == 1 and f"({stem} textures>digits seed " in own[0]  # the other: SCALES
    assert f"the strategy raised ValueError: the researcher's bug at strategies/{stem}.py line 8" in own[0]
    assert check_run(runs["ft"]) is None and check_run(runs[stem]) is not None
    failed = (runs[stem] / "failed").read_text()
    assert failed.startswith(f"run {runs[stem].name} ") and "Traceback (most recent call last)" in failed
    assert 'raise ValueError("the researcher\'s bug")' in failed
    # the other run is the one a clean command trains
    clean = json.loads((tiny_experiment / "runs" / runs["ft"].name / "records.json").read_text())
    assert json.loads((runs["ft"] / "records.json").read_text())["R"] == clean["R"]


@pytest.mark.xdist_group("test_user_strategies_misbehaving")
def test_plugins_that_change_their_model_cannot_change_another_run(misbehaving, tiny_experiment):
    raises, stem, code, err, folders = misbehaving
    assert code == 1 and "Traceback" not in err, err[-3000:]
    bad, own = _errors(err, stem)
    assert len(bad) == 2 and len(own) == 1  # the other: RAISES
    assert f"strategy {stem} (strategies/{stem}.py): plugins() changed the encoder" in own[0]
    other = _by_strategy(folders)[raises]
    (failed,) = [p for p in folders if (p / "failed").exists() and p != other]
    assert own[0].startswith(f"error: run {failed.name} ({stem} ") and check_run(failed) is not None
    runs = {json.loads((p / "config.json").read_text())["strategy"]["name"]: p for p in folders
            if p not in (failed, other)}
    assert list(runs) == ["ft"] and check_run(runs["ft"]) is None
    clean = json.loads((tiny_experiment / "runs" / runs["ft"].name / "records.json").read_text())
    mine = json.loads((runs["ft"] / "records.json").read_text())
    assert mine["R"] == clean["R"] and mine["LP"] == clean["LP"]  # step 0 included: nothing leaked
