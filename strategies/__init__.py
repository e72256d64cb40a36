"""Strategy registry. A strategy is one file in this folder that registers itself:

    @register("name")
    @dataclass
    class MyStrategy(Strategy):
        \"\"\"One line: what it does.\"\"\"
        lam: float = 1.0   # what lam weighs
        def plugins(self, model): return [MyPlugin(self.lam)]

Every module here is imported on first use of the registry. A file that fails to import, registers
what cannot be registered, or registers a name another file registers is skipped (`skipped()`: one
line each, which the command line prints once); the others work.
Nothing outside this folder names a strategy. A list of values in a spec sweeps a hyperparameter
(`ldifs:lam=[1,10,100]` is three runs); `expand` states the rule for list-valued hyperparameters.

Longer than 300 lines because what makes a strategy usable (its name, its fields against the keys a run
config reserves, one file per name, a broken user file skipped in one line) and how specs become run
configs are one contract: strategies/catalog.py applies the same rules without importing the files.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import importlib
import inspect
import itertools
import pkgutil
import re
import sys
import traceback
import types
import typing
from pathlib import Path
from typing import Any, Callable

from benchmark.coerce import coerce

from .spec import (NAME_RULE, RESERVED_FIELDS, RUN_KEYS, SpecError, StrategyFileError,  # noqa: F401
                   clash_problem, entry_parts, parse_spec, registration_problem)

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


_loading = False  # while _load_all imports the folder: registrations are collected, then resolved
_claims: dict[str, list[type]] = {}
_SKIPPED: dict[str, tuple[str, set[str]]] = {}  # "strategies/x.py" -> (problem, names it may register)


def register(name: str) -> Callable[[type], type]:
    from .base import Strategy

    def deco(cls: type) -> type:
        ok = dataclasses.is_dataclass(cls) and isinstance(cls, type) and issubclass(cls, Strategy)
        fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
        problem = registration_problem(name, fields, is_dataclass=dataclasses.is_dataclass(cls))
        if problem is None and not ok:
            problem = f"strategy {name!r} must be a dataclass deriving from strategies.base.Strategy"
        if problem:
            raise StrategyFileError(problem)
        if _loading:  # clashes between files are settled once the whole folder is read (_load_all)
            _claims.setdefault(name, []).append(cls)
            cls.name = name
            return cls
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"strategy {name!r} registered twice ({_REGISTRY[name].__module__}, {cls.__module__})")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _file_of(module: str) -> str:
    return f"strategies/{module.rpartition('.')[2]}.py"


def _where(e: BaseException, path: Path) -> str:
    """'line N: ' of the deepest frame of `e` in `path` (or of a SyntaxError in it); '' if none."""
    if isinstance(e, SyntaxError) and e.lineno and Path(e.filename or "").resolve() == path.resolve():
        return f"line {e.lineno}: "
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if Path(frame.f_code.co_filename).resolve() == path.resolve():
            line = lineno
    return f"line {line}: " if line else ""


def _describe(e: BaseException) -> str:
    if isinstance(e, StrategyFileError):
        return str(e)
    if isinstance(e, SyntaxError):
        return f"{type(e).__name__}: {e.msg}"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}{': ' + text[:300] if text else ''}"


def _load_all() -> None:
    """Import every strategy file of the folder. A file that cannot be imported (a syntax error, a failed
    import, an exception at import) or registers what cannot be registered is skipped, with one line
    (`skipped()`); so is a strategy whose name a second file registers, except in the file named after it."""
    global _loaded, _loading
    if _loaded:
        return
    from . import catalog

    _SKIPPED.clear()
    _claims.clear()
    folder = Path(__path__[0])
    _loading = True
    try:
        for mod in pkgutil.iter_modules(__path__):
            if mod.name in ("base", "spec", "catalog") or mod.name.startswith("_"):
                continue
            module = f"{__name__}.{mod.name}"
            if module in sys.modules:  # read by an earlier scan: its registrations count again
                for obj in list(vars(sys.modules[module]).values()):
                    if isinstance(obj, type) and obj.__module__ == module and isinstance(obj.__dict__.get("name"), str) \
                            and obj.__dict__["name"]:
                        _claims.setdefault(obj.name, []).append(obj)
                continue
            try:
                importlib.import_module(module)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - a user's file: any failure skips it, in one line
                sys.modules.pop(module, None)
                for classes in _claims.values():
                    classes[:] = [c for c in classes if c.__module__ != module]
                path = folder / f"{mod.name}.py"
                _SKIPPED[_file_of(module)] = (f"{_where(e, path)}{_describe(e)}",
                                              {mod.name, *catalog.registered_names(path)})
    finally:
        _loading = False
    for name, classes in sorted(_claims.items()):
        if len(classes) == 1:
            _REGISTRY[name] = classes[0]
            continue
        files = [_file_of(c.__module__) for c in classes]
        owner = next((c for c in classes if c.__module__.rpartition(".")[2] == name), None)
        if owner is not None:
            _REGISTRY[name] = owner
        for c, f in zip(classes, files):
            if c is not owner:
                sys.modules.pop(c.__module__, None)  # read again (and skipped again) by the next scan
                line = f"line {inspect.getsourcelines(c)[1]}: " if _has_source(c) else ""
                _SKIPPED[f] = (line + clash_problem(name, f, _file_of(owner.__module__) if owner else None,
                                                    [x for x in files if x != f]), {name})
    _claims.clear()
    _loaded = True


def _has_source(cls: type) -> bool:
    try:
        inspect.getsourcelines(cls)
        return True
    except (OSError, TypeError):
        return False


def skipped() -> list[str]:
    """One line per strategy file (or strategy) the registry skipped, saying where and why."""
    _load_all()
    return [f"{file} is skipped: {problem}; the other strategies work" for file, (problem, _) in sorted(_SKIPPED.items())]


def skipped_for(name: str) -> str | None:
    """The line of a skipped file that may hold strategy `name` (so that asking for it says why it is
    missing), or None."""
    _load_all()
    for file, (problem, names) in sorted(_SKIPPED.items()):
        if name in names:
            return f"strategy {name!r} is not available: {file} is skipped ({problem}); fix the file"
    return None


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get(name: str) -> type[Strategy]:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(name)
    return _REGISTRY[name]


def fault_location(strategy: str, e: BaseException) -> str | None:
    """'strategies/<file>.py line N' when the traceback of `e` passes through the file of strategy
    `strategy` (its deepest frame there): an error of the strategy's own code. None otherwise (the
    suite's, the disk's, the memory's: not the strategy's to answer for)."""
    if isinstance(e, (OSError, MemoryError)):
        return None
    try:
        path = Path(inspect.getsourcefile(get(strategy)) or "").resolve()
    except (KeyError, TypeError, OSError):
        return None
    line = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        if Path(frame.f_code.co_filename).resolve() == path:
            line = lineno
    return f"strategies/{path.name} line {line}" if line else None


def _get_or_explain(name: str) -> type[Strategy]:
    try:
        return get(name)
    except KeyError:
        raise SpecError(skipped_for(name) or f"unknown strategy {name!r}; available: {', '.join(available())}") from None


def build(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate a registered strategy with hyperparameter overrides, checked against its fields."""
    cls = _get_or_explain(name)
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
    from benchmark.text import value_problem

    for k, v in dataclasses.asdict(obj).items():  # it lands in labels, tables and plots: never as markup
        why = value_problem(v)
        if why:
            raise SpecError(f"strategy {name!r}: {k}={why}; give a plain value")
    return obj


def to_config(strategy: Strategy) -> dict[str, Any]:
    """A strategy's identity in a run config: name and every hyperparameter (defaults included)."""
    return {"name": strategy.name, **dataclasses.asdict(strategy)}


def from_config(spec: dict[str, Any]) -> Strategy:
    """The inverse of to_config: {"name": ..., **hyperparameters} -> a checked strategy. The run settings a
    validated config's entry may carry (spec.RUN_KEYS: head_init) are not hyperparameters and are ignored."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise SpecError(f"a strategy in a config is a name, a spec string or a mapping with `name`, got {spec!r}")
    return build(spec["name"], {k: v for k, v in spec.items() if k != "name" and k not in RUN_KEYS})


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
    parts = entry_parts(spec)
    if parts is None:
        raise SpecError(f"a strategy in a config is a name, a spec string or a mapping with `name`, got {spec!r}")
    name, params = parts
    cls = _get_or_explain(name)
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


__all__ = ["Strategy", "register", "available", "skipped", "get", "build", "parse_spec", "to_config", "from_config",
           "expand", "SpecError", "check_range"]
