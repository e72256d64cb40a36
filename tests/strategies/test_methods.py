"""Methods as the paper names them: a strategy entry's own head init (`ft:head_init=zs`), its label
("ZS-init-CE"), and the micro presets' runs left as they were."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

import strategies
from experiment import cli
from experiment import config as C
from strategies.catalog import catalog, extra_cost, method_label

ROOT = Path(__file__).resolve().parents[2]


def ids(cfg: dict) -> list[str]:
    return [r["run_id"] for r in C.plan(C.validate(copy.deepcopy(cfg)))]


def test_the_micro_presets_run_ids_are_those_of_their_expected_records():
    text = (ROOT / "docs" / "expected" / "micro.json").read_text()
    want = sorted(set(re.findall(r'"run_id": "([0-9a-f]{12})"', text)))
    assert sorted(ids(C.load_preset("micro"))) == want == ["f8dd0507ae79", "f97155813ff5"]


def test_an_entrys_head_init_is_its_runs_train_head_init():
    cfg = C.load_preset("micro")
    base = ids(cfg)
    # the experiment's own head init, given on the entry: the same runs, the same ids
    assert ids({**cfg, "strategies": ["ft:head_init=lp", {"name": "ldifs", "lam": 30, "head_init": "lp"}]}) == base
    # zs on the entry: the run that --set train.head_init=zs makes, with the same strategy config
    zs_entry = C.plan(C.validate({**cfg, "strategies": ["ft:head_init=zs"]}))
    zs_set = C.plan(C.validate({**cfg, "strategies": ["ft"], "train": {**cfg["train"], "head_init": "zs"}}))
    assert [r["run_id"] for r in zs_entry] == [r["run_id"] for r in zs_set]
    assert zs_entry[0]["strategy"] == {"name": "ft"} and zs_entry[0]["train"]["head_init"] == "zs"
    # both inits in one experiment: two methods, told apart by their runs' train section
    both = C.plan(C.validate({**cfg, "strategies": ["ft:head_init=zs", "ft"]}))
    assert [r["train"]["head_init"] for r in both] == ["zs", "lp"] and len({r["run_id"] for r in both}) == 2
    # a preset's strategy_defaults may give it too
    dflt = C.plan(C.validate({**cfg, "strategies": ["flyp"], "strategy_defaults": {"flyp": {"head_init": "zs"}}}))
    assert dflt[0]["train"]["head_init"] == "zs" and dflt[0]["strategy"] == {"name": "flyp", "ce": 0.0}


def test_the_same_method_twice_is_refused_and_a_bad_head_init_is_one_line(capsys):
    cfg = C.load_preset("micro")
    with pytest.raises(C.ConfigError, match="asked for twice"):
        C.validate({**cfg, "strategies": ["ft:head_init=zs", {"name": "ft", "head_init": "zs"}]})
    with pytest.raises(C.ConfigError, match="asked for twice"):  # lp is the experiment's: the same runs as ft
        C.validate({**cfg, "strategies": ["ft", "ft:head_init=lp"]})
    for bad in ("ft:head_init=xs", "ft:head_init=[lp,zs]"):
        assert cli.main(["--strategies", bad, "--dry-run", "--out", "/nonexistent-out"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "head_init must be one of lp, zs" in err[0] and "ft:head_init=zs" in err[0], err


def test_method_labels_as_the_paper_names_them():
    assert [method_label("ft", h) for h in ("zs", "lp")] == ["ZS-init-CE", "LP-init-CE"]
    assert [method_label("ldifs", h) for h in ("zs", "lp")] == ["ZS-init-LDIFS", "LP-init-LDIFS"]
    assert method_label("l2sp", "lp") == "LP-init-L2SP"
    # a name that implies its init is bare under it, qualified under the other
    assert (method_label("flyp", "zs"), method_label("flyp", "lp")) == ("FLYP", "LP-init-FLYP")
    assert (method_label("lp_ft", "lp"), method_label("lp_ft", "zs")) == ("LP-FT", "ZS-init-LP-FT")
    # a strategy the catalog does not know keeps its registry name
    assert method_label("my_new_strategy", "zs") == "ZS-init-my_new_strategy"


def test_the_catalogs_paper_names_and_costs_are_the_classes():
    for name, entry in catalog().items():
        cls = strategies.get(name)
        assert entry.paper_name == getattr(cls, "paper_name", None), name
        assert entry.paper_init == getattr(cls, "paper_init", None), name
        assert extra_cost(name) == (getattr(cls, "extra_forward", 0.0), getattr(cls, "extra_epochs", 0.0)), name
    assert extra_cost("ldifs") == (pytest.approx(1 / 3), 0.0) and extra_cost("ewc") == (0.0, 1.0)
