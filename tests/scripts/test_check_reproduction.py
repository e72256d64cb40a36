"""scripts/check_reproduction.py on small fake experiment folders (copies of tests/data/sample_experiment
with a numerics description added to their records): identical, differing on the same numeric path,
within and outside tolerance on other numerics, and bad input."""
from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "sample_experiment"
_spec = importlib.util.spec_from_file_location("check_reproduction", ROOT / "scripts" / "check_reproduction.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

HERE = {"fingerprint": "aaaaaaaaaaaa", "cpu": "Test CPU with AVX-512", "capability": "AVX512"}
OTHER = {"fingerprint": "bbbbbbbbbbbb", "cpu": "Test CPU with AVX2", "capability": "AVX2"}


def _experiment(tmp_path, numerics, name="exp"):
    """A copy of the sample experiment whose records say which numerics made them (records.json is not
    part of the run id: only config.json is hashed, so the runs stay valid)."""
    dst = tmp_path / name
    shutil.copytree(SAMPLE, dst)
    for p in dst.glob("runs/*/records.json"):
        rec = json.loads(p.read_text())
        rec["env"] = {**rec["env"], "numerics": numerics}
        p.write_text(json.dumps(rec))
    return dst


def _ft_ab_0(folder):
    """records.json of ft, ordering a>b, seed 0: final LP = [.6, .9, .6] over a, b, c (c held out)."""
    for p in folder.glob("runs/*/records.json"):
        rec = json.loads(p.read_text())
        if rec["config"]["strategy"] == {"name": "ft"} and rec["ordering"] == ["a", "b"] and rec["config"]["seed"] == 0:
            return p
    raise AssertionError("sample run missing")


def _nudge(folder, delta):
    """Move ft a>b seed 0's final held-out LP by delta: dLP_c and dLP_heldout change by delta."""
    p = _ft_ab_0(folder)
    rec = json.loads(p.read_text())
    rec["LP"][-1][2] += delta
    p.write_text(json.dumps(rec))


def _write(folder, expected, *tolerances):
    argv = ["--results", str(folder), "--write-expected", "--expected", str(expected)]
    for t in tolerances:
        argv += ["--tolerance", t]
    assert check.main(argv) == 0
    return json.loads(expected.read_text())


def _check(folder, expected, capsys):
    code = check.main(["--results", str(folder), "--expected", str(expected)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_expected_file_holds_each_run_s_figures_numerics_and_tolerances(tmp_path):
    exp = _write(_experiment(tmp_path, HERE), tmp_path / "expected.json", "ACC=0.02")
    assert exp["format"] == 1 and exp["preset"] == "micro" and exp["numerics"] == HERE
    assert exp["tolerances"] == {"ACC": 0.02, "BWT": None, "FWT": None, "dLP_heldout": None, "dZS_heldout": None,
                                 "dLP_*": None}
    assert len(exp["runs"]) == 8  # the interrupted sample run is not a result
    run = next(r for r in exp["runs"] if r["strategy"] == "ft" and r["ordering"] == "a>b" and r["seed"] == 0)
    # by hand (tests/evaluation/reporting/test_collect.py): R = [[.5,.4],[.9,.5],[.7,.8]], LP final - LP0 = [0, .4, -.2]
    assert run["figures"]["ACC"] == pytest.approx(0.75) and run["figures"]["dLP_heldout"] == pytest.approx(-0.2)
    assert run["figures"]["dLP_b"] == pytest.approx(0.4) and set(run["figures"]) == {
        "ACC", "BWT", "FWT", "dLP_heldout", "dZS_heldout", "dLP_a", "dLP_b", "dLP_c"}
    one_task = next(r for r in exp["runs"] if r["ordering"] == "c")
    assert one_task["figures"]["BWT"] is None  # undefined with one task: null, never 0
    ldifs = next(r for r in exp["runs"] if r["strategy"] == "ldifs")
    assert ldifs["params"] == '{"lam": 10.0}' and len(ldifs["run_id"]) == 12
    # a regeneration keeps the measured tolerances and adds new ones
    exp = _write(_experiment(tmp_path, HERE, "again"), tmp_path / "expected.json", "dLP_*=0.03")
    assert exp["tolerances"]["ACC"] == 0.02 and exp["tolerances"]["dLP_*"] == 0.03


def test_same_numerics_identical_figures_agree_exactly(tmp_path, capsys):
    folder = _experiment(tmp_path, HERE)
    _write(folder, tmp_path / "e.json")
    code, out, _ = _check(_experiment(tmp_path, HERE, "rerun"), tmp_path / "e.json", capsys)
    assert code == 0
    assert "same machine numerics: exact comparison" in out and "tolerance comparison" not in out
    assert "differs" not in out and out.strip().splitlines()[-1] == "agrees: 64 identical"  # 8 runs x 8 figures


def test_same_numerics_the_smallest_difference_is_a_bug_or_a_changed_environment(tmp_path, capsys):
    _write(_experiment(tmp_path, HERE), tmp_path / "e.json", "dLP_heldout=0.5", "dLP_*=0.5")
    rerun = _experiment(tmp_path, HERE, "rerun")
    _nudge(rerun, 1e-12)  # far below any tolerance: on the same path it must not happen at all
    code, out, _ = _check(rerun, tmp_path / "e.json", capsys)
    assert code == 1 and "same machine numerics: exact comparison" in out
    bad = [ln for ln in out.splitlines() if ln.startswith("  ") and "differs on the same numeric path: a bug or a changed environment" in ln]
    assert [ln.split()[0] for ln in bad] == ["dLP_heldout", "dLP_c"]
    assert "DOES NOT AGREE" in out.splitlines()[-1]


def test_other_numerics_compare_within_the_file_s_tolerances(tmp_path, capsys):
    _write(_experiment(tmp_path, HERE), tmp_path / "e.json", "ACC=0.01", "BWT=0.01", "FWT=0.01",
           "dLP_heldout=0.01", "dZS_heldout=0.01", "dLP_*=0.01")
    other = _experiment(tmp_path, OTHER, "avx2")
    _nudge(other, 0.005)
    code, out, _ = _check(other, tmp_path / "e.json", capsys)
    assert code == 0, out
    assert ("other numerics (this: bbbbbbbbbbbb (Test CPU with AVX2, kernels AVX2), expected: aaaaaaaaaaaa "
            "(Test CPU with AVX-512, kernels AVX512)): tolerance comparison") in out
    assert "same machine" not in out and out.strip().splitlines()[-1] == "agrees: 64 within tolerance"
    line = next(ln for ln in out.splitlines() if ln.lstrip().startswith("dLP_c") and "+0.005" in ln)
    assert line.endswith("tol 0.01  within tolerance")


def test_other_numerics_outside_tolerance_or_without_one_do_not_agree(tmp_path, capsys):
    _write(_experiment(tmp_path, HERE), tmp_path / "e.json", "ACC=0.01", "dLP_heldout=0.01", "dLP_*=0.01")
    other = _experiment(tmp_path, OTHER, "avx2")
    _nudge(other, 0.05)
    code, out, _ = _check(other, tmp_path / "e.json", capsys)
    assert code == 1 and "tolerance comparison" in out
    outside = [ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and ln.endswith("outside tolerance")]
    assert outside == ["dLP_heldout", "dLP_c"]
    # BWT, FWT, dZS_heldout have no tolerance in the file: they cannot be judged across machines
    # (8 runs x 3 figures, less BWT and FWT of the two one-task runs: undefined on both sides, they agree)
    assert sum(ln.endswith("no tolerance in the expected file") for ln in out.splitlines()) == 3 * 8 - 2 * 2
    assert "DOES NOT AGREE" in out.splitlines()[-1]


def test_missing_runs_and_another_config_do_not_agree(tmp_path, capsys):
    folder = _experiment(tmp_path, HERE)
    _write(folder, tmp_path / "e.json")
    shutil.rmtree(_ft_ab_0(folder).parent)
    code, out, _ = _check(folder, tmp_path / "e.json", capsys)
    assert code == 1 and "ft a>b seed 0: missing from the results" in out
    doc = json.loads((tmp_path / "e.json").read_text())
    doc["runs"][0]["run_id"] = "000000000000"
    (tmp_path / "e.json").write_text(json.dumps(doc))
    code, out, _ = _check(_experiment(tmp_path, HERE, "full"), tmp_path / "e.json", capsys)
    assert code == 1 and "another config (run id" in out and "expected 000000000000" in out


def test_bad_input_is_one_line_and_status_2(tmp_path, capsys):
    folder = _experiment(tmp_path, HERE)
    cases = [
        (["--results", str(folder), "--expected", str(tmp_path / "none.json")], "no expected figures at"),
        (["--results", str(tmp_path), "--expected", str(tmp_path / "none.json")], "no expected figures at"),
        (["--results", str(tmp_path / "nowhere"), "--write-expected", "--expected", str(tmp_path / "x.json")],
         "is not an experiment folder"),
        (["--results", str(folder), "--write-expected", "--expected", str(tmp_path / "x.json"), "--tolerance", "ACC"],
         "--tolerance 'ACC': expected FIGURE=NUMBER"),
        (["--results", str(folder), "--expected", str(tmp_path / "x.json"), "--tolerance", "ACC=1"],
         "--tolerance is for --write-expected"),
        (["--bogus"], "unrecognized arguments"),
    ]
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "wrong.json").write_text(json.dumps({"format": 1, "runs": []}))
    cases += [(["--results", str(folder), "--expected", str(tmp_path / "broken.json")], "is not valid JSON"),
              (["--results", str(folder), "--expected", str(tmp_path / "wrong.json")], "is not an expected-figures file")]
    old = tmp_path / "old"  # records from before env.numerics cannot be expected figures
    shutil.copytree(SAMPLE, old)
    cases.append((["--results", str(old), "--write-expected", "--expected", str(tmp_path / "x.json")],
                  "carry no env.numerics"))
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    _write(folder, tmp_path / "ok.json")
    cases.append((["--results", str(empty), "--expected", str(tmp_path / "ok.json")], "holds no finished run"))
    for argv, msg in cases:
        with pytest.raises(SystemExit) if argv == ["--bogus"] else _nothing() as e:
            code = check.main(argv)
        if argv == ["--bogus"]:
            code = e.value.code
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and msg in err, (argv, err)
    assert not (tmp_path / "x.json").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_without_results_it_reruns_the_preset_into_a_temporary_folder(tmp_path, capsys, monkeypatch):
    _write(_experiment(tmp_path, HERE), tmp_path / "e.json")
    seen = {}

    def fake_rerun(preset, out):  # run_benchmark.py would train; here the same records appear
        seen.update(preset=preset, out=out)
        return _experiment(Path(out), HERE, "micro")

    monkeypatch.setattr(check, "rerun", fake_rerun)
    assert check.main(["--expected", str(tmp_path / "e.json")]) == 0
    assert seen["preset"] == "micro" and not Path(seen["out"]).exists()  # the temporary folder is removed
    assert "same machine numerics: exact comparison" in capsys.readouterr().out
    assert check.main(["--expected", str(tmp_path / "e.json"), "--out", str(tmp_path / "kept")]) == 0
    assert (tmp_path / "kept" / "micro" / "runs").is_dir()
