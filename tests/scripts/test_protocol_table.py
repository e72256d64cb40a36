"""docs/design.md's "The paper protocol, setting by setting" is what scripts/protocol_table.py prints from
the presets and the code, so the table cannot drift from what runs."""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

from experiment import config as C

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("protocol_table", ROOT / "scripts" / "protocol_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_documented_table_is_the_scripts_output(script, capsys):
    assert script.documented() == script.table()
    assert script.main(["--check"]) == 0


def test_a_stale_table_is_caught(script, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "design.md"
    stale.write_text(script.DOC.read_text().replace("| 1,000 |", "| 500 |", 1))
    monkeypatch.setattr(script, "DOC", stale)
    assert script.main(["--check"]) == 1
    assert "differs from what runs" in capsys.readouterr().err


def test_the_table_reads_the_preset_not_the_reference(script):
    cfg = C.load_preset("paper-single")
    ours = {r[0]: r for r in script.rows(C.validate(copy.deepcopy(cfg)))}
    assert all(r[3] in ("yes", "open") for r in ours.values())  # the presets match wherever the code says
    cfg["train"]["probe"] = "sklearn"
    cfg["data"]["variants"] = {}
    cfg["train"]["batch_size"] = 64
    other = {r[0]: r for r in script.rows(C.validate(cfg))}
    for setting in ("linear probe", "probe learning rates", "LP metric refit", "DTD train / val images",
                    "EuroSAT images", "CIFAR100 class names", "Cars class names", "batch size"):
        assert other[setting][3] == "**no**", setting
    assert other["DTD train / val images"][2].startswith("3,384 / 376")  # train + val: 3,760 images, 90/10
