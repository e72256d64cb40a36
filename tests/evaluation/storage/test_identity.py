"""Run identity (evaluation/storage/identity.py): what enters a run's config and id, worked out by hand."""
from __future__ import annotations

import hashlib
import json

from evaluation.storage.identity import (RunSpec, drop_legacy, hashed_config, id_of, run_id, settings_of,
                                         training_key)

TRAIN = {"lr": 0.01, "head_init": "lp", "probe": "sklearn", "probe_lr": [0.1], "probe_steps": 5,
         "checkpoint": "end", "label_smoothing": 0.0}
CFG = {"model": {"name": "m"}, "suite": ["a", "b"], "data": {"root": "/data", "variants": []}, "train": TRAIN,
       "threads": 1, "numerics": "native", "drift": 64, "device": "cpu"}


def test_id_is_the_sha1_of_the_sorted_json_without_execution_and_location_keys():
    config = {"run_id": "x", "seed": 1, "device": "cuda", "data": {"root": "/a", "cache_dir": "/c", "n": 2}}
    assert hashed_config(config) == {"seed": 1, "data": {"n": 2}}
    by_hand = hashlib.sha1(b'{"data":{"n":2},"seed":1}').hexdigest()[:12]
    assert run_id({"seed": 1, "data": {"n": 2}}) == by_hand == id_of(config)
    assert id_of({**config, "device": "cpu", "data": {"root": "/elsewhere", "n": 2}}) == by_hand


def test_legacy_values_are_left_out_and_others_kept():
    dropped = drop_legacy(CFG)
    assert dropped["train"] == {"lr": 0.01, "head_init": "lp"}  # sklearn probe: its keys go; end, 0.0 go
    assert dropped["data"] == {"root": "/data"}
    assert "numerics" not in dropped and "drift" not in dropped
    assert CFG["train"]["probe"] == "sklearn" and "variants" in CFG["data"]  # the caller's dicts untouched
    kept = drop_legacy({**CFG, "numerics": "portable", "drift": 10,
                        "train": {**TRAIN, "probe": "reference", "checkpoint": 50}})
    assert kept["numerics"] == "portable" and kept["drift"] == 10
    assert set(kept["train"]) == {"lr", "head_init", "probe", "probe_lr", "probe_steps", "checkpoint"}
    sections = drop_legacy(CFG, sections_only=True)  # the experiment's config keeps numerics and drift
    assert sections["numerics"] == "native" and sections["drift"] == 64 and "probe" not in sections["train"]
    assert list(drop_legacy({"b": 1, "numerics": "portable", "a": 2})) == ["b", "numerics", "a"]  # order kept


def test_run_spec_moves_an_entrys_head_init_into_train_and_keeps_the_device_out_of_the_id():
    cfg = {**CFG, "train": drop_legacy(CFG)["train"]}
    plain = RunSpec.of(cfg, ["a"], {"name": "ft"}, 0).config()
    same = RunSpec.of(cfg, ["a"], {"name": "ft", "head_init": "lp"}, 0).config()
    zs = RunSpec.of(cfg, ["a"], {"name": "ft", "head_init": "zs"}, 0).config()
    assert plain == same and plain["strategy"] == {"name": "ft"}
    assert zs["strategy"] == {"name": "ft"} and zs["train"]["head_init"] == "zs" and zs["run_id"] != plain["run_id"]
    assert list(plain) == ["run_id", "model", "suite", "data", "train", "ordering", "strategy", "seed", "threads",
                           "device"]
    assert plain["run_id"] == id_of(plain)
    gpu = RunSpec.of({**cfg, "device": "cuda"}, ["a"], {"name": "ft"}, 0).config()
    assert gpu["run_id"] == plain["run_id"] and gpu["device"] == "cuda"
    portable = RunSpec.of({**cfg, "numerics": "portable"}, ["a"], {"name": "ft"}, 0).config()
    assert list(portable)[-3:] == ["threads", "numerics", "device"] and portable["run_id"] != plain["run_id"]


def test_training_key_ignores_what_is_only_scored_and_settings_of_names_what_varies():
    a = {"suite": ["a"], "seed": 0, "train": {"lr": 0.1}, "strategy": {"name": "ft"}}
    b = {**a, "suite": ["a", "b"], "drift": 8}
    assert training_key(a) == training_key(b) and id_of(a) != id_of(b)
    assert training_key(a) != training_key({**a, "seed": 1})
    c = {**a, "train": {"lr": 0.2}, "strategy": {"name": "ewc"}, "seed": 3}
    assert settings_of([a, c, a]) == ["train.lr=0.1", "train.lr=0.2", "train.lr=0.1"]
    assert settings_of([a, c], ignore=("train.lr",)) == ["", ""]
    assert settings_of([a, b]) == ["drift=unset,suite=" + json.dumps(["a"]), "drift=8,suite=" + json.dumps(["a", "b"])]
