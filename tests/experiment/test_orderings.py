"""Ordering expressions: explicit lists, perm:, random:K, reverse, and their limits."""
from __future__ import annotations

import itertools
import math

import pytest

from experiment.orderings import MAX_ORDERINGS, OrderingError, expand_orderings

KNOWN = ["svhn", "eurosat", "mnist", "cifar10", "dtd", "gtsrb"]


def test_explicit_lists_and_strings_keep_order_and_drop_repeats():
    got = expand_orderings(["svhn,eurosat", ["eurosat", "svhn"], " svhn , eurosat "], KNOWN)
    assert got == [["svhn", "eurosat"], ["eurosat", "svhn"]]


def test_the_paper_pair_with_reverse():
    assert expand_orderings(["svhn,eurosat", "reverse"], KNOWN) == [["svhn", "eurosat"], ["eurosat", "svhn"]]
    # reverse applies to every other item, wherever it stands, and adds nothing twice
    got = expand_orderings(["reverse", "svhn,eurosat,mnist", "dtd", "mnist,eurosat,svhn"], KNOWN)
    assert got == [["svhn", "eurosat", "mnist"], ["dtd"], ["mnist", "eurosat", "svhn"]]


def test_perm_gives_every_permutation_once():
    got = expand_orderings(["perm:svhn,eurosat,mnist"], KNOWN)
    assert len(got) == 6 and sorted(map(tuple, got)) == sorted(itertools.permutations(["svhn", "eurosat", "mnist"]))
    assert got[0] == ["svhn", "eurosat", "mnist"]
    # combined with an explicit ordering it already contains: no duplicate
    assert len(expand_orderings(["svhn,mnist,eurosat", "perm:svhn,eurosat,mnist"], KNOWN)) == 6


def test_perm_above_the_maximum_is_refused_in_one_line():
    n = 1
    while math.factorial(n + 1) <= MAX_ORDERINGS:
        n += 1
    names = [f"d{i}" for i in range(n + 1)]  # (n+1)! > MAX_ORDERINGS
    assert len(expand_orderings([f"perm:{','.join(names[:n])}"], names)) == math.factorial(n)
    with pytest.raises(OrderingError, match=f"more than the maximum of {MAX_ORDERINGS}") as e:
        expand_orderings([f"perm:{','.join(names)}"], names)
    assert "\n" not in str(e.value) and "random:K" in str(e.value)


def test_random_is_reproducible_from_the_seed_and_distinct():
    a = expand_orderings(["random:5"], KNOWN, seed=3)
    assert a == expand_orderings(["random:5"], KNOWN, seed=3)
    assert len(a) == 5 and len({tuple(o) for o in a}) == 5
    assert all(sorted(o) == sorted(KNOWN) for o in a)  # orderings of the whole suite
    assert a != expand_orderings(["random:5"], KNOWN, seed=4)


def test_random_of_a_given_set_and_every_ordering_of_it():
    got = expand_orderings(["random:6:svhn,eurosat,mnist"], KNOWN, seed=0)
    assert sorted(map(tuple, got)) == sorted(itertools.permutations(["svhn", "eurosat", "mnist"]))
    with pytest.raises(OrderingError, match="only 6 orderings"):
        expand_orderings(["random:7:svhn,eurosat,mnist"], KNOWN)


@pytest.mark.parametrize("item, message", [
    ("random:0", "K must be a positive integer"),
    ("random:x", "K must be a positive integer"),
    ("random:2:svhn,nope", "unknown dataset 'nope'"),
    ("perm:svhn,svhn", "each at most once"),
    ("perm:", "at least one dataset"),
    ("shuffle:svhn,mnist", "unknown ordering expression"),
    ("svhn,cifar100", "unknown dataset 'cifar100'"),
    ("svhn,svhn", "each at most once"),
])
def test_bad_items_are_one_line_errors(item, message):
    with pytest.raises(OrderingError, match=message) as e:
        expand_orderings([item], KNOWN)
    assert "\n" not in str(e.value)


def test_reverse_alone_is_refused_and_random_above_the_maximum():
    with pytest.raises(OrderingError, match="reverse"):
        expand_orderings(["reverse"], KNOWN)
    with pytest.raises(OrderingError, match="maximum"):
        expand_orderings([f"random:{MAX_ORDERINGS + 1}"], KNOWN)  # 6! = 720 exist, too many asked
    many = [f"perm:{','.join(KNOWN[:5])}", "reverse", "svhn,eurosat,mnist,cifar10,dtd,gtsrb"]
    with pytest.raises(OrderingError, match="the orderings together"):
        expand_orderings(many, KNOWN)


def test_ordering_error_is_a_value_error():
    assert issubclass(OrderingError, ValueError)
