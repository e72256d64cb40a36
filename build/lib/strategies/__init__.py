"""Strategy registry. A strategy is one file in this folder that registers itself:

    @register("name")
    @dataclass
    class MyStrategy(Strategy):
        \"\"\"One line: what it does.\"\"\"
        lam: float = 1.0   # what lam weighs
        def plugins(self, model): return [MyPlugin(self.lam)]

Every module here is imported on first use of the registry; an import error is an error.
Nothing outside this folder names a strategy. A list of values in a spec sweeps a hyperparameter
(`ldifs:lam=[1,10,100]` is three runs); `expand` states the rule for list-valued hyperparameters.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import itertools
import pkgutil
import types
import typing
from typing import Any, Callable

from benchmark.coerce import coerce

from .spec import SpecError, parse_spec

if typing.TYPE_CHECKING:
    from .base import Strategy

# The largest weight a penalty (lam, ce) may have: far beyond any useful value, and small enough that a
# float32 loss times it does not overflow to inf (and the run to NaN) on its own.
LAM_MAX = 1e8
MAX_GRID = 10_000  # combinations one spec may stand for (a plan over 500 runs needs --yes anyway)
_REGISTRY: dict[str, type[Strategy]] = {}
_loaded = False


def __getattr__(name: str):
    """`Strategy` and `check_range` (strategies/base.py: torch and Avalanche) are imported on first use,
    so that reading specs (strategies.spec) and the reporting side that does so never import torch."""
    if name in ("Strategy", "check_range"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(name: str) -> Callable[[type], type]:
    from .base import Strategy

    def deco(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"strategy {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        if not (dataclasses.is_dataclass(cls) and issubclass(cls, Strategy)):
            raise TypeError(f"strategy {name!r} must be a dataclass deriving from strategies.base.Strategy")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name not in ("base", "spec") and not mod.name.startswith("_"):
                importlib.import_module(f"{__name__}.{mod.name}")
        _loaded = True


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> type[Strategy]:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def build(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate a registered strategy with hyperparameter overrides, checked against its fields."""
    try:
        cls = get(name)
    except KeyError:
        raise SpecError(f"unknown strategy {name!r}; available: {', '.join(available())}") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params or {}) - set(fields))
    if unknown:
        allowed = ", ".join(fields) or "none"
        raise SpecError(f"strategy {name!r} has no hyperparameter {', '.join(unknown)}; allowed: {allowed}")
    try:
        params = {k: coerce(fields[k].type, v, k) for k, v in (params or {}).items()}
        obj = cls(**params)
        obj.validate()
    except (TypeError, ValueError) as e:
        raise SpecError(f"strategy {name!r}: {e}") from None
    return obj


def to_config(strategy: Strategy) -> dict[str, Any]:
    """A strategy's identity in a run config: name and every hyperparameter (defaults included)."""
    return {"name": strategy.name, **dataclasses.asdict(strategy)}


def from_config(spec: dict[str, Any]) -> Strategy:
    """The inverse of to_config: {"name": ..., **hyperparameters} -> a checked strategy."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise SpecError(f"a strategy in a config is a name, a spec string or a mapping with `name`, got {spec!r}")
    return build(spec["name"], {k: v for k, v in spec.items() if k != "name"})


def expand(spec: str | dict[str, Any]) -> list[dict[str, Any]]:
    """A strategy as written in a config or on the command line ("ldifs:lam=1" or {"name": "ldifs",
    "lam": 1}) -> the normalised run configs it stands for (to_config of each), checked.

    Grids: a list given to a hyperparameter whose type takes no list (lam: float) is a grid axis, and
    the spec stands for one config per combination of axes, in the order written:
    `ewc:lam=[100,1000],mode=[separate,online]` -> 4 configs. A hyperparameter whose type takes a list
    (ldifs `layers`) reads a flat list as one value (`layers=[0,4,7]`: one config); it is swept by a
    list whose items include lists, each item one value (`layers=[[0,4,7],[11],last]`: three configs).
    Duplicates (lam=[1,1.0]) are dropped. An empty grid is an error.
    """
    if isinstance(spec, str):
        name, params = parse_spec(spec)
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        raise SpecError(f"a strategy in a config is a name, a spec string or a mapping with `name`, got {spec!r}")
    try:
        cls = get(name)
    except KeyError:
        raise SpecError(f"unknown strategy {name!r}; available: {', '.join(available())}") from None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:  # checked here too, so that a grid over an unknown key names it, not its first value
        raise SpecError(f"strategy {name!r} has no hyperparameter {', '.join(unknown)}; "
                        f"allowed: {', '.join(fields) or 'none'}")
    hints = _type_hints(cls)
    axes: list[list[Any]] = []
    for key, value in params.items():
        takes_list = _accepts_list(hints.get(key, fields[key].type))
        is_grid = isinstance(value, list) and (not takes_list or any(isinstance(v, list) for v in value))
        if is_grid and not value:
            raise SpecError(f"strategy {name!r}: {key}=[] is an empty grid; give at least one value, "
                            f"e.g. {key}=[1,10]")
        axes.append(list(value) if is_grid else [value])
    size = 1
    for a in axes:
        size *= len(a)
    if size > MAX_GRID:
        raise SpecError(f"strategy {name!r}: the grid has {size} combinations, more than the limit of {MAX_GRID}; "
                        "sweep fewer values at once")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for combo in itertools.product(*axes):
        cfg = to_config(build(name, dict(zip(params, combo))))
        key = repr(sorted(cfg.items()))
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def _type_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that cannot be resolved: fall back to its text (see _accepts_list)
        return {}


def _accepts_list(tp: Any) -> bool:
    """Whether a field annotation admits a list value (list, tuple, Sequence, Any, or a union with one)."""
    if isinstance(tp, str):  # unresolved annotation text, e.g. "Union[str, list]"
        t = tp.lower()
        return any(w in t for w in ("list", "tuple", "sequence", "any"))
    if tp is Any or tp in (list, tuple):
        return True
    origin = typing.get_origin(tp)
    if origin in (list, tuple, collections.abc.Sequence):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts_list(a) for a in typing.get_args(tp))
    return False


__all__ = ["Strategy", "register", "available", "get", "build", "parse_spec", "to_config", "from_config",
           "expand", "SpecError", "check_range"]
