"""scripts/make_example.py: docs/example/ from an experiment's records (here the sample experiment's runs
on a>b, in place of a default run): report.md, report.html, every plot, and the README's leaderboard rows."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_example", ROOT / "scripts" / "make_example.py")
make_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_example)


def test_the_example_holds_the_report_its_images_and_the_readme_rows(tmp_path, capsys):
    exp = tmp_path / "sample_experiment"
    # the sample's runs on a>b (ft seeds 0 and 1, ldifs seed 0 and its interrupted seed 1): both strategies, a
    # seed mean and a run without a done marker, at a third of the plots that all nine runs take to draw
    for run in sorted((Path(__file__).resolve().parents[1] / "data" / "sample_experiment" / "runs").iterdir()):
        if json.loads((run / "records.json").read_text())["ordering"] == ["a", "b"]:
            shutil.copytree(run, exp / "runs" / run.name)
    assert len(list((exp / "runs").iterdir())) == 4
    docs = tmp_path / "docs" / "example"
    docs.mkdir(parents=True)
    (docs / "stale.png").write_bytes(b"old")  # the old example goes as a whole
    assert make_example.main(["--results", str(exp), "--docs", str(docs)]) == 0
    assert sorted(p.name for p in docs.iterdir()) == ["leaderboard.md", "plots", "report.html", "report.md", "runs"]
    report = (docs / "report.md").read_text()
    for p in (exp / "plots").glob("*.png"):
        assert (docs / "plots" / p.name).read_bytes() == p.read_bytes() and f"](plots/{p.name})" in report
    rows = capsys.readouterr().out.splitlines()
    # ft on a>b, seed 0 (tests/data/make_sample_experiment.py): R = [[.5, .4], [.9, .5], [.7, .8]], so
    # ACC = (.7 + .8) / 2 = 75.0, BWT = .7 - .9 = -20.0, FWT = .5 - .4 = +10.0 points
    assert any(r.startswith("| ft | a>b | 0 | 75.0 | -20.0 | +10.0 | ") for r in rows), rows
    assert "\n".join(rows) in (docs / "leaderboard.md").read_text()
    assert make_example.main(["--results", str(tmp_path / "nothing"), "--docs", str(docs)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
