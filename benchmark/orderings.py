"""Task orderings from the config: explicit lists of dataset names -> the list of orderings to run."""
from __future__ import annotations

from typing import Any, Sequence


class OrderingError(ValueError):
    """An ordering that names an unknown dataset, repeats one, or cannot be expanded."""


def expand_orderings(items: Sequence[Any], known: Sequence[str], seed: int = 0) -> list[list[str]]:
    """Each item is a list of dataset names or a string "a,b,c"; returns the orderings in order,
    without duplicates. `known` are the datasets an ordering may use (the suite); `seed` is for
    expressions that draw orderings at random. Raises OrderingError with one line naming what is
    allowed."""
    out: list[list[str]] = []
    for item in items:
        o = item.split(",") if isinstance(item, str) else list(item)
        o = [str(d).strip() for d in o if str(d).strip()]
        bad = [d for d in o if d not in known]
        if bad:
            raise OrderingError(f"unknown dataset {', '.join(map(repr, bad))} in ordering {','.join(o)}; "
                                f"available: {', '.join(known)}")
        if not o or len(set(o)) != len(o):
            raise OrderingError(f"ordering {','.join(o)!r} must name at least one dataset, each at most once")
        if o not in out:
            out.append(o)
    return out
