"""`python -m benchmark.data.eurosat_splits`: EuroSAT_splits/ built from the archive's
images, the `seeded` variant's split written as the `folders` layout that the reference reads."""
from __future__ import annotations

import numpy as np
from PIL import Image

from benchmark.data import data_settings, entry, split_sources
from benchmark.data import eurosat_splits


def _archive(root, per_class: int = 100):
    """eurosat/2750/<class>/<class>_<i>.jpg as EuroSAT.zip extracts (tiny images; enough of them that
    every class lands in every split, as in the real 27,000)."""
    rng = np.random.default_rng(0)
    for c in entry("EuroSAT")["classes"]:
        (root / "eurosat" / "2750" / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(root / "eurosat" / "2750" / c / f"{c}_{i}.jpg")


def _files(src) -> list[tuple[str, str]]:
    """(class folder, file name) of each image of a split, in the split's order."""
    ds, idx = (src.base.parts[0].ds, src.idx) if hasattr(src, "idx") else (src.ds, range(len(src.ds.samples)))
    return [(ds.classes[ds.samples[i][1]], ds.samples[i][0].rsplit("/", 1)[1]) for i in idx]


def test_built_folders_hold_exactly_the_seeded_split(tmp_path, capsys):
    _archive(tmp_path)
    assert eurosat_splits.main(["--data-root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'EuroSAT_splits'}: train 800, val 100, test 100 images"
    d = {"root": str(tmp_path)}
    seeded = split_sources("EuroSAT", data_settings(d))
    folders = split_sources("EuroSAT", data_settings({**d, "variants": {"EuroSAT": "folders"}}))
    for s in ("train", "val", "test"):
        assert _files(folders[s]) == _files(seeded[s])  # the same images, in the same order
        assert list(folders[s].targets) == list(seeded[s].targets)
    assert folders["test"].image(3).tobytes() == seeded["test"].image(3).tobytes()
    assert not list(tmp_path.glob(".EuroSAT_splits*"))  # no temporary folder left


def test_missing_archive_or_existing_folders_are_one_line_and_exit_2(tmp_path, capsys):
    assert eurosat_splits.main(["--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "EuroSAT is not under" in err[0] and "--download" in err[0]
    (tmp_path / "EuroSAT_splits").mkdir()
    assert eurosat_splits.main(["--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists already" in err[0] and not (tmp_path / ".EuroSAT_splits").exists()


def test_download_builds_the_folders_the_paper_presets_read(tmp_path):
    """`--download` on a plan with EuroSAT's `folders` variant: the archive (here already extracted, so
    torchvision fetches nothing) is sorted into the split folders, then the dataset is readable."""
    from benchmark.data import check_available

    _archive(tmp_path, per_class=10)
    folders = {"EuroSAT": "folders"}
    [line] = check_available(["EuroSAT"], tmp_path, download=False, variants=folders)
    assert "not readable" in line and not (tmp_path / "EuroSAT_splits").exists()  # only --download builds
    assert check_available(["EuroSAT"], tmp_path, download=True, variants=folders) == []
    assert sum(1 for _ in (tmp_path / "EuroSAT_splits").rglob("*.jpg")) == 100
