"""Task orderings from the config: explicit lists and ordering expressions -> the orderings to run.

Each item of `orderings` (YAML list or `--orderings` arguments) is one of:

    a,b,c               one explicit ordering (or a YAML list [a, b, c])
    perm:a,b,c          every permutation of the listed datasets (at most MAX_ORDERINGS of them)
    random:K            K distinct random orderings of all the suite's datasets
    random:K:a,b,c,d    K distinct random orderings of the listed datasets
    reverse             adds the reverse of every ordering given by the other items

The paper's pair, SVHN>EuroSAT against EuroSAT>SVHN: `--orderings svhn,eurosat reverse`.
Random orderings are drawn with `random.Random(seed)`: the same seed gives the same orderings.
The result keeps the order in which orderings are first produced and drops repeats.
"""
from __future__ import annotations

import itertools
import math
import random
from typing import Any, Sequence

from benchmark.text import did_you_mean

# Every ordering is one run per strategy and seed; 120 = all orderings of 5 datasets.
MAX_ORDERINGS = 120
SYNTAX = "a,b,c | perm:a,b,c | random:K | random:K:a,b,c | reverse"


class OrderingError(ValueError):
    """An ordering that names an unknown dataset, repeats one, or cannot be expanded."""


def _names(text_or_list: Any, known: Sequence[str], where: str) -> list[str]:
    o = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list)
    o = [str(d).strip() for d in o if str(d).strip()]
    bad = [d for d in o if d not in known]
    if bad:
        raise OrderingError(f"unknown dataset {', '.join(map(repr, bad))} in ordering {where}; "
                            f"available: {', '.join(known)}" + did_you_mean(bad[0], known))
    if not o or len(set(o)) != len(o):
        raise OrderingError(f"ordering {where!r} must name at least one dataset, each at most once")
    return o


def _too_many(n: int, where: str) -> OrderingError:
    return OrderingError(f"{where} gives {n} orderings, more than the maximum of {MAX_ORDERINGS}; "
                         f"use random:K:a,b,... to sample K of them")


def _permutations(spec: str, known: Sequence[str]) -> list[list[str]]:
    names = _names(spec, known, f"perm:{spec}")
    n = math.factorial(len(names))
    if n > MAX_ORDERINGS:
        raise _too_many(n, f"perm:{spec}")
    return [list(p) for p in itertools.permutations(names)]


def _random(spec: str, known: Sequence[str], seed: int) -> list[list[str]]:
    count, _, names = spec.partition(":")
    try:
        k = int(count)
    except ValueError:
        k = 0
    if k < 1:
        raise OrderingError(f"random:{spec}: K must be a positive integer, as in random:3 or random:3:a,b,c")
    names = _names(names, known, f"random:{spec}") if names else list(known)
    possible = math.factorial(len(names))
    if k > possible:
        raise OrderingError(f"random:{spec}: {len(names)} datasets have only {possible} orderings; ask for at most that")
    if k > MAX_ORDERINGS:
        raise _too_many(k, f"random:{spec}")
    rng = random.Random(seed)
    out: list[list[str]] = []
    while len(out) < k:  # distinct draws; k <= possible, so this ends
        o = rng.sample(names, len(names))
        if o not in out:
            out.append(o)
    return out


def expand_orderings(items: Sequence[Any], known: Sequence[str], seed: int = 0) -> list[list[str]]:
    """Expand the config's ordering items (see the module docstring) into orderings, in order,
    without duplicates. `known` are the datasets an ordering may use (the suite); `seed` draws
    `random:` orderings. Raises OrderingError with one line naming what is allowed."""
    if isinstance(items, str):
        items = [items]
    known = list(known)
    out: list[list[str]] = []
    reverse = False

    def add(o: list[str]) -> None:
        if o not in out:
            out.append(o)

    for item in items:
        if isinstance(item, str) and item.strip() == "reverse":
            reverse = True
            continue
        if isinstance(item, str) and ":" in item:
            kind, _, spec = item.strip().partition(":")
            if kind == "perm":
                produced = _permutations(spec, known)
            elif kind == "random":
                produced = _random(spec, known, seed)
            else:
                raise OrderingError(f"unknown ordering expression {item!r}; allowed: {SYNTAX}"
                                    + did_you_mean(kind, ["perm", "random"]))
        else:
            produced = [_names(item, known, item if isinstance(item, str) else ",".join(map(str, item)))]
        for o in produced:
            add(o)
    if reverse:
        if not out:
            raise OrderingError(f"'reverse' needs at least one other ordering to reverse; allowed: {SYNTAX}")
        for o in list(out):
            add(o[::-1])
    if len(out) > MAX_ORDERINGS:
        raise _too_many(len(out), "the orderings together")
    return out
