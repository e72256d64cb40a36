"""Every mistake on the command line is answered before the heavy imports (torch, Avalanche, open_clip):
one line, exit 2, "did you mean" where a name is close, the full list of datasets where one is unknown;
and the torch-free reading of the schema and the strategy files agrees with the real ones."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

MISTAKES = [
    (["--config", "mikro"], "no config 'mikro'; presets: ", "did you mean 'micro'?"),
    (["--strategies", "ldifz"], "unknown strategy 'ldifz'; available: ", "did you mean 'ldifs'?"),
    (["--strategies", "ldifs:lamb=3"], "strategy 'ldifs' has no hyperparameter lamb; allowed: lam", "did you mean 'lam'?"),
    (["--orderings", "mnist,fashion_mnsit"], "unknown dataset 'fashion_mnsit' in ordering", "did you mean 'fashion_mnist'?"),
    (["--suite", "mnist", "imagenet"], "unknown dataset 'imagenet' in suite; available: ", ""),
    (["--orderings", "prem:mnist,textures"], "unknown ordering expression 'prem:mnist,textures'", "did you mean 'perm'?"),
    (["--orderings", "mnist,mnist"], "each at most once", ""),
    (["--set", "train.lrr=1"], "unknown setting 'train.lrr'; allowed in train: epochs", "did you mean 'lr'?"),
    (["--set", "train.lr=[1"], "the value is not valid YAML", ""),
    (["--set", "threads=abc"], "threads: input should be a valid integer", ""),  # types and ranges too
    (["--set", "train.precision=fp64"], "train.precision: input should be 'fp32', 'tf32' or 'bf16'", ""),
    (["--seeds", "-1"], "seeds.0: input should be greater than or equal to 0", ""),
    (["--set", "data.variants={DTD: nope}"], "variant 'nope' is not one of DTD's", ""),
    (["--experiment", "../escape"], "experiment: must be one folder name", ""),
]


def test_mistakes_are_answered_before_torch_is_imported(tmp_path):
    """One interpreter runs the command on each mistake (in-process main(), as the shell would see it:
    stderr, exit code) and reports whether torch, avalanche or open_clip were ever imported."""
    code = ("import contextlib, io, json, sys\nfrom experiment import cli\nout = []\n"
            f"for argv in {json.dumps([m[0] for m in MISTAKES])}:\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            f"        rc = cli.main([*argv, '--out', {str(tmp_path / 'out')!r}])\n"
            "    out.append([rc, err.getvalue()])\n"
            "heavy = sorted(m for m in ('torch', 'avalanche', 'open_clip', 'torchvision') if m in sys.modules)\n"
            "print(json.dumps({'answers': out, 'heavy': heavy}))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    result = json.loads(p.stdout)
    assert result["heavy"] == []
    from benchmark.data import known_datasets

    datasets = ", ".join(known_datasets())
    for (argv, words, hint), (rc, err) in zip(MISTAKES, result["answers"]):
        lines = err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], (argv, err)
        assert hint in lines[0], (argv, err)
        if "unknown dataset" in words:
            assert f"available: {datasets}" in lines[0]  # the full list of known datasets
    assert not (tmp_path / "out").exists()


def test_the_shell_command_refuses_a_typo_without_torch(tmp_path):
    p = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "run_benchmark.py"), "--strategies", "ftt",
                        "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in p.stderr.splitlines() if not line.startswith("import time:")]
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert p.returncode == 2 and errors == [errors[0]] and errors[0].startswith("error: unknown strategy 'ftt'")
    assert "did you mean 'ft'?" in errors[0]
    assert "torch" not in imported and "open_clip" not in imported and "avalanche" not in imported


def test_the_strategy_files_read_from_source_are_the_registry():
    import dataclasses

    import strategies
    from experiment.checks import _catalog

    entries, problems = _catalog()
    assert problems == {} and list(entries) == strategies.available()
    for name, entry in entries.items():
        assert [p.name for p in entry.params] == [f.name for f in dataclasses.fields(strategies.get(name))], name


@pytest.mark.parametrize("name, known, hint", [
    ("cifar10", ["CIFAR10", "CIFAR100", "mnist"], "; did you mean 'CIFAR10'?"),  # case aside
    ("lamb", ["lam", "anchor"], "; did you mean 'lam'?"),
    ("nope", ["ft", "ldifs"], ""),  # nothing close: nothing said
    ("lam", ["lam"], ""),
])
def test_did_you_mean(name, known, hint):
    from benchmark.text import did_you_mean

    assert did_you_mean(name, known) == hint


def test_validation_gives_the_same_line_as_the_command():
    from experiment.config import ConfigError, load_preset, validate

    cfg = {**load_preset("micro"), "strategies": ["ldifz"]}
    with pytest.raises(ConfigError, match=r"unknown strategy 'ldifz'; available: .*; did you mean 'ldifs'\?$"):
        validate(cfg)
