"""The configuration the command line (and its preset) gives, checked before the heavy imports, so that
a mistake is answered in a moment instead of after some seconds of torch, Avalanche and open_clip: every
key, type and range (the schema, experiment/schema.py), dataset names in `suite` and `orderings` and the
ordering expressions, strategy names and their hyperparameters (strategies.catalog reads the strategy
files without importing them). Each problem is one ConfigError line, with "did you mean" where a name is
close and the full list where a dataset is unknown.

experiment.config.validate starts with these checks, so that a mistake gets the same line from the
command and from a program; it adds what needs the models and the strategies' own code.
"""
from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from benchmark.data.registry import known_datasets
from benchmark.text import did_you_mean

from .orderings import OrderingError, expand_orderings
from .schema import ExperimentConfig, one_line
from .settings import ConfigError

def check_input(cfg: Any) -> ExperimentConfig:
    """The configuration `cfg` (merged, not yet validated) read into the schema, its names checked;
    ConfigError (one line) for the first problem."""
    if not isinstance(cfg, dict):
        raise ConfigError("a config is a mapping of settings (see configs/micro.yaml)")
    try:
        c = ExperimentConfig.model_validate(copy.deepcopy(cfg))
    except ValidationError as e:
        raise ConfigError(f"config: {one_line(e)}; fix the YAML file or override with --set KEY=VALUE") from None
    try:
        known = known_datasets()
    except ValueError:  # a damaged registry file (DataError): validation says how to restore it
        return c
    unknown = [d for d in c.suite if d not in known]
    if unknown:
        raise ConfigError(f"unknown dataset {', '.join(map(repr, unknown))} in suite; available: "
                          f"{', '.join(known)}" + did_you_mean(unknown[0], known))
    if all(isinstance(o, str) or (isinstance(o, list) and all(isinstance(d, str) for d in o)) for o in c.orderings):
        try:  # against every known dataset: what the suite does not hold is validation's to say
            expand_orderings(c.orderings, known)
        except OrderingError as e:
            raise ConfigError(str(e)) from None
    _check_strategies(c.strategies, c.strategy_defaults)
    return c


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


def _check_strategies(specs: list, defaults: dict) -> None:
    from strategies.spec import RUN_KEYS, SpecError, entry_parts

    entries, problems = _catalog()
    names = list(entries)
    if defaults and not problems:
        unknown = sorted(set(map(str, defaults)) - set(names))
        if unknown:
            raise ConfigError(f"strategy_defaults names unknown strateg{'ies' if len(unknown) > 1 else 'y'} "
                              f"{', '.join(unknown)}; available: {', '.join(names)}" + did_you_mean(unknown[0], names))
    for spec in specs:
        try:
            parts = entry_parts(spec)
        except SpecError as e:
            raise ConfigError(str(e)) from None
        if parts is None:
            continue  # validation names what is wrong with it
        name, params = parts
        if name not in entries:
            if problems:  # a skipped file may hold it: the registry says why
                continue
            raise ConfigError(f"unknown strategy {name!r}; available: {', '.join(names)}" + did_you_mean(name, names))
        allowed = [p.name for p in entries[name].params]
        unknown = sorted(set(params) - set(allowed) - set(RUN_KEYS))
        if unknown:
            raise ConfigError(f"strategy {name!r} has no hyperparameter {', '.join(unknown)}; "
                              f"allowed: {', '.join(allowed) or 'none'}" + did_you_mean(unknown[0], allowed))
