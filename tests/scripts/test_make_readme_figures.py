"""scripts/make_readme_figures.py: copies the ft run's accuracy matrix and two summary plots into the
README's image names, or writes nothing and says in one line what is missing."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_readme_figures", ROOT / "scripts" / "make_readme_figures.py")
figs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figs)

_mk = importlib.util.spec_from_file_location("make_sample_experiment", ROOT / "tests" / "data" / "make_sample_experiment.py")
make = importlib.util.module_from_spec(_mk)
_mk.loader.exec_module(make)


def test_copies_the_ft_run_s_matrix_and_the_summary_plots(tmp_path, capsys):
    exp = tmp_path / "exp"
    shutil.copytree(ROOT / "tests" / "data" / "sample_experiment", exp)
    plots = exp / "plots"
    plots.mkdir()
    for p in (exp / "runs").iterdir():  # a stand-in PNG per run, naming the run
        (plots / f"accuracy_matrix_{p.name}.png").write_bytes(p.name.encode())
    (plots / "dLP_per_dataset.png").write_bytes(b"dlp")
    docs = tmp_path / "docs"

    assert figs.main([str(exp), "--docs", str(docs)]) == 2  # accuracy_vs_forgetting.png is missing
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lacks accuracy_vs_forgetting.png" in err
    assert not docs.exists()  # nothing written unless everything is there

    (plots / "accuracy_vs_forgetting.png").write_bytes(b"avf")
    assert figs.main([str(exp), "--docs", str(docs)]) == 0
    ft_ab_0 = make.run_config(make.FT, ["a", "b"], 0)["run_id"]  # lowest seed, first ordering
    assert (docs / "example_accuracy_matrix_ft.png").read_bytes() == ft_ab_0.encode()
    assert (docs / "example_dLP_per_dataset.png").read_bytes() == b"dlp"
    assert (docs / "example_accuracy_vs_forgetting.png").read_bytes() == b"avf"
    other = make.run_config(make.FT, ["b", "a"], 1)["run_id"]
    assert figs.main([str(exp), "--docs", str(docs), "--run", other]) == 0
    assert (docs / "example_accuracy_matrix_ft.png").read_bytes() == other.encode()

    shutil.rmtree(plots)
    assert figs.main([str(exp), "--docs", str(docs)]) == 2
    assert "plots does not exist" in capsys.readouterr().err
