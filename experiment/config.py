"""Presets (YAML) + command-line overrides -> one validated config -> the plan: one entry per run.

Everything is checked here, before any model or data is loaded: the shape of every section, types
and ranges and the names of datasets, orderings and strategies (experiment/checks.py, torch-free: the
command runs it before its heavy imports, on the schema of experiment/schema.py), then the model's name,
the strategies' own checks and that no run is asked for twice. Every failure is a ConfigError whose
message is one line.
"""
from __future__ import annotations

import itertools
from typing import Any

import strategies
from evaluation.storage.identity import RunSpec, drop_legacy

from benchmark.data import known_datasets
from .checks import check_input
from .orderings import OrderingError, expand_orderings
from .schema import ExecutorSection, ExperimentConfig, ModelSection, ray_address_problem  # noqa: F401
from .settings import ConfigError, load_preset, set_dotted  # noqa: F401 - the command's settings, torch-free


def device_problem(device: str) -> str | None:
    """Why `device` cannot run here (one line), or None. Not part of validate(): a dry run or a collection
    plans a GPU preset anywhere, and a real run reports it together with missing data and weights."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {device!r}: no CUDA device is visible here; use --device cpu"
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
    if device == "mps" and not torch.backends.mps.is_available():
        return "device 'mps': the Apple GPU backend is not available here; use --device cpu"
    return None


def validate(cfg: dict) -> dict:
    """Check everything that does not depend on this machine; return a normalised copy (orderings as
    lists, strategies as {name, **hparams}). `device_problem` checks the device."""
    c = check_input(cfg)  # shapes, types, names: the lines the command gives before torch

    from benchmark.models import available_models  # open_clip: imported only once the shapes are right

    models = available_models()
    if c.model.name not in models:
        raise ConfigError(f"unknown model {c.model.name!r}; open_clip knows {len(models)} architectures, "
                          "e.g. ViT-B-32, micro-effnet-lite0-minilm (python -c 'import open_clip; "
                          "print(open_clip.list_models())')")
    known = known_datasets()
    twice = sorted({d for d in c.suite if c.suite.count(d) > 1})
    if twice:
        raise ConfigError(f"suite lists {', '.join(twice)} more than once; name each dataset once")
    for item in c.orderings:
        if not (isinstance(item, str) or (isinstance(item, list) and all(isinstance(d, str) for d in item))):
            raise ConfigError(f"orderings: {str(item)[:80]!r} is not an ordering; each is a list of dataset names or "
                              "a text such as a,b,c or perm:a,b (e.g. --orderings mnist,textures)")
    for item in c.orderings:  # a known dataset outside the suite: say how to fix it, not "unknown"
        names = item.split(",") if isinstance(item, str) and ":" not in item else item
        if isinstance(names, list):
            outside = [str(d).strip() for d in names if str(d).strip() in known and str(d).strip() not in c.suite]
            if outside:
                raise ConfigError(f"ordering {item} trains on {', '.join(outside)}, which the suite does not score; "
                                  "add it to `suite` (or --suite)")
    try:
        orderings = expand_orderings(c.orderings, c.suite, seed=c.seeds[0])
    except OrderingError as e:
        raise ConfigError(f"{e}; the suite is {', '.join(c.suite)}") from None
    if not orderings:
        raise ConfigError("no ordering given; pass --orderings a,b,c")
    for key in ("epochs", "lr", "iterations"):  # per-dataset mappings: every name a dataset, every task covered
        per = getattr(c.train, key)
        if not isinstance(per, dict):
            continue
        stray = sorted(str(d) for d in per if d not in known)
        if stray:
            raise ConfigError(f"train.{key} names {', '.join(map(repr, stray))}, which is no dataset; "
                              f"available: {', '.join(known)}")
        lacking = sorted({d for o in orderings for d in o} - set(per))
        if lacking:
            raise ConfigError(f"train.{key} gives {key} per dataset but none for {', '.join(lacking)}; add them "
                              f"or give one number for all (--set train.{key}=N)")

    specs: list[dict] = []
    for s in c.strategies:
        hp, run_settings = split_run_keys(with_defaults(s, c.strategy_defaults))
        if run_settings.get("head_init") == c.train.head_init:  # the experiment's own: the plain entry's runs
            run_settings.pop("head_init")
        for spec in strategies.expand(hp):  # raises SpecError, one line
            spec = {**spec, **run_settings}  # head_init: plan() moves it into the runs' train section
            if spec in specs:
                raise ConfigError(f"strategy {_label(spec)} is asked for twice; list each strategy and "
                                  "hyperparameter combination once")
            specs.append(spec)
    twice = sorted({s for s in c.seeds if c.seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"seeds list {', '.join(map(str, twice))} more than once; give each seed once")
    if c.numerics == "portable" and c.threads != 1:
        raise ConfigError(f"numerics: portable needs threads: 1 (got {c.threads}{', the core count' if c.threads == 0 else ''}"
                          "): with more threads, how work is split and summed may still depend on the machine; "
                          "--set threads=1 (and --jobs N for more processes)")

    if c.executor.kind == "ray" and c.device.startswith("cuda") and c.executor.gpus_per_run == 0:
        raise ConfigError(f"device {c.device}: on Ray a run gets a GPU only when it reserves one; "
                          "--set executor.gpus_per_run=1 (or 0.25 to pack four runs on a GPU)")
    if c.executor.kind == "ray" and c.save_weights:
        raise ConfigError("save_weights: the Ray executor returns a run's records, not its weights, so they would be "
                          "lost; train with the local executor (--executor local, --jobs N) to keep weights")
    # new settings at their legacy values leave run ids as they were (evaluation/storage/identity.LEGACY)
    out = drop_legacy(c.model_dump(), sections_only=True)
    out["orderings"], out["strategies"] = orderings, specs
    out.pop("strategy_defaults", None)  # applied above: the specs carry them
    return out


def with_defaults(spec, defaults: dict[str, dict[str, Any]]):
    """A strategy spec with the preset's `strategy_defaults` for its name filled in where it sets nothing."""
    from strategies.spec import parse_spec

    unknown = sorted(set(defaults) - set(strategies.available()))
    if unknown:
        raise ConfigError(f"strategy_defaults names unknown strateg{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(unknown)}; available: {', '.join(strategies.available())}")
    name, params = parse_spec(spec) if isinstance(spec, str) else (spec.get("name"), {
        k: v for k, v in spec.items() if k != "name"})
    if name not in defaults:
        return spec
    return {"name": name, **defaults[name], **params}


def split_run_keys(spec) -> tuple[Any, dict[str, Any]]:
    """A strategy entry -> (the entry without its run settings, those settings: {"head_init": "zs"} for
    "ft:head_init=zs"), the settings checked (strategies.spec.RUN_KEYS). An entry without them is returned
    as it is."""
    from strategies.spec import RUN_KEYS, check_run_keys, entry_parts

    parts = entry_parts(spec)
    if parts is None:
        return spec, {}  # strategies.expand names what is wrong with it
    name, params = parts
    settings = {k: params.pop(k) for k in RUN_KEYS if k in params}
    if not settings:
        return spec, {}
    return {"name": name, **params}, check_run_keys(name, settings)


def _label(spec: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return spec["name"] + (f":{params}" if params else "")


def plan(cfg: dict) -> list[dict]:
    """model x ordering x strategy x seed -> one run config each, with its stable id (what enters the
    config and the id: evaluation/storage/identity.RunSpec)."""
    return [RunSpec.of(cfg, ordering, entry, seed).config()
            for ordering, entry, seed in itertools.product(cfg["orderings"], cfg["strategies"], cfg["seeds"])]
