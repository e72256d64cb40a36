"""`--list` answers fast, without torch, with every strategy's hyperparameters, defaults and description
(read from the files; checked here against the registry), and the preset's own choices; `--help`
explains ordering expressions."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_list_is_fast_and_imports_no_torch():
    code = ("import sys; from experiment import cli; rc = cli.main(['--list', '--config', 'micro']); "
            "assert rc == 0; assert 'torch' not in sys.modules and 'avalanche' not in sys.modules, 'torch imported'")
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t
    assert p.returncode == 0, p.stderr[-2000:]
    assert elapsed < 3, f"--list took {elapsed:.1f} s"
    out = p.stdout
    assert "lam (float) = 10.0  # weight of the feature-distance term" in out
    assert "preset runs: ldifs:lam=30 (--config micro; model micro-" in out  # the micro preset's own lambda
    assert "default for this model: lam=30 (strategy_defaults of --config micro)" in out
    assert "ewc            Fine-tune with Elastic Weight Consolidation" in out
    assert "datasets:   " in out and "mnist" in out and "presets:    " in out and "paper-continual" in out
    # the preset's methods as the paper names them, and its seeds
    assert "--config micro: seeds 4; methods" in out and "  LP-init-CE = ft\n  LP-init-LDIFS = ldifs:lam=30\n" in out


def test_the_catalog_agrees_with_the_registry():
    import strategies
    from strategies.catalog import catalog

    cat = catalog()
    assert list(cat) == strategies.available()
    for name, entry in cat.items():
        cls = strategies.get(name)
        fields = [f for f in dataclasses.fields(cls)]
        assert [p.name for p in entry.params] == [f.name for f in fields], name
        for p, f in zip(entry.params, fields):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert eval(p.default.removesuffix("()") + ("()" if p.default.endswith("()") else "")) == default, (name, p)
        assert entry.description == (cls.__doc__ or "").strip().splitlines()[0]


def test_help_explains_ordering_expressions():
    p = subprocess.run([sys.executable, str(ROOT / "run_benchmark.py"), "--help"], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0
    for token in ("perm:a,b,c", "random:K ", "random:K:a,b,c,d", "reverse ", "--retrain-stale", "--list --config"):
        assert token in p.stdout, token
