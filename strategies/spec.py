"""Strategy specs as written in configs and on the command line: `name` or `name:key=value,...`.

Parsing a spec needs no strategy, torch or model: the reporting side (evaluation/reporting/evidence.py) reads
the specs of a preset with it.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from benchmark import strict_yaml


class SpecError(ValueError):
    """A strategy spec that names an unknown strategy or hyperparameter, or a bad value."""


# Keys a strategy entry may carry that are settings of its runs, not hyperparameters of the strategy:
# `ft:head_init=zs` is plain fine-tuning whose runs start each task's head from the zero-shot head (the
# paper's ZS-init-CE), whatever the experiment's `train.head_init`. experiment.config.plan moves it into
# the run's `train` section, so a run's strategy config (and its id) is the same as with --set train.head_init.
RUN_KEYS = ("head_init",)
HEAD_INITS = ("lp", "zs")


def check_run_keys(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` (the RUN_KEYS of one strategy entry), checked: one line naming the bad value."""
    hi = settings.get("head_init")
    if "head_init" in settings and (not isinstance(hi, str) or hi not in HEAD_INITS):
        raise SpecError(f"strategy {name!r}: head_init must be one of {', '.join(HEAD_INITS)} (one value, not a "
                        f"sweep), got {hi!r}; e.g. {name}:head_init=zs")
    return settings


def entry_parts(spec: Any) -> tuple[str, dict[str, Any]] | None:
    """A strategy entry as a config or the command line writes it ("ldifs:lam=1" or {"name": "ldifs",
    "lam": 1}) -> (name, parameters as written); None for an entry of neither form. SpecError for a
    spec string that cannot be parsed."""
    if isinstance(spec, str):
        return parse_spec(spec)
    if isinstance(spec, dict) and isinstance(spec.get("name"), str):
        return spec["name"], {k: v for k, v in spec.items() if k != "name"}
    return None


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'ldifs' or 'ldifs:lam=1,layers=[0,4,7]' -> ('ldifs', {'lam': 1, 'layers': [0, 4, 7]})."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    for item in _split_top_level(rest):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"strategy spec {spec!r}: expected name:key=value,key=value")
        if key.strip() in params:
            raise SpecError(f"strategy spec {spec[:80]!r}: {key.strip()} is given twice; give each hyperparameter "
                            "once (a list sweeps it: lam=[10,100])")
        try:
            params[key.strip()] = strict_yaml.loads(value)
        except strict_yaml.StrictYamlError as e:
            raise SpecError(f"strategy spec {spec[:80]!r}: {key.strip()}: {e}") from None
        except yaml.YAMLError:
            raise SpecError(f"strategy spec {spec!r}: {item!r} is not valid YAML; write lists as [1,10]") from None
    return name.strip(), params


def _split_top_level(s: str) -> list[str]:
    """Split on commas that are not inside brackets: 'a=1,b=[0,4]' -> ['a=1', 'b=[0,4]']."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [x for x in out if x.strip()]


# Keys the suite stores beside a strategy's hyperparameters in a run's config (to_config): a
# hyperparameter of that name would overwrite them, so a strategy that declares one is refused.
RESERVED_FIELDS = ("name", *RUN_KEYS)
NAME_RULE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")  # a registered name: letters, digits and _, a letter first


class StrategyFileError(ValueError):
    """A strategy class that cannot be registered (its file is skipped, in one line)."""


def registration_problem(name: Any, fields: list[str], is_dataclass: bool = True) -> str | None:
    """Why a class cannot be registered under `name` with these hyperparameters; None if it can. Shared
    by the registry and by strategies.catalog (which reads the files without importing them)."""
    if not isinstance(name, str) or not NAME_RULE.fullmatch(name):
        return (f"register({name!r}): a strategy's name is a letter followed by up to 39 letters, digits or _; "
                "rename it")
    if not is_dataclass:
        return f"strategy {name!r} is registered but is not a @dataclass; put @dataclass under @register"
    clash = [f for f in fields if f in RESERVED_FIELDS]
    if clash:
        return (f"strategy {name!r} declares a hyperparameter called {clash[0]!r}, the key under which runs record "
                f"the strategy's name (reserved: {', '.join(RESERVED_FIELDS)}); rename the field")
    return None


def clash_problem(name: str, file: str, owner: str | None, others: list[str]) -> str:
    """The line for a file that registers a name another file registers too."""
    if owner:
        return (f"registers strategy {name!r}, which {owner} (the file named after it) registers: give it "
                "another name")
    return (f"registers strategy {name!r}, which {', '.join(others)} also register(s); a name belongs to one "
            f"file: rename all but one (or name the file {name}.py)")
