"""Code fingerprints: what a run records, what counts as stale, the one-line warning, the report's list
and the driver's dry run (`stale` state) and --retrain-stale (the done marker removed)."""
from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from evaluation.storage import code_version as CV
from evaluation.reporting.collect import collect
from evaluation.storage.records import records_digest

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_experiment"


@pytest.fixture()
def root(tmp_path):
    """A miniature checkout: package source, two strategies, and a file outside the fingerprint."""
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "training.py").write_text("LR = 1\n")
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "base.py").write_text("class Strategy: ...\n")
    (tmp_path / "strategies" / "mine.py").write_text('@register("mine")\nclass Mine: lam = 1\n')
    (tmp_path / "strategies" / "other.py").write_text('@register("other")\nclass Other: ...\n')
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "report.py").write_text("# reporting: not part of a run's numbers\n")
    CV.package_hash.cache_clear()
    yield tmp_path
    CV.package_hash.cache_clear()


def test_a_strategy_edit_stales_only_that_strategy(root):
    mine, other = CV.fingerprint("mine", root), CV.fingerprint("other", root)
    assert mine["strategy_file"] == "strategies/mine.py" and mine["package"] == other["package"]
    (root / "strategies" / "mine.py").write_text('@register("mine")\nclass Mine: lam = 10\n')
    (root / "evaluation" / "report.py").write_text("# edited\n")  # reporting code: nothing stale
    CV.package_hash.cache_clear()
    assert CV.what_changed(mine, CV.fingerprint("mine", root)) == "strategies/mine.py"
    assert CV.what_changed(other, CV.fingerprint("other", root)) == ""
    (root / "benchmark" / "training.py").write_text("LR = 2\n")
    CV.package_hash.cache_clear()
    assert CV.what_changed(other, CV.fingerprint("other", root)) == "package source"
    assert CV.what_changed(None, CV.fingerprint("other", root)) == ""  # no fingerprint: unknown, not stale


def test_the_dataset_writers_are_not_part_of_the_package_source(root):
    """benchmark/data/writers.py writes tiny datasets for tests and the rehearsal; no run reads it, so an
    edit (another dataset's writer) stales nothing, while any other file of benchmark/data does."""
    (root / "benchmark" / "data").mkdir()
    before = CV.fingerprint("mine", root)
    (root / "benchmark" / "data" / "writers.py").write_text("WRITERS = {}\n")
    CV.package_hash.cache_clear()
    assert CV.what_changed(before, CV.fingerprint("mine", root)) == ""
    (root / "benchmark" / "data" / "sources.py").write_text("READERS = {}\n")
    CV.package_hash.cache_clear()
    assert CV.what_changed(before, CV.fingerprint("mine", root)) == "package source"


def test_the_warning_is_one_line_naming_runs_and_the_flag():
    line = CV.stale_warning([("aaa", "strategies/ldifs.py"), ("bbb", "strategies/ldifs.py"), ("ccc", "package source")])
    assert "\n" not in line and "--retrain-stale" in line
    assert "package source changed: ccc; strategies/ldifs.py changed: aaa, bbb" in line


def test_the_report_lists_stale_runs(tmp_path):
    exp = tmp_path / "sample_experiment"
    shutil.copytree(SAMPLE, exp)
    paths = sorted((exp / "runs").glob("*/records.json"))
    for k, p in enumerate(paths):
        rec = json.loads(p.read_text())
        rec["code"] = CV.fingerprint(rec["config"]["strategy"]["name"])
        if k == 0:
            rec["code"]["strategy"] = "0" * 12  # trained by an earlier version of its strategy
        p.write_text(json.dumps(rec))
        if (p.parent / "done").exists():  # records with a code fingerprint carry a checksummed marker
            (p.parent / "done").write_text(records_digest(p.read_text()) + "\n")
    collect(exp, plots=False)
    report = (exp / "report.md").read_text()
    stale_id = paths[0].parent.name
    assert f"- Code: **1 stale run(s)**" in report and f"`{stale_id}` (strategies/" in report
    assert "--retrain-stale" in report and "recorded no code fingerprint" not in report


def test_dry_run_marks_stale_runs_and_retrain_stale_redoes_them(tmp_path, capsys):
    from evaluation.storage.records import CONFIG, DONE, RECORDS, check_run, records_digest
    from experiment.config import load_preset, plan, validate
    from experiment.driver import run_experiment

    cfg = validate({**load_preset("micro"), "strategies": ["ft"], "seeds": [0]})
    runs = plan(cfg)
    r = runs[0]
    d = tmp_path / cfg["experiment"] / "runs" / r["run_id"]
    d.mkdir(parents=True)
    T, D = len(r["ordering"]), len(r["suite"])
    rec = {"run_id": r["run_id"], "config": r, "ordering": r["ordering"], "suite": r["suite"],
           "R": [[0.5] * T] * (T + 1), "LP": [[0.5] * D] * (T + 1), "ZS": None, "steps": [], "complete": True,
           "code": {**CV.fingerprint("ft"), "strategy": "0" * 12}}
    (d / CONFIG).write_text(json.dumps(r))
    (d / RECORDS).write_text(json.dumps(rec))
    (d / DONE).write_text(records_digest((d / RECORDS).read_text()) + "\n")
    assert check_run(d) is None
    out = io.StringIO()
    with redirect_stdout(out):
        assert run_experiment(cfg, tmp_path, executor=None, dry_run=True, log=io.StringIO()) == 0
    assert f"{r['run_id']}  stale" in out.getvalue()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and r["run_id"] in err[0] and "--retrain-stale" in err[0] and "strategies/ft.py" in err[0]
    # with --retrain-stale: the done marker goes, so the run is trained again (the executor is asked for it)
    asked = []

    from experiment.executors import Executor

    class Fake(Executor):
        def execute(self, todo, job):
            asked.extend(t["run_id"] for t in todo)
            return 1  # stop before collecting

    import experiment.preflight as preflight

    monkey = pytest.MonkeyPatch()
    monkey.setattr(preflight, "missing_inputs", lambda cfg: [])
    monkey.setattr(preflight, "load_and_check", lambda cfg, res, report=True: True)
    try:
        assert run_experiment(cfg, tmp_path, executor=Fake(), log=io.StringIO(), retrain_stale=True) == 1
    finally:
        monkey.undo()
    assert r["run_id"] in asked and not (d / DONE).exists()
