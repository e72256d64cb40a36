#!/usr/bin/env python
"""Regenerate the committed sample records and the collector's golden outputs.

    .venv/bin/python tests/data/make_sample_experiment.py

Writes tests/data/sample_experiment/runs/<run id>/ (records.json, config.json, done) from the
hand-written matrices below, each folder named by the real run id of its config, then runs the
collector on a copy and stores what it wrote (CSV, Markdown, LaTeX, report; not the PNGs) in
tests/data/sample_experiment_golden/. tests/evaluation/reporting/test_collect.py checks the numbers by hand and
compares the collector's output with the golden files; rerun this script only when the output
format changes on purpose, and read the diff before committing it.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from evaluation.storage.identity import EXECUTION_KEYS, hashed_config, run_id  # noqa: E402

SAMPLE = HERE / "sample_experiment"
GOLDEN = HERE / "sample_experiment_golden"
GOLDEN_FILES = ["leaderboard.csv", "records_long.csv", "summary.csv", "summary.md", "orderings.csv",
                "ordering_sensitivity.csv", "tables.md", "tables.tex", "report.md", "forgetting_matrices.csv"]

SUITE = ["a", "b", "c"]
ENV = {"torch": "2.14.1", "python": "3.11.9", "device": "cpu"}
ENV_PACKAGES = {**ENV, "packages": {"avalanche-lib": "0.6.0", "open_clip_torch": "3.3.0"}}
FT, LDIFS = {"name": "ft"}, {"name": "ldifs", "lam": 10.0}

# (strategy, ordering, seed, R [T+1, T], LP [T+1, 3], ZS [T+1, 3], done); LP and ZS columns: a, b, c.
RUNS = [
    (FT, ["a", "b"], 0, [[.5, .4], [.9, .5], [.7, .8]],
     [[.6, .5, .8], [.7, .5, .7], [.6, .9, .6]], [[.3, .2, .5], [.2, .2, .4], [.1, .3, .3]], True),
    (FT, ["a", "b"], 1, [[.5, .4], [.8, .6], [.6, .9]],
     [[.6, .5, .8], [.7, .6, .8], [.5, .9, .7]], [[.3, .2, .5], [.3, .2, .5], [.2, .2, .4]], True),
    (LDIFS, ["a", "b"], 0, [[.5, .4], [.9, .5], [.85, .8]],
     [[.6, .5, .8], [.7, .5, .8], [.65, .9, .8]], [[.3, .2, .5], [.3, .2, .5], [.3, .25, .5]], True),
    (FT, ["b", "a"], 0, [[.4, .5], [.9, .6], [.7, .8]],
     [[.6, .5, .8], [.6, .8, .7], [.7, .7, .6]], [[.3, .2, .5], [.2, .3, .4], [.3, .2, .3]], True),
    (FT, ["b", "a"], 1, [[.4, .5], [.8, .5], [.6, .9]],
     [[.6, .5, .8], [.6, .8, .8], [.8, .7, .7]], [[.3, .2, .5], [.3, .3, .5], [.4, .2, .4]], True),
    (LDIFS, ["b", "a"], 0, [[.4, .5], [.9, .55], [.85, .85]],
     [[.6, .5, .8], [.6, .6, .8], [.7, .55, .8]], [[.3, .2, .5], [.3, .25, .5], [.35, .2, .5]], True),
    (FT, ["c"], 0, [[.8], [.95]], [[.6, .5, .8], [.5, .6, .9]], [[.3, .2, .5], [.2, .2, .6]], True),
    (LDIFS, ["c"], 0, [[.8], [.9]], [[.6, .5, .8], [.6, .5, .85]], [[.3, .2, .5], [.3, .2, .55]], True),
    # interrupted after step 1: no done marker, so the collector ignores it
    (LDIFS, ["a", "b"], 1, [[.5, .4], [.9, .5]], [[.6, .5, .8], [.7, .5, .8]], [[.3, .2, .5], [.3, .2, .5]], False),
]


def run_config(strategy: dict, ordering: list[str], seed: int) -> dict:
    """What experiment.config.plan() produces: run_id, the hashed part, then the execution keys."""
    cfg = {"model": {"name": "m"}, "suite": SUITE, "data": {}, "train": {}, "ordering": ordering,
           "strategy": strategy, "seed": seed, "threads": 1, **{k: "cpu" for k in EXECUTION_KEYS}}
    return {"run_id": run_id(hashed_config(cfg)), **cfg}


def write_sample(dst: Path = SAMPLE) -> list[str]:
    runs_dir = dst / "runs"
    if runs_dir.exists():
        shutil.rmtree(runs_dir)
    ids = []
    for k, (strategy, ordering, seed, R, LP, ZS, done) in enumerate(RUNS):
        cfg = run_config(strategy, ordering, seed)
        rid = cfg["run_id"]
        steps = [{"step": i, "after": "pretrained" if i == 0 else ordering[i - 1], "train_s": 0.0 if i == 0 else 10.0,
                  "eval_s": 1.0} for i in range(len(R))]
        rec = {"run_id": rid, "config": cfg, "ordering": ordering, "suite": SUITE, "R": R, "LP": LP, "ZS": ZS,
               "steps": steps, "complete": done, "env": ENV_PACKAGES if k % 2 else ENV}
        if done:  # two jobs in parallel: run k starts at 20 * (k // 2) s; the sum exceeds the span
            rec["wall_s"] = 10.0 * len(ordering) + 5.0
            start = 20 * (k // 2)
            rec["started"] = f"2026-01-01T00:{start // 60:02d}:{start % 60:02d}Z"
            end = start + int(rec["wall_s"])
            rec["finished"] = f"2026-01-01T00:{end // 60:02d}:{end % 60:02d}Z"
        run_dir = runs_dir / rid
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
        (run_dir / "records.json").write_text(json.dumps(rec, indent=1) + "\n")
        if done:
            (run_dir / "done").write_text("")
        ids.append(rid)
    return ids


def write_golden() -> None:
    from evaluation.reporting.collect import collect

    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "sample_experiment"
        shutil.copytree(SAMPLE, exp)
        collect(exp, plots=True)
        GOLDEN.mkdir(exist_ok=True)
        for name in GOLDEN_FILES:
            shutil.copyfile(exp / name, GOLDEN / name)


if __name__ == "__main__":
    for rid in write_sample():
        print(rid)
    write_golden()
    print(f"wrote {SAMPLE / 'runs'} and {GOLDEN}")
