"""`cfbench --list`: the strategies (read from their files, without importing them or torch), datasets
and presets, and the strategy specs a preset runs; answers in well under a second."""
from __future__ import annotations

import sys
from pathlib import Path


def list_command(config: str) -> int:
    """Strategies (description, hyperparameters with types, defaults and help), datasets and presets,
    and the strategy specs the preset `config` runs (its model-dependent choices, e.g. ldifs's lam).
    A strategy file that cannot be used is named in one warning line; a preset whose strategy sections
    have the wrong shape is refused in one line (exit 2), as every other command refuses it."""
    from benchmark import strict_yaml
    from benchmark.text import terminal
    from benchmark.data.registry import known_datasets
    from experiment.presets import preset_path, presets
    from strategies.catalog import catalog, describe

    datasets = known_datasets()
    path = preset_path(config)
    try:
        cfg = strict_yaml.load_file(path) or {}
        specs = _preset_specs(cfg, config)
    except (OSError, ValueError, UnicodeDecodeError) as e:  # StrictYamlError and YAMLError's are ValueErrors
        why = getattr(e, "strerror", None) or " ".join(str(e).split())
        print(f"error: --config {terminal(config)}: {terminal(why)}; fix the file (see configs/micro.yaml)",
              file=sys.stderr)
        return 2
    problems: dict[str, str] = {}
    entries = catalog(problems=problems)
    for file, problem in sorted(problems.items()):
        print(f"warning: {terminal(file)} is skipped: {terminal(problem)}; the other strategies work", file=sys.stderr)
    print("strategies (hyperparameter (type) = default  # what it does; override with name:key=value):")
    print(describe(entries, specs))
    print("datasets:  ", ", ".join(datasets))
    print("presets:   ", ", ".join(presets()))
    if cfg.get("strategies"):
        print(f"--config {terminal(config)}: seeds {', '.join(map(str, cfg.get('seeds') or []))}; methods (paper label = "
              "strategy spec; head_init= is the method's own head initialisation):")
        for line in _preset_methods(cfg):
            print(f"  {terminal(line)}")
    return 0


def _preset_specs(cfg, config: str) -> dict[str, list[str]]:
    """strategy name -> the lines --list prints about preset `cfg`'s use of it; ValueError (one line) for
    sections of the wrong shape."""
    if not isinstance(cfg, dict):
        raise ValueError("expected a mapping of settings at the top level")
    strats, defaults, model = cfg.get("strategies", []), cfg.get("strategy_defaults") or {}, cfg.get("model") or {}
    if not isinstance(strats, list) or not all(
            isinstance(s, str) or (isinstance(s, dict) and isinstance(s.get("name"), str)) for s in strats):
        raise ValueError("strategies must be a list of specs (name, name:key=value or a mapping with `name`)")
    if not isinstance(defaults, dict) or not all(isinstance(d, dict) for d in defaults.values()):
        raise ValueError("strategy_defaults must map strategy names to mappings of hyperparameters, "
                         "e.g. {ldifs: {lam: 30}}")
    if not isinstance(model, dict):
        raise ValueError("model must be a mapping with `name` (and `pretrained`)")
    specs: dict[str, list[str]] = {}
    for spec in strats:
        text = spec if isinstance(spec, str) else ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        name = (spec.partition(":")[0] if isinstance(spec, str) else spec["name"]).strip()
        specs.setdefault(name, []).append(f"preset runs: {text} (--config {config}; model {model.get('name')})")
    for name, d in defaults.items():
        specs.setdefault(str(name), []).insert(0, "default for this model: " + ",".join(f"{k}={v}" for k, v in d.items())
                                               + f" (strategy_defaults of --config {config})")
    return specs


def _preset_methods(cfg: dict) -> list[str]:
    """'ZS-init-CE = ft:head_init=zs' for each strategy entry of a preset (read without importing torch)."""
    from strategies.catalog import method_label
    from strategies.spec import SpecError, parse_spec

    default = ((cfg.get("train") or {}).get("head_init") or "lp") if isinstance(cfg.get("train"), dict) else "lp"
    out = []
    for spec in cfg["strategies"]:
        try:
            name, params = parse_spec(spec) if isinstance(spec, str) else (str(spec.get("name")), dict(spec))
        except (SpecError, AttributeError):
            out.append(f"? = {spec!r} (not a strategy spec; the run reports what is wrong with it)")
            continue
        text = spec if isinstance(spec, str) else ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
        out.append(f"{method_label(name, params.get('head_init', default))} = {text}")
    return out
