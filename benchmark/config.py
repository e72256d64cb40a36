"""Presets (YAML) + command-line overrides -> a validated config -> the plan: one entry per run."""
from __future__ import annotations

import copy
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import yaml

import strategies
from evaluation.records import run_id

from .coerce import coerce
from .datasets import known_datasets
from .training import TrainConfig

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
# Keys that change how a run executes but not its results: kept in config.json, left out of the run id.
EXECUTION_KEYS = ("device", "threads")


class ConfigError(ValueError):
    """Bad input: the message says what is wrong, what is allowed and what to do."""


def presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"no config {name_or_path!r}; presets: {', '.join(presets())}, or a path to a YAML file")
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return cfg


def set_dotted(cfg: dict, assignment: str) -> None:
    """Apply 'train.lr=3e-5' (the value is parsed as YAML)."""
    key, eq, value = assignment.partition("=")
    if not eq or not key:
        raise ConfigError(f"--set {assignment!r}: expected key.sub=value, e.g. --set train.lr=3e-5")
    node = cfg
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is not a section")
    node[parts[-1]] = yaml.safe_load(value)


def validate(cfg: dict) -> dict:
    """Check names and values; return a normalised copy (strategies as {name, **hparams})."""
    cfg = copy.deepcopy(cfg)
    for key in ("experiment", "model", "suite", "orderings", "strategies", "seeds"):
        if key not in cfg:
            raise ConfigError(f"config lacks {key!r}; see configs/micro.yaml for a complete example")
    model = cfg["model"]
    if not isinstance(model, dict) or "name" not in model:
        raise ConfigError("model must be a mapping with at least `name` (and `pretrained`); see configs/micro.yaml")
    from .models import available_models

    if model["name"] not in available_models():
        raise ConfigError(f"unknown model {model['name']!r}; open_clip knows {len(available_models())} architectures, "
                          "e.g. ViT-B-32, micro-effnet-lite0-minilm (python -c 'import open_clip; "
                          "print(open_clip.list_models())')")
    device = str(cfg.get("device", "cpu"))
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA device is visible here; use --device cpu")
    known = known_datasets()
    suite = list(cfg["suite"])
    unknown = [d for d in suite if d not in known]
    if unknown:
        raise ConfigError(f"unknown dataset {', '.join(map(repr, unknown))} in suite; available: {', '.join(known)}")
    orderings = []
    for o in cfg["orderings"]:
        o = o.split(",") if isinstance(o, str) else list(o)
        o = [d.strip() for d in o if d.strip()]
        bad = [d for d in o if d not in known]
        if bad:
            raise ConfigError(f"unknown dataset {', '.join(map(repr, bad))} in ordering {','.join(o)}; "
                              f"available: {', '.join(known)}")
        if not o or len(set(o)) != len(o):
            raise ConfigError(f"ordering {','.join(o)!r} must name at least one dataset, each at most once")
        missing = [d for d in o if d not in suite]
        if missing:
            raise ConfigError(f"ordering {','.join(o)} trains on {', '.join(missing)}, which the suite does not score; "
                              "add it to `suite`")
        orderings.append(o)
    if not orderings:
        raise ConfigError("no ordering given; pass --orderings a,b,c")
    cfg["orderings"] = orderings
    specs = []
    for s in cfg["strategies"]:
        strategy = strategies.build(*strategies.parse_spec(s)) if isinstance(s, str) else strategies.from_config(s)
        specs.append(strategies.to_config(strategy))  # both raise SpecError
    cfg["strategies"] = specs
    try:
        cfg["seeds"] = [int(s) for s in cfg["seeds"]]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds must be integers, got {cfg['seeds']!r}") from None
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(cfg.get("train", {})) - set(fields))
    if bad:
        raise ConfigError(f"unknown train setting {', '.join(bad)}; allowed: {', '.join(sorted(fields))}")
    try:
        train = TrainConfig(**{k: coerce(fields[k].type, v, f"train.{k}") for k, v in cfg.get("train", {}).items()})
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if train.head_init not in ("lp", "zs"):
        raise ConfigError(f"train.head_init must be lp or zs, got {train.head_init!r}")
    if train.epochs < 1 or train.batch_size < 1:
        raise ConfigError("train.epochs and train.batch_size must be at least 1")
    cfg["train"] = dataclasses.asdict(train)
    data = cfg.get("data") or {}
    bad = sorted(set(data) - {"max_train", "max_test"})
    if bad:
        raise ConfigError(f"unknown data setting {', '.join(bad)}; allowed: max_train, max_test")
    try:
        cfg["data"] = {k: None if v is None else coerce(int, v, f"data.{k}") for k, v in data.items()}
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if any(v is not None and v < 1 for v in cfg["data"].values()):
        raise ConfigError("data.max_train and data.max_test must be at least 1 (or null for all images)")
    cfg.setdefault("device", "cpu")
    cfg.setdefault("threads", 0)
    return cfg


def plan(cfg: dict) -> list[dict]:
    """model x ordering x strategy x seed -> one run config each, with its stable id."""
    runs = []
    for ordering, strat, seed in itertools.product(cfg["orderings"], cfg["strategies"], cfg["seeds"]):
        run = {
            "model": cfg["model"], "suite": cfg["suite"], "data": cfg["data"], "train": cfg["train"],
            "ordering": ordering, "strategy": strat, "seed": seed,
        }
        rid = run_id(run)
        runs.append({"run_id": rid, **run, **{k: cfg[k] for k in EXECUTION_KEYS}})
    return runs
