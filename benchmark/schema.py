"""Building blocks of the validated configuration (pydantic): every section refuses unknown keys,
non-finite numbers and values outside their range; `experiment.config` turns errors into one line.

Sections live beside the code that uses them (`train_settings.TrainConfig`, `data/settings.py`; the
top-level sections in experiment/schema.py), so a layer declares its own settings and the config on top only assembles them.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Callable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _no_bool(v: Any) -> Any:
    # pydantic's lax mode reads True as 1; a boolean where a number belongs is a typo, not a value.
    if isinstance(v, bool):
        raise ValueError("a number is expected, not true/false")
    return v


def _strict_bool(v: Any) -> Any:
    # lax mode would read "yes", 1 or "on" as true; in a config file that is a typo, not a choice.
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def positive_grid(noun: str, at_most: float | None = None) -> Callable[[Any], Any]:
    """A validator of one positive number or a list of 1..20 of them (a grid from which the validation
    split chooses), each finite and, with `at_most`, no larger than it; a list comes back as a list of
    floats, one number as a float. `noun` names the value in the messages ("learning rate")."""
    what = f"a positive {noun}, or a list of them to choose from on the validation split"
    bound = "greater than 0" if at_most is None else f"greater than 0 and at most {at_most:g}"

    def check(v: Any) -> Any:
        many = isinstance(v, (list, tuple))
        items = v if many else [v]
        if not 1 <= len(items) <= 20:
            raise ValueError(f"give 1 to 20 values ({what})")
        out = []
        for c in items:
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
                raise ValueError(f"input should be a finite number ({what})")
            if not (c > 0 and (at_most is None or c <= at_most)):
                raise ValueError(f"input should be {bound} ({what})")
            out.append(float(c))
        return out if many else out[0]

    return check


def one_or_per_dataset(kind: type, lo: float, hi: float, what: str) -> Callable[[Any], Any]:
    """A validator of None, one number (`kind` int: in [lo, hi]; float: in (lo, hi]) or a mapping dataset
    name -> such a number (`train.lr`, `train.iterations`); `what` names the value in the messages."""

    def one(v):
        if isinstance(v, str) and kind is float:  # as pydantic's lax float: a numeric text is read as a number
            try:
                v = float(v)
            except ValueError:
                raise ValueError("input should be a valid number, unable to parse string as a number") from None
        if isinstance(v, bool):  # as _no_bool
            raise ValueError("a number is expected, not true/false")
        if not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            raise ValueError(f"input should be a valid {'integer' if kind is int else 'number'} ({what})")
        if not math.isfinite(v):
            raise ValueError(f"input should be a finite number ({what})")
        if kind is int:
            if not lo <= v <= hi:
                raise ValueError(f"input should be in {lo:g}..{hi:g} ({what})")
            return v
        if not lo < v:
            raise ValueError(f"input should be greater than {lo:g} ({what})")
        if not v <= hi:
            raise ValueError(f"input should be less than or equal to {hi:g} ({what})")
        return float(v)

    def check(v):
        if v is None:
            return None
        if isinstance(v, dict):
            if not v:
                raise ValueError(f"an empty mapping gives nothing ({what})")
            return {str(k): one(n) for k, n in v.items()}
        return one(v)

    return check


class Section(BaseModel):
    """A config section: unknown keys and non-finite floats are errors; assignment is validated."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_assignment=True)


Bool = Annotated[bool, BeforeValidator(_strict_bool)]
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
PositiveInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=1)]
NonNegInt = Annotated[int, BeforeValidator(_no_bool), Field(ge=0)]
PositiveFloat = Annotated[float, BeforeValidator(_no_bool), Field(gt=0)]
NonNegFloat = Annotated[float, BeforeValidator(_no_bool), Field(ge=0)]
