"""Values from YAML or the command line -> the types that dataclass fields declare."""
from __future__ import annotations

import math
from typing import Any


def coerce(annotation: Any, value: Any, name: str) -> Any:
    """Make a float field a float (YAML reads "1e-4" as a string and "1" as an int, and lam=1 and
    lam=1.0 must be the same run id), an int field an int; raise ValueError naming the field."""
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if not math.isfinite(f):  # nan and inf pass every range check and no run can use them
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return f
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if kind == "bool" and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value
