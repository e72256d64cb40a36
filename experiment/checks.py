"""Every name and key the command line (and its preset) gives, checked before the heavy imports, so that
a typo is answered in a moment instead of after some seconds of torch, Avalanche and open_clip: setting
keys (against the schema classes' fields), dataset names in `suite` and `orderings` and the ordering
expressions, strategy names and their hyperparameters (strategies.catalog reads the strategy files
without importing them). Each problem is one ConfigError line with "did you mean" where a name is close.

experiment.config.validate stays the authority and runs these checks first, so that a mistake gets the
same line from the command and from a program; what needs the schema's types, a model or a strategy's
own checks is left to it. Torch-free: the schema's field names are read from its source files.
"""
from __future__ import annotations

import ast
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from benchmark.text import did_you_mean

from .orderings import OrderingError, expand_orderings
from .settings import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# the schema: (file, class) of the whole configuration and of each section a key may hold
SCHEMA = {"": ("experiment/config.py", "ExperimentConfig"), "model": ("experiment/config.py", "ModelSection"),
          "data": ("benchmark/data/settings.py", "DataSection"), "train": ("benchmark/training.py", "TrainConfig"),
          "executor": ("experiment/config.py", "ExecutorSection")}


def known_datasets() -> list[str]:
    """The registry's dataset names (benchmark.data.known_datasets), read from its file without torch."""
    with open(ROOT / "benchmark" / "assets" / "datasets.json", encoding="utf-8") as f:
        return sorted(json.load(f))


@lru_cache(maxsize=None)
def fields(section: str) -> tuple[str, ...]:
    """The keys the schema allows in `section` ("" for the top level), in the order it declares them."""
    file, name = SCHEMA[section]
    tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    return tuple(i.target.id for i in cls.body if isinstance(i, ast.AnnAssign) and isinstance(i.target, ast.Name)
                 and "ClassVar" not in ast.unparse(i.annotation))


def check_names(cfg: Any) -> None:
    """ConfigError (one line) for the first unknown key, dataset, ordering expression, strategy or
    hyperparameter in `cfg` (the merged, unvalidated configuration); what has the wrong shape is skipped
    here and reported by validation."""
    if not isinstance(cfg, dict):
        return
    _check_keys(cfg)
    try:
        known = known_datasets()
    except (OSError, ValueError):  # a damaged registry file: validation says how to restore it
        return
    suite = cfg.get("suite")
    if isinstance(suite, list) and all(isinstance(d, str) for d in suite):
        unknown = [d for d in suite if d not in known]
        if unknown:
            raise ConfigError(f"unknown dataset {', '.join(map(repr, unknown))} in suite; available: "
                              f"{', '.join(known)}" + did_you_mean(unknown[0], known))
    orderings = cfg.get("orderings")
    if isinstance(orderings, list) and all(isinstance(o, str) or (isinstance(o, list) and all(
            isinstance(d, str) for d in o)) for o in orderings):
        try:  # against every known dataset: what the suite does not hold is validation's to say
            expand_orderings(orderings, known)
        except OrderingError as e:
            raise ConfigError(str(e)) from None
    _check_strategies(cfg)


def _check_keys(cfg: dict) -> None:
    for section in SCHEMA:
        node = cfg.get(section) if section else cfg
        if not isinstance(node, dict):
            continue
        allowed = fields(section)
        for key in node:
            if key not in allowed:
                where = f"{section}.{key}" if section else str(key)
                raise ConfigError(f"config: unknown setting {where!r}; allowed{' in ' + section if section else ''}: "
                                  f"{', '.join(allowed)}{did_you_mean(key, list(allowed))}; fix the YAML file or "
                                  "override with --set KEY=VALUE")


_CATALOG: dict[tuple, tuple[dict, dict]] = {}


def _catalog() -> tuple[dict, dict[str, str]]:
    """strategies.catalog.catalog() and its problems, read again only when a strategy file changed."""
    from strategies.catalog import HERE, catalog

    key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(HERE.glob("*.py")))
    if key not in _CATALOG:
        problems: dict[str, str] = {}
        _CATALOG.clear()
        _CATALOG[key] = catalog(problems=problems), problems
    return _CATALOG[key]


def _check_strategies(cfg: dict) -> None:
    from strategies.spec import RUN_KEYS, SpecError, parse_spec

    entries, problems = _catalog()
    names = list(entries)
    defaults = cfg.get("strategy_defaults")
    if isinstance(defaults, dict) and not problems:
        unknown = sorted(set(map(str, defaults)) - set(names))
        if unknown:
            raise ConfigError(f"strategy_defaults names unknown strateg{'ies' if len(unknown) > 1 else 'y'} "
                              f"{', '.join(unknown)}; available: {', '.join(names)}" + did_you_mean(unknown[0], names))
    specs = cfg.get("strategies")
    for spec in specs if isinstance(specs, list) else []:
        try:
            if isinstance(spec, str):
                name, params = parse_spec(spec)
            elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
                name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
            else:
                continue  # validation names what is wrong with it
        except SpecError as e:
            raise ConfigError(str(e)) from None
        if name not in entries:
            if problems:  # a skipped file may hold it: the registry says why
                continue
            raise ConfigError(f"unknown strategy {name!r}; available: {', '.join(names)}" + did_you_mean(name, names))
        allowed = [p.name for p in entries[name].params]
        unknown = sorted(set(params) - set(allowed) - set(RUN_KEYS))
        if unknown:
            raise ConfigError(f"strategy {name!r} has no hyperparameter {', '.join(unknown)}; "
                              f"allowed: {', '.join(allowed) or 'none'}" + did_you_mean(unknown[0], allowed))
