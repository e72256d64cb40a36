"""Bad input on the command line and in config files: refused before any work in one line, exit 2, no
traceback, nothing left on disk; the catalogue covers every class of mistake."""
from __future__ import annotations


import pytest
import yaml


from conftest import ROOT, files_under, run_main


# Whole files broken ("raw"), or the micro preset with one part broken ("patch").
BAD_CONFIGS = {
    "train_not_mapping": ("patch", {"train": 5}),
    "strategy_without_name": ("patch", {"strategies": [{"lam": 1}]}),
    "experiment_null": ("patch", {"experiment": None}),
    "model_not_mapping": ("patch", {"model": "ViT-B-32"}),
    "suite_not_list": ("patch", {"suite": "mnist"}),
    "unknown_top_key": ("patch", {"learning_rate": 0.1}),
    "not_utf8": ("raw", b"experiment: micro\xff\xfe\n"),
    "not_yaml": ("raw", b"experiment: [micro\n"),
    "top_level_list": ("raw", b"- a\n- b\n"),
    "empty_file": ("raw", b""),
}


CATALOGUE = [
    # values that no run can use
    ("value", ["--strategies", "ldifs:lam=nan"], "lam must be a finite number"),
    ("value", ["--strategies", "ldifs:lam=inf"], "lam must be a finite number"),
    ("value", ["--strategies", "ldifs:lam=-1"], "lam must be >= 0"),
    ("value", ["--set", "train.lr=1e9"], "train.lr: input should be less than or equal to 1"),
    ("value", ["--set", "train.lr=-1"], "train.lr: input should be greater than 0"),
    ("value", ["--set", "train.lr=0"], "train.lr: input should be greater than 0"),
    ("value", ["--set", "train.lr=.nan"], "train.lr: input should be a finite number"),
    ("value", ["--set", "train.lr=true"], "train.lr: a number is expected, not true/false"),
    ("value", ["--set", "train.weight_decay=-1"], "train.weight_decay: input should be greater than or equal to 0"),
    ("value", ["--set", "train.probe_C=0"], "train.probe_C: input should be greater than 0"),
    ("value", ["--set", "train.grad_clip=.inf"], "train.grad_clip: input should be a finite number"),
    ("value", ["--set", "train.warmup_steps=-3"], "train.warmup_steps: input should be greater than or equal to 0"),
    ("value", ["--epochs", "0"], "train.epochs: input should be greater than or equal to 1"),
    ("value", ["--set", "train.epochs=1.5"], "train.epochs: input should be a valid integer"),
    ("value", ["--set", "train.batch_size=0"], "train.batch_size: input should be greater than or equal to 1"),
    ("value", ["--set", "train.head_init=random"], "train.head_init: input should be 'lp' or 'zs'"),
    ("value", ["--seeds", "-1"], "seeds.0: input should be greater than or equal to 0"),
    ("value", ["--seeds", "0", "0"], "seeds list 0 more than once"),
    ("value", ["--set", "seeds=[]"], "seeds: list should have at least 1 item"),
    ("value", ["--set", "strategies=[]"], "strategies: list should have at least 1 item"),
    ("value", ["--set", "orderings=[]"], "orderings: list should have at least 1 item"),
    ("value", ["--set", "threads=-1"], "threads: input should be greater than or equal to 0"),
    ("value", ["--set", "threads=abc"], "threads: input should be a valid integer"),
    ("value", ["--set", "data.max_test=-5"], "data.max_test: input should be greater than or equal to 1"),
    ("value", ["--set", "model.image_size=abc"], "model.image_size: input should be a valid integer"),
    ("value", ["--set", "model.image_size=2"], "model.image_size: input should be greater than or equal to 8"),
    ("value", ["--set", "model.freeze_bn_stats=maybe"], "model.freeze_bn_stats: must be true or false"),
    ("value", ["--device", "foo"], "device: must be cpu, cuda, cuda:N or mps"),
    ("value", ["--strategies", "ft", "ft"], "strategy ft is asked for twice"),
    ("value", ["--strategies", "ldifs:lam=1", "ldifs:lam=1.0"], "strategy ldifs:lam=1.0"),
    ("value", ["--strategies", "ldifs:anchor=first"], "anchor must be one of previous, pretrained"),
    ("value", ["--strategies", "ldifs:norm_axis=0"], "norm_axis must be 1 (tokens) or 2 (channels)"),
    # unknown names and keys
    ("name", ["--set", "foo=1"], "unknown setting 'foo'; allowed: experiment, model"),
    ("name", ["--set", "train.optimiser=sgd"], "unknown setting 'train.optimiser'; allowed in train: epochs"),
    ("name", ["--set", "model.size=3"], "unknown setting 'model.size'; allowed in model: name, pretrained"),
    ("name", ["--strategies", "nope"], "unknown strategy 'nope'; available: "),
    ("name", ["--strategies", "ldifs:gamma=1"], "has no hyperparameter gamma; allowed: "),
    ("name", ["--orderings", "mnist,cifar10"], "unknown dataset 'cifar10' in ordering"),
    ("name", ["--orderings", "mnist,textures", "--suite", "mnist"], "which the suite does not score"),
    ("name", ["--suite", "mnist", "imagenet"], "unknown dataset 'imagenet' in suite"),
    ("name", ["--suite", "mnist", "mnist", "--orderings", "mnist"], "suite lists mnist more than once"),
    ("name", ["--set", "model.name=ViT-X-99"], "unknown model 'ViT-X-99'"),
    ("name", ["--config", "nonexistent"], "no config 'nonexistent'; presets: "),
    # malformed shapes
    ("shape", ["--strategies", "ldifs:lam"], "expected name:key=value"),
    ("shape", ["--strategies", "ldifs:layers=null"], "layers must be one of reference, last, all"),
    ("shape", ["--strategies", "ldifs:layers=[0,"], "is not valid YAML"),
    ("shape", ["--set", "train=5"], "train must be a mapping of settings, got 5"),
    ("shape", ["--set", "train.lr.x=1"], "'lr' is a value, not a section"),
    ("shape", ["--set", "train.lr=[1"], "the value is not valid YAML"),
    ("shape", ["--set", "experiment=null"], "experiment: input should be a valid string"),
    ("shape", ["--orderings", "mnist,mnist"], "each at most once"),
    ("shape", ["--config", "{cfg:train_not_mapping}"], "train must be a mapping of settings, got 5"),
    ("shape", ["--config", "{cfg:strategy_without_name}"], "a strategy in a config is a name"),
    ("shape", ["--config", "{cfg:experiment_null}"], "experiment: input should be a valid string"),
    ("shape", ["--config", "{cfg:not_utf8}"], "not a UTF-8 text file"),
    ("shape", ["--config", "{cfg:not_yaml}"], "not valid YAML"),
    ("shape", ["--config", "{cfg:top_level_list}"], "expected a mapping of settings at the top level"),
    ("shape", ["--config", "{cfg:empty_file}"], "expected a mapping of settings at the top level"),
    ("shape", ["--config", "{cfg:model_not_mapping}"], "model must be a mapping of settings"),
    ("shape", ["--config", "{cfg:suite_not_list}"], "suite: input should be a valid list"),
    ("shape", ["--config", "{cfg:unknown_top_key}"], "unknown setting 'learning_rate'"),
    # paths: everything stays inside --out/<experiment>
    ("path", ["--experiment", "../escape"], "experiment: must be one folder name"),
    ("path", ["--experiment", "/tmp/abs"], "experiment: must be one folder name"),
    ("path", ["--experiment", "a/b"], "experiment: must be one folder name"),
    ("path", ["--experiment", ".hidden"], "experiment: must be one folder name"),
    ("path", ["--experiment", "x" * 300], "experiment: must be one folder name of at most 100 characters"),
    ("path", ["--collect-only", "--experiment", "typo"], "--collect-only: no experiment 'typo'"),
    ("path", ["--out", "/proc/no-results-here"], "cannot write results there"),
    # argparse
    ("cli", ["--seeds", "x"], "argument --seeds: invalid int value: 'x'"),
    ("cli", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
]


def test_the_catalogue_is_large_and_covers_every_class():
    classes = {c for c, _, _ in CATALOGUE}
    assert len(CATALOGUE) >= 40 and classes == {"value", "name", "shape", "path", "cli"}


@pytest.mark.parametrize("kind, argv, words", CATALOGUE, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CATALOGUE)])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(kind, argv, words, tmp_path, capsys):
    out = tmp_path / "out"
    cfgs = tmp_path / "configs"
    cfgs.mkdir()
    resolved = []
    for a in argv:
        if a.startswith("{cfg:"):
            name = a[5:-1]
            kind, body = BAD_CONFIGS[name]
            p = cfgs / f"{name}.yaml"
            if kind == "raw":
                p.write_bytes(body)
            else:
                cfg = yaml.safe_load((ROOT / "configs" / "micro.yaml").read_text())
                p.write_text(yaml.safe_dump({**cfg, **body}))
            a = str(p)
        resolved.append(a)
    if "--out" not in resolved:
        resolved = ["--out", str(out), *resolved]
    code, _, err, _ = run_main(resolved, capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err
    assert "Traceback" not in err
    assert files_under(out) == []  # nothing written, not even an empty experiment folder's files
    assert not (out / "micro").exists() and not (tmp_path.parent / "escape").exists()
