"""The command's settings, resolved once and without torch: a preset, then the options, then every
`--set`, in that order (`merged`). Validation (experiment.config.validate) checks the result, and the
settings read before torch starts (--jobs helpers, a Ray connection, the numeric path) are lookups in
the same result (`early`, `lookup`), so the two cannot disagree.

Kept apart from experiment.config, which imports the strategies' files, Avalanche and torch.
"""
from __future__ import annotations

import argparse
from typing import Any

import yaml

from benchmark import strict_yaml
from benchmark.text import did_you_mean

from .presets import preset_path, presets


class ConfigError(ValueError):
    """Bad input: the message says what is wrong, what is allowed and what to do."""


def load_preset(name_or_path: str) -> dict[str, Any]:
    path = preset_path(name_or_path)
    if not path.exists():
        raise ConfigError(f"no config {name_or_path!r}; presets: {', '.join(presets())}, or a path to a YAML file"
                          + did_you_mean(name_or_path, presets()))
    try:
        cfg = strict_yaml.load_file(path)
    except strict_yaml.StrictYamlError as e:
        raise ConfigError(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; a config is YAML text") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level (see configs/micro.yaml)")
    return cfg


def set_dotted(cfg: dict, assignment: str) -> None:
    """Apply 'train.lr=3e-5' (the value is parsed as YAML)."""
    key, eq, value = assignment.partition("=")
    parts = key.split(".")
    if not eq or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {assignment!r}: expected key.sub=value, e.g. --set train.lr=3e-5")
    node = cfg
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is a value, not a section of settings")
    try:
        node[parts[-1]] = strict_yaml.loads(value)
    except strict_yaml.StrictYamlError as e:
        raise ConfigError(f"--set {assignment[:80]!r}: {e}") from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML; quote strings, write lists as [a, b]"
                          ) from None


# option -> where it goes in the configuration (None: not a setting, or handled below)
_FLAGS = {"strategies": "strategies", "orderings": "orderings", "seeds": "seeds", "suite": "suite",
          "experiment": "experiment", "epochs": "train.epochs", "device": "device", "data_root": "data.root",
          "jobs": "jobs", "numerics": "numerics", "executor": "executor.kind", "ray_address": "executor.address"}
_SWITCHES = {"download": "data.download", "tensorboard": "tensorboard", "wandb": "wandb"}  # store_true: set when given
_GIVEN_IF_TRUE = ("strategies", "orderings", "suite", "device", "data_root")  # an empty value keeps the preset's


def merged(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration the command line asks for, not yet validated: the preset (`--config`), then each
    option that sets a key, then every `--set` in order (the last one wins). ConfigError for a preset that
    cannot be read or a `--set` that cannot be applied."""
    cfg = load_preset(args.config)
    for option, dotted in _FLAGS.items():
        value = getattr(args, option, None)
        if value if option in _GIVEN_IF_TRUE else value is not None:
            _put(cfg, dotted, value)
    for option, dotted in _SWITCHES.items():
        if getattr(args, option, False):
            _put(cfg, dotted, True)
    for s in getattr(args, "set", None) or []:
        set_dotted(cfg, s)
    gpus = getattr(args, "gpus", None)
    if gpus is not None and gpus < 1:
        raise ConfigError(f"--gpus {gpus}: give at least 1 GPU")
    return cfg


def _put(cfg: dict, dotted: str, value: Any) -> None:
    *sections, key = dotted.split(".")
    for s in sections:
        if cfg.get(s) is None:
            cfg[s] = {}
        cfg = cfg[s]
        if not isinstance(cfg, dict):
            return  # a section written as a value: validation says so in one line
    cfg[key] = value


def early(args: argparse.Namespace) -> dict[str, Any]:
    """`merged(args)` for the readers that start work before validation; {} where it fails (validation
    then reports why in one line), so that every `lookup` gives its default."""
    try:
        return merged(args)
    except ConfigError:
        return {}


def lookup(settings: dict[str, Any], dotted: str, default: Any = None) -> Any:
    """settings["a"]["b"] for "a.b"; `default` where a section or the key is missing, or null."""
    node: Any = settings
    for key in dotted.split("."):
        if not isinstance(node, dict) or node.get(key) is None:
            return default
        node = node[key]
    return node
