"""The settings read before validation (to start --jobs helpers, join Ray, pin the numeric path before
torch starts) are lookups in the one merged configuration that validation checks
(experiment.settings.merged): the same precedence of --set, the dedicated flag and the config file. A
hint that disagreed ran one process where two were asked for, or started helpers that were then sent
away."""
from __future__ import annotations

import pytest
import yaml

from experiment.arguments import build_parser, resolve_config
from experiment.executors.processes import executor_hint, jobs_hint, ray_address_hint
from experiment.numerics_reexec import numerics_hint
from experiment.presets import preset_path
from experiment.settings import ConfigError, early, lookup, merged


def _config(tmp_path, text: str) -> str:
    """The default preset without the settings under test, plus `text`."""
    base = yaml.safe_load(preset_path("micro").read_text())
    for key in ("jobs", "executor", "numerics"):
        base.pop(key, None)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base) + text)
    return str(path)


@pytest.mark.parametrize("argv, yaml_text, jobs", [
    ([], "", 1),
    ([], "jobs: 3\n", 3),
    (["--jobs", "2"], "jobs: 3\n", 2),
    (["--set", "jobs=4"], "jobs: 3\n", 4),
    (["--jobs", "2", "--set", "jobs=4"], "", 4),  # --set is applied after the flag, as validation does
    (["--set", "jobs=4", "--set", "jobs=5"], "", 5),  # the last --set wins
])
def test_jobs_hint_is_the_validated_value(tmp_path, argv, yaml_text, jobs):
    config = _config(tmp_path, yaml_text)
    args = build_parser().parse_args(["--config", config, *argv])
    assert resolve_config(args)["jobs"] == jobs
    assert jobs_hint(early(args)) == jobs


@pytest.mark.parametrize("argv, yaml_text, kind, address", [
    ([], "", "local", None),
    ([], "executor: {kind: ray, address: auto}\n", "ray", "auto"),
    (["--executor", "local"], "executor: {kind: ray}\n", "local", None),
    (["--executor", "local", "--set", "executor.kind=ray"], "", "ray", None),
    (["--set", "executor={kind: ray, address: 'ray://head:10001'}"], "", "ray", "ray://head:10001"),
    (["--ray-address", "auto", "--set", "executor.address=ray://h:1"], "executor: {kind: ray}\n", "ray", "ray://h:1"),
])
def test_executor_hints_are_the_validated_values(tmp_path, argv, yaml_text, kind, address):
    config = _config(tmp_path, yaml_text)
    args = build_parser().parse_args(["--config", config, *argv])
    executor = resolve_config(args).get("executor") or {}
    assert (executor.get("kind") or "local", executor.get("address") or None) == (kind, address)
    assert executor_hint(early(args)) == kind
    assert ray_address_hint(early(args)) == address


@pytest.mark.parametrize("argv, yaml_text, setting", [
    ([], "", "native"),
    ([], "numerics: portable\n", "portable"),
    (["--numerics", "native"], "numerics: portable\n", "native"),
    (["--numerics", "portable", "--set", "numerics=native"], "", "native"),
])
def test_numerics_hint_is_the_validated_value(tmp_path, argv, yaml_text, setting):
    config = _config(tmp_path, yaml_text)
    args = build_parser().parse_args(["--config", config, *argv])
    assert resolve_config(args).get("numerics", "native") == setting
    assert numerics_hint(early(args)) == setting


def _args(*argv):
    return build_parser().parse_args(list(argv))


def test_an_unreadable_value_or_file_gives_the_default(tmp_path):
    # validation, not the early reading, reports these in one line
    assert jobs_hint(early(_args("--config", "micro", "--set", "jobs=[unclosed"))) == 1
    assert jobs_hint(early(_args("--config", "no-such-preset", "--jobs", "3"))) == 1
    assert jobs_hint(early(_args("--config", str(tmp_path / "missing.yaml")))) == 1
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &x [1]\nb: *x\njobs: 2\n")  # aliases are refused by the bounded reader
    assert jobs_hint(early(_args("--config", str(bomb)))) == 1
    assert executor_hint(early(_args("--config", str(bomb), "--set", "executor=null"))) == "local"
    with pytest.raises(ConfigError, match="aliases|anchor|alias"):
        merged(_args("--config", str(bomb)))
    # a section set to null or missing gives the default; a wrong-typed jobs too (validation refuses it)
    assert executor_hint(early(_args("--set", "executor=null"))) == "local"
    assert jobs_hint(early(_args("--set", "jobs=two"))) == 1
    assert lookup({"executor": None}, "executor.kind", "local") == "local"


def test_the_flags_and_sets_apply_in_order_to_one_merged_config():
    cfg = merged(_args("--epochs", "3", "--set", "train.epochs=5", "--data-root", "/d", "--download",
                       "--executor", "ray", "--set", "executor={kind: local}", "--seeds", "0", "--strategies", "ft"))
    assert cfg["train"]["epochs"] == 5 and cfg["data"]["root"] == "/d" and cfg["data"]["download"] is True
    assert cfg["executor"] == {"kind": "local"} and cfg["seeds"] == [0] and cfg["strategies"] == ["ft"]
    # options left out keep the preset's values; an empty --strategies list keeps them too
    preset = merged(_args())
    assert merged(_args("--device", ""))["device"] == preset.get("device")
    with pytest.raises(ConfigError, match="--gpus 0: give at least 1 GPU"):
        merged(_args("--gpus", "0"))
