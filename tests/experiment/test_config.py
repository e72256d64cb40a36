"""Presets, overrides and the plan: stable run ids, typed values, one clear error per bad input."""
from __future__ import annotations

import pytest

from experiment import config as C


def micro(**changes):
    cfg = C.load_preset("micro")
    cfg.update(changes)
    return cfg


def test_plan_is_the_product_of_orderings_strategies_and_seeds_with_stable_ids():
    two = [["mnist", "fashion_mnist"], ["fashion_mnist", "mnist"]]
    cfg = C.validate(micro(orderings=two, seeds=[0, 1], strategies=["ft", "ldifs", "ldifs:lam=1"]))
    runs = C.plan(cfg)
    assert len(runs) == 2 * 3 * 2 and len({r["run_id"] for r in runs}) == 12
    again = C.plan(C.validate(micro(orderings=two, seeds=[0, 1], strategies=["ft", "ldifs", "ldifs:lam=1.0"])))
    assert [r["run_id"] for r in runs] == [r["run_id"] for r in again]
    # where a run executes does not change its id; what it computes does, and on the CPU the thread
    # count changes floating-point reductions, hence the records
    base = C.plan(C.validate(micro()))[0]["run_id"]
    assert C.plan(C.validate(micro(device="cpu")))[0]["run_id"] == base
    assert C.plan(C.validate(micro(threads=7)))[0]["run_id"] != base
    assert C.plan(C.validate(micro(jobs=3, tensorboard=True)))[0]["run_id"] == base  # execution, not results
    # the numeric path: native is the default and leaves the run (hence ids made before the setting
    # existed) as it was; portable computes other floats, so it is another run
    native = C.plan(C.validate(micro(numerics="native")))[0]
    assert native["run_id"] == base and "numerics" not in native
    portable = C.plan(C.validate(micro(numerics="portable", threads=1)))[0]
    assert portable["run_id"] != base and portable["numerics"] == "portable"
    other = micro()
    C.set_dotted(other, "train.lr=2e-4")
    assert C.plan(C.validate(other))[0]["run_id"] != C.plan(C.validate(micro()))[0]["run_id"]


def test_dotted_overrides_are_typed():
    cfg = micro()
    C.set_dotted(cfg, "train.lr=1e-4")  # YAML 1.1 reads this as a string
    C.set_dotted(cfg, "data.max_train=120")
    v = C.validate(cfg)
    assert v["train"]["lr"] == 1e-4 and isinstance(v["train"]["lr"], float)
    assert v["data"]["max_train"] == 120
    assert v["orderings"][0] == ["mnist", "fashion_mnist"]


@pytest.mark.parametrize("changes, message", [
    ({"suite": ["mnist", "imagenet"]}, "unknown dataset 'imagenet' in suite"),
    ({"orderings": ["mnist,mnist"]}, "each at most once"),
    ({"orderings": ["mnist,textures"], "suite": ["mnist"]}, "which the suite does not score"),
    ({"data": {"max_train": 0}}, "data.max_train: input should be greater than or equal to 1"),
    ({"data": {"n": 3}}, "unknown setting 'data.n'; allowed in data: max_train, max_test"),
    ({"train": {"epochs": "two"}}, "train.epochs: input should be a valid integer"),
    ({"train": {"head_init": "random"}}, "train.head_init: input should be 'lp' or 'zs'"),
])
def test_bad_values_raise_one_config_error(changes, message):
    with pytest.raises(C.ConfigError, match=message):
        C.validate(micro(**changes))


def test_missing_preset_names_the_presets():
    with pytest.raises(C.ConfigError, match="presets: micro"):
        C.load_preset("nonexistent")


def test_where_the_data_lives_is_not_part_of_a_run_id_but_what_is_computed_is():
    base = C.plan(C.validate(micro()))[0]["run_id"]
    moved = micro()
    for s in ("data.root=/elsewhere", "data.cache_dir=/tmp/c", "data.download=true"):
        C.set_dotted(moved, s)
    assert C.plan(C.validate(moved))[0]["run_id"] == base
    augmented = micro()
    C.set_dotted(augmented, "data.train_transform=openclip")
    assert C.plan(C.validate(augmented))[0]["run_id"] != base


def test_strategy_defaults_of_a_preset_fill_what_a_spec_leaves_unset():
    from experiment.config import ConfigError, load_preset, plan, validate

    cfg = load_preset("micro")
    assert cfg["strategy_defaults"] == {"ldifs": {"lam": 30}}
    explicit = [r["run_id"] for r in plan(validate(cfg))]
    cfg["strategies"] = ["ft", "ldifs"]  # the model's lambda, not the code's 10
    assert [r["run_id"] for r in plan(validate(cfg))] == explicit
    cfg["strategies"] = ["ldifs:lam=[1,10]", "ldifs:anchor=pretrained"]  # a spec's own values win
    got = [(s["lam"], s["anchor"]) for s in validate(cfg)["strategies"]]
    assert got == [(1.0, "previous"), (10.0, "previous"), (30.0, "pretrained")]
    cfg["strategy_defaults"] = {"nope": {"lam": 1}}
    with pytest.raises(ConfigError, match="strategy_defaults names unknown strategy nope"):
        validate(cfg)
