"""Building blocks of the validated configuration (pydantic): every section refuses unknown keys,
non-finite numbers and values outside their range; `experiment.config` turns errors into one line.

Sections live beside the code that uses them (`training.TrainConfig`; the top-level sections in
`config.py`), so a layer declares its own settings and the config on top only assembles them.
"""
from __future__ import annotations

from typing import Annotated, Any

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
