"""Feature drift (evaluation/scoring/drift.py): the distance and CKA worked out by hand, the fixed sample, step 0
exactly zero, and the records' optional drift key."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmark.models import ldifs_distance, ldifs_layer_distance
from evaluation.scoring.drift import DriftMeter, layer_drift, linear_cka, sample_indices, tap_features
from evaluation.storage.identity import hashed_config, run_id
from evaluation.storage.records import Records, check_records

ROOT = Path(__file__).resolve().parents[3]


def test_ldifs_layer_distance_by_hand():
    # one image, N = 2 tokens, C = 1 channel: [3, 4] -> [0.6, 0.8]; [4, 3] -> [0.8, 0.6];
    # squared differences 0.04 and 0.04, mean over (N, C) = 0.04
    fa = torch.tensor([[[3.0], [4.0]]])
    ff = torch.tensor([[[4.0], [3.0]]])
    assert ldifs_layer_distance(fa, ff).tolist() == pytest.approx([0.04], rel=1e-6)
    # the strategy's term is the mean of the same d_l over layers and images: one definition for both
    assert ldifs_distance([fa], [ff]).item() == pytest.approx(0.04, rel=1e-6)
    # a channel's scale is invisible (docs/design.md, "What LDIFS does not see")
    assert ldifs_layer_distance(fa, 7 * fa).item() == pytest.approx(0.0, abs=1e-12)


def test_linear_cka_by_hand():
    # one feature, centred already: CKA = cos^2 = (x.y)^2 / (|x|^2 |y|^2) = 1 / (2 * 2)
    x = torch.tensor([[1.0], [0.0], [-1.0]])
    y = torch.tensor([[1.0], [-1.0], [0.0]])
    assert linear_cka(x, y) == pytest.approx(0.25, abs=1e-12)
    # X = [[1,0],[0,1],[-1,-1]] (centred), Y = its first column:
    # X^T X = [[2,1],[1,2]] (|.|_F = sqrt 10), Y^T Y = 2, Y^T X = [2, 1] (|.|_F^2 = 5): CKA = 5 / (2 sqrt 10)
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    assert linear_cka(X, X[:, :1]) == pytest.approx(5 / (2 * math.sqrt(10)), abs=1e-12)
    # invariant to an isotropic scale, an orthogonal rotation and a shift of the features
    rot = torch.tensor([[0.6, -0.8], [0.8, 0.6]])
    assert linear_cka(X, 3 * X @ rot + 5) == pytest.approx(1.0, abs=1e-12)
    # [n, N, C] maps are flattened per image
    assert linear_cka(X.reshape(3, 2, 1), X[:, :1]) == pytest.approx(5 / (2 * math.sqrt(10)), abs=1e-12)


def test_layer_drift_of_identical_features_is_exactly_zero_and_one():
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(8, 4, 3, 3, generator=g), torch.randn(8, 5, generator=g)]
    dist, cka = layer_drift(feats, feats)
    assert dist == [0.0, 0.0] and cka == [1.0, 1.0]
    # a constant tap: CKA is undefined, recorded as None (null), never NaN
    const = [torch.ones(4, 3)]
    assert layer_drift(const, [torch.ones(4, 3) * 2])[1] == [None]


def test_sample_is_fixed_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = sample_indices(500, 64)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a == sample_indices(500, 64) and len(a) == 64 and a == sorted(a) and len(set(a)) == 64
    assert sample_indices(10, 64) == list(range(10))


class _Trunk(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU()),
                                    nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU()))

    def forward(self, x):
        return self.blocks(self.conv_stem(x))


class _Visual(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = _Trunk()
        self.proj = nn.Linear(6, 5)

    def forward(self, x):
        return self.proj(self.trunk(x).mean((2, 3)))


class _Model(nn.Module):  # what DriftMeter needs of a TaskModel: .encoder
    def __init__(self):
        super().__init__()
        self.encoder = _Visual()


class _Split(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        self.x = torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
        self.fingerprint = {"dataset": f"toy{seed}", "split": "test"}

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], 0


class _Data:
    def __init__(self, seed):
        self.test = _Split(20, seed)


def test_drift_meter_step0_is_zero_and_training_moves_it(tmp_path):
    from benchmark.data import FeatureCache

    torch.manual_seed(0)
    model = _Model()
    meter = DriftMeter(data={"a": _Data(1), "b": _Data(2)}, sample=8, features=FeatureCache(tmp_path),
                       model_key="toy")
    feats = tap_features(model, _Data(1).test.x[:2])
    assert [tuple(f.shape) for f in feats] == [(2, 4, 8, 8), (2, 4, 4, 4), (2, 6, 2, 2), (2, 5)]
    rng = torch.random.get_rng_state()
    row0 = meter.measure(model, 0)
    assert torch.equal(torch.random.get_rng_state(), rng)  # measuring draws no random numbers
    assert row0["ldifs"] == [[0.0] * 4] * 2 and row0["cka"] == [[1.0] * 4] * 2
    with torch.no_grad():
        model.encoder.trunk.blocks[1][0].weight.add_(0.5 * torch.randn_like(model.encoder.trunk.blocks[1][0].weight))
    row1 = meter.measure(model, 1)
    for d, c in zip(row1["ldifs"], row1["cka"]):
        assert d[:2] == [0.0, 0.0] and c[:2] == [1.0, 1.0]  # layers before the change: untouched
        assert d[2] > 0 and c[2] < 1  # the changed block and the embedding after it moved
        assert d[3] > 0
    # a second meter (another run) reads the pre-trained features from the disk cache: same numbers
    again = DriftMeter(data={"a": _Data(1), "b": _Data(2)}, sample=8, features=FeatureCache(tmp_path),
                       model_key="toy")
    fresh = _Model.__new__(_Model)
    nn.Module.__init__(fresh)
    fresh.encoder = model.encoder  # the trained encoder: only a cache hit can give step 0's features
    again._ref = again._reference(fresh)
    assert again.measure(fresh, 1) == row1
    assert len(list(tmp_path.glob("*.pt"))) == 2


def _records(drift):
    cfg = {"x": 1}
    rec = {"run_id": run_id(hashed_config(cfg)), "config": cfg, "ordering": ["a"], "suite": ["a", "b"],
           "R": [[0.5], [0.6]], "LP": [[0.5, 0.5], [0.6, 0.4]], "complete": True}
    if drift is not None:
        rec["drift"] = drift
    return rec


def test_records_drift_key_is_optional_and_checked():
    assert check_records(_records(None)) is None
    good = {"sample": 8, "taps": ["stem", "embedding"], "ldifs": [[[0, 0], [0, 0]], [[0.1, 0.2], [0.0, 0.3]]],
            "cka": [[[1, 1], [1, 1]], [[0.9, None], [1.0, 0.5]]]}
    assert check_records(_records(good)) is None
    bad = {**good, "ldifs": [[[0, 0], [0, 0]]]}  # one step missing
    assert "drift.ldifs must be [2][2][2]" in check_records(_records(bad))
    assert "drift.ldifs holds" in check_records(_records({**good, "ldifs": [[[0, 0], [0, 0]], [[-1, 0], [0, 0]]]}))


# ---- the reporting side (evaluation/reporting/plots_drift.py: records only, no torch)

def test_pearson_ci_by_hand():
    from evaluation.reporting.plots_drift import pearson_ci

    # deviations [-2,-1,0,1,2] and [-2,-1,0,2,1]: r = 9 / sqrt(10 * 10) = 0.9; Fisher z = atanh 0.9 = 1.4722,
    # half-width 1.96 / sqrt(5 - 3) = 1.3859: tanh(0.0863) = 0.0861, tanh(2.8581) = 0.9934
    r, lo, hi, n = pearson_ci([1, 2, 3, 4, 5], [1, 2, 3, 5, 4])
    assert (r, n) == (pytest.approx(0.9), 5)
    assert lo == pytest.approx(0.0861, abs=1e-4) and hi == pytest.approx(0.9934, abs=1e-4)
    # below 4 pairs no r at all: two points always give +-1, three no interval
    for xs, ys in (([1, 2, 3], [2, 4, 7]), ([1, 2], [3, 1])):
        r, lo, hi, n = pearson_ci(xs, ys)
        assert math.isnan(r) and math.isnan(lo) and math.isnan(hi) and n == len(xs)


def _run(strategy, seed, held_last, dlp):
    """A two-task run on suite [a, b, h] (h held out), taps [stem, blocks.0, embedding]."""
    z = [[0.0, 0.0, 0.0]] * 3
    return Records.model_construct(
        config={"strategy": strategy, "seed": seed}, ordering=["a", "b"], suite=["a", "b", "h"],
        LP=[[0.5, 0.5, 0.6], [0.6, 0.5, 0.6], [0.6, 0.7, 0.6 + dlp]],
        drift={"sample": 4, "taps": ["stem", "blocks.0", "embedding"],
               "ldifs": [z, [[0.1, 0.2, 0.3], [0.0, 0.1, 0.1], [0.0, held_last / 2, 0.5]],
                         [[0.2, 0.4, 0.6], [0.1, 0.3, 0.5], [0.0, held_last, 0.7]]],
               "cka": [[[1.0] * 3] * 3] * 3})


def test_group_drift_and_heldout_dlp_by_hand():
    from evaluation.reporting.plots_drift import group_drift, heldout_dlp, last_tap

    rec = _run({"name": "ft"}, 0, 0.04, -0.1)
    assert group_drift(rec, 2, "held-out").tolist() == pytest.approx([0.0, 0.04, 0.7])
    assert group_drift(rec, 1, "trained").tolist() == pytest.approx([0.1, 0.2, 0.3])  # only a is trained by step 1
    assert group_drift(rec, 2, "trained").tolist() == pytest.approx([0.15, 0.35, 0.55])
    assert heldout_dlp(rec) == pytest.approx(-0.1)
    assert last_tap(rec) == 1


def test_group_drift_of_a_tap_undefined_on_every_dataset_is_nan_without_a_warning():
    """prompt tuning's taps after the stem have another shape: null drift on every dataset. The mean over
    the defined values, by hand: trained [a, b] at step 2, stem (0.2 + 0.1) / 2, the others undefined."""
    import warnings

    from evaluation.reporting.plots_drift import group_drift

    rec = _run({"name": "prompt_tuning"}, 0, 0.04, -0.1)
    for step in (1, 2):
        rec.drift["ldifs"][step] = [[row[0], None, None] for row in rec.drift["ldifs"][step]]
    rec.drift["ldifs"][2][1][0] = None  # b's stem too: a alone is defined there
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Mean of empty slice" would fail here
        trained = group_drift(rec, 2, "trained")
    assert trained[0] == pytest.approx(0.2) and math.isnan(trained[1]) and math.isnan(trained[2])
    rec.drift["ldifs"][2][1][0] = 0.1
    assert group_drift(rec, 2, "trained")[0] == pytest.approx(0.15)


def test_drift_section_and_plots(tmp_path):
    from evaluation.reporting.plots_drift import drift_section, write_drift_plots

    runs = []
    for seed in range(4):
        runs.append((f"f{seed}", _run({"name": "ft"}, seed, 0.05 + 0.01 * seed, -0.10 - 0.01 * seed)))
        runs.append((f"l{seed}", _run({"name": "ldifs", "lam": 30}, seed, 0.01 + 0.001 * seed, -0.02 - 0.001 * seed)))
    written = write_drift_plots(tmp_path, runs)
    assert sorted(p.name for p in written) == ["drift_by_layer_ft.png", "drift_by_layer_ldifs.png",
                                               "drift_vs_dlp.png"]
    text = "\n".join(drift_section(tmp_path, runs, written))
    assert "## Feature drift" in text and "![drift_vs_dlp.png](plots/drift_vs_dlp.png)" in text
    # ldifs - ft at blocks.0, paired by seed: -0.04 - 0.009 * seed -> mean -0.0535, x 1e3 = -53.5, beyond noise
    assert "| ldifs | 4 | 0 ± 0 | **-53.5 ± 18.5** | 0 ± 0 |" in text
    assert "Pearson's r = -" in text and "excludes 0: beyond noise" in text
    assert drift_section(tmp_path, [("x", runs[0][1].model_copy(update={"drift": None}))]) == []


def test_drift_memory_script_counts_every_feature_map(capsys):
    """scripts/drift_memory.py: the bytes it prints are those of every tap plus the embedding, worked by
    hand for ViT-B-32 at 32 px (a 1x1 grid of 32-px patches: 2 tokens, the class token included)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("drift_memory", ROOT / "scripts" / "drift_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--image-size", "32", "--sample", "2", "--datasets", "3"]) == 0
    out = capsys.readouterr().out
    # ln_pre and 12 blocks, each [2 tokens, 768], and the 512-d embedding, for 2 images, float32
    one = 2 * (13 * 2 * 768 + 512) * 4
    assert "14 feature maps, first (2, 768), last (512,)" in out
    assert f"({one} bytes per dataset)" in out
    assert mod.main(["--model", "no-such-net"]) == 2
