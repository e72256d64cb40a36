"""Strategy specs as written in configs and on the command line: `name` or `name:key=value,...`.

Parsing a spec needs no strategy, torch or model: the reporting side (evaluation/reporting/evidence.py) reads
the specs of a preset with it.
"""
from __future__ import annotations

from typing import Any

import yaml

from benchmark import strict_yaml


class SpecError(ValueError):
    """A strategy spec that names an unknown strategy or hyperparameter, or a bad value."""


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
