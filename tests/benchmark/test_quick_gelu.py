"""QuickGELU whenever the weights were trained with it (openai's), whether the run downloads them or finds
them on disk: a fake open_clip tag whose download writes a checkpoint here."""
from __future__ import annotations

import json
import warnings

import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU

from conftest import TINY_VIT

NAME, TAG = "test-quickgelu-vit", "fakeopenai"


def _activations(fm) -> set[str]:
    return {type(m).__name__ for m in fm.visual.modules() if isinstance(m, (QuickGELU, torch.nn.GELU))}


@pytest.fixture
def fake_tag(tmp_path, monkeypatch):
    """`TAG` for architecture `NAME`, marked quick_gelu as open_clip marks openai's; its download (counted)
    writes the state dict of a QuickGELU model of that architecture."""
    from benchmark.models import register_model_configs

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / f"{NAME}.json").write_text(json.dumps(TINY_VIT))
    register_model_configs(tmp_path / "configs")
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, NAME, {TAG: {
        "url": "https://example.invalid/cfbench-test/quickgelu-tiny.pt", "hf_hub": "", "quick_gelu": True,
        "mean": open_clip.OPENAI_DATASET_MEAN, "std": open_clip.OPENAI_DATASET_STD}})
    torch.manual_seed(1)
    source = open_clip.create_model(NAME, pretrained=None, force_quick_gelu=True)
    ckpt = tmp_path / "quickgelu-tiny.pt"
    torch.save(source.state_dict(), ckpt)
    downloads = []

    def download(cfg, *args, **kwargs):
        downloads.append(cfg["url"])
        return str(ckpt)

    monkeypatch.setattr(open_clip.factory, "download_pretrained", download)
    return source, ckpt, downloads


def test_downloaded_openai_style_weights_build_quick_gelu(fake_tag, monkeypatch):
    from benchmark.models import foundation, load_foundation_model

    source, ckpt, downloads = fake_tag
    assert foundation.resolve_weights(NAME, TAG) is None  # not on disk: the load downloads them
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # open_clip's "QuickGELU mismatch" warning fails the test
        first = load_foundation_model(NAME, TAG)
    assert downloads == ["https://example.invalid/cfbench-test/quickgelu-tiny.pt"]
    assert _activations(first) == {"QuickGELU"}
    # a later run finds the file on disk: the same model, QuickGELU and the same weights
    monkeypatch.setattr(foundation, "resolve_weights", lambda name, tag, download=False: str(ckpt))
    later = load_foundation_model(NAME, TAG)
    assert len(downloads) == 1 and _activations(later) == {"QuickGELU"}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(first.visual(x), later.visual(x))
    saved = source.visual.state_dict()  # the checkpoint's weights were loaded
    assert all(torch.equal(v, saved[k]) for k, v in first.visual.state_dict().items())


def test_weights_without_quick_gelu_keep_gelu(tiny_vit):
    assert _activations(tiny_vit) == {"GELU"}  # random init, no tag: the architecture's own activation
