"""The evaluation in the trackers (experiment/trackers.py): the scalars worked out by hand, and a tiny
run's W&B files in offline mode (no account, no network) holding the numbers of its records."""
from __future__ import annotations

import json
import math
import struct

import pandas as pd
import pytest

import conftest
from experiment import cli
from experiment.trackers import final_scalars, run_name, step_scalars


def _rec():
    # 2 tasks (a, b) of a suite of 3 (c held out); numbers chosen so the deltas are exact in binary
    return {"run_id": "abc", "ordering": ["a", "b"], "suite": ["a", "b", "c"],
            "config": {"strategy": {"name": "ft"}, "seed": 1, "ordering": ["a", "b"], "suite": ["a", "b", "c"]},
            "R": [[0.5, 0.25], [0.75, 0.25], [0.5, 1.0]],
            "LP": [[0.5, 0.5, 0.75], [0.75, 0.5, 0.5], [0.5, 1.0, 0.25]],
            "ZS": [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.0, 0.5, 0.25]],
            "drift": {"taps": ["stem", "embedding"], "ldifs": [[[0, 0]] * 3, [[0.5, 1.0], [0.25, 2.0], [None, 0.125]]],
                      "cka": [[[1, 1]] * 3, [[0.5, 0.5]] * 3]}}


def test_step_scalars_by_hand():
    s = step_scalars(_rec(), 2)
    assert s["eval/LP/c"] == 0.25 and s["eval/dLP/c"] == -0.5 and s["eval/dLP/b"] == 0.5
    assert s["eval/dLP_heldout"] == -0.5 and s["eval/dZS_heldout"] == -0.25  # c alone is held out
    assert s["eval/R/task1_a"] == 0.5 and s["eval/R/task2_b"] == 1.0
    assert "drift/ldifs/a/stem" not in s  # the record has no drift row for step 2
    s1 = step_scalars(_rec(), 1)
    assert s1["drift/ldifs/b/embedding"] == 2.0 and s1["drift/cka/c/stem"] == 0.5
    assert "drift/ldifs/c/stem" not in s1  # undefined (null) values are not logged
    f = final_scalars(_rec())
    # ACC = (0.5 + 1.0) / 2; BWT = R[2,a] - R[1,a] = -0.25; FWT = R[1,b] - R[0,b] = 0
    assert f["final/ACC"] == 0.75 and f["final/BWT"] == -0.25 and f["final/FWT"] == 0.0
    assert f["final/dLP_heldout"] == -0.5 and "final/Transfer" in f


def test_run_names_say_strategy_ordering_seed_and_id():
    run = {"strategy": {"name": "ldifs", "lam": 30.0}, "ordering": ["mnist", "fashion_mnist"], "seed": 4,
           "run_id": "0123456789ab"}
    assert run_name(run) == "ldifs_lam=30.0__mnist-fashion_mnist__seed4__0123456789ab"
    assert "/" not in run_name({**run, "strategy": {"name": "ft", "x": "../../etc"}})


def _wandb_records(path):
    """The records of an offline W&B run file (W&B's log format: a 7-byte header, then 32 KiB blocks of
    chunks, each with a 7-byte header: crc32, length, type 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        part, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind in (1, 2):
            buf = part
        else:
            buf += part
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec


def test_wandb_offline_holds_the_scalars_of_the_records(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    args = [*conftest.TINY, "--strategies", "ft"]
    assert cli.main(["--out", str(tmp_path), "-q", "--wandb", "--no-plots", *args]) == 0
    (run_dir,) = (tmp_path / "micro" / "runs").iterdir()
    rec = json.loads((run_dir / "records.json").read_text())
    (wb_file,) = (tmp_path / "micro" / "wandb").rglob("run-*.wandb")
    history, config, meta = [], {}, None
    for r in _wandb_records(wb_file):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            meta = r.run
            config.update({i.key: json.loads(i.value_json) for i in r.run.config.update})
        elif kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
    assert meta.project == "micro" and meta.run_group == "ft__textures-digits"
    assert meta.display_name == run_name(rec["config"])
    value = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in config.items()}
    assert value["run_id"] == rec["run_id"] and value["seed"] == rec["config"]["seed"]
    evals = {int(h["step"]): h for h in history if "step" in h and "eval/LP/textures" in h}
    assert sorted(evals) == [0, 1, 2]
    for step in range(3):
        for j, d in enumerate(rec["suite"]):
            assert evals[step][f"eval/LP/{d}"] == rec["LP"][step][j]  # the same floats
            assert evals[step][f"eval/ZS/{d}"] == rec["ZS"][step][j]
        assert evals[step]["eval/R/task1_textures"] == rec["R"][step][0]
        assert any(k.startswith("drift/ldifs/digits/") for k in evals[step])
    losses = [h["train/loss_epoch"] for h in history if "train/loss_epoch" in h]
    assert losses == [loss for s in rec["steps"][1:] for loss in s["loss"]] and len(losses) == 2
    final = [h for h in history if "final/ACC" in h]
    acc = pd.read_csv(tmp_path / "micro" / "leaderboard.csv")["ACC"].iloc[0]
    assert len(final) == 1 and math.isclose(final[0]["final/ACC"], acc, abs_tol=1e-4)  # the CSV keeps 4 digits
    # logging is not part of the run: without --wandb the run is already done
    assert cli.main(["--out", str(tmp_path), "--dry-run", *args]) == 0


def assert_evaluation_in_tensorboard(experiment) -> None:
    """Every run of `experiment` has a TensorBoard folder named by strategy, ordering, seed and run id, with
    the evaluation's tags (LP, ZS, R, drift, final) holding its records' numbers (used under each executor)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = sorted((experiment / "runs").iterdir())
    folders = {p.name.rsplit("__", 1)[-1]: p for p in (experiment / "tensorboard").iterdir()}
    assert sorted(folders) == [p.name for p in runs]
    for run_dir in runs:
        rec = json.loads((run_dir / "records.json").read_text())
        assert folders[run_dir.name].name == run_name(rec["config"])
        acc = EventAccumulator(str(folders[run_dir.name]))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        d = rec["suite"][-1]
        assert [e.value for e in acc.Scalars(f"eval/LP/{d}")] == pytest.approx([r[-1] for r in rec["LP"]], abs=1e-7)
        assert [e.step for e in acc.Scalars(f"eval/ZS/{d}")] == list(range(len(rec["ordering"]) + 1))
        assert f"eval/R/task1_{rec['ordering'][0]}" in tags and "final/ACC" in tags
        assert any(t.startswith("drift/ldifs/") for t in tags) and any(t.startswith("drift/cka/") for t in tags)
