"""The settings read before validation (to start --jobs helpers, join Ray, pin the numeric path before
torch starts) must be the values the validated configuration will hold: the same precedence of --set,
the dedicated flag and the config file. A hint that disagreed ran one process where two were asked
for, or started helpers that were then sent away."""
from __future__ import annotations

import pytest
import yaml

from experiment.arguments import build_parser, resolve_config
from experiment.executors.processes import executor_hint, jobs_hint, ray_address_hint
from experiment.numerics_reexec import numerics_hint
from experiment.presets import early_setting, preset_path


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
    assert jobs_hint(args.jobs, args.set, args.config) == jobs


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
    assert executor_hint(args.executor, args.set, args.config) == kind
    assert ray_address_hint(args.ray_address, args.set, args.config) == address


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
    assert numerics_hint(args.numerics, args.set, args.config) == setting


def test_an_unreadable_value_or_file_gives_the_default(tmp_path):
    # validation, not the early reading, reports these in one line
    assert early_setting("jobs", None, ["jobs=[unclosed"], "no-such-preset", 1) == 1
    assert early_setting("jobs", None, [], str(tmp_path / "missing.yaml"), 1) == 1
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &x [1]\nb: *x\njobs: 2\n")  # aliases are refused by the bounded reader
    assert early_setting("jobs", None, [], str(bomb), 1) == 1
    assert early_setting("executor.kind", None, ["executor=null"], str(bomb), "local") == "local"
