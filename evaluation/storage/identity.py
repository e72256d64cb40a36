"""Run identity, in one place: what a run's config holds, which of it enters the run id, which of it is
execution-only, which settings are left out at their legacy values, and how the id is computed.

A run's config (runs/<id>/config.json, and `config` in its records) is built by `RunSpec.config()`:

- Keys that decide the results (`RESULT_KEYS`) enter the id: model, suite, data, train, ordering,
  strategy, seed, threads (on the CPU the thread count changes the floating-point reductions and so the
  records), and numerics and drift when they differ from their legacy values (below).
- Keys that change how a run executes, not what it computes (`EXECUTION_KEYS`: the device), are kept in
  the config but left out of the id.
- Settings of the `data` section that say where files are (`DATA_LOCATION_KEYS`) are left out of the id:
  moving the data folder or the cache must not rename (and so retrain) every run.
- Keys that change only what is scored, never how a run trains (`SCORING_ONLY_KEYS`), are part of the id
  but not of the training key (`training_key`) by which `--rescore` finds a run with kept weights.

Legacy values (`LEGACY`). A setting added after runs were made would change the id of every earlier
run, even of runs it does not affect; so each such setting is left out of a run's config while it holds
the value that reproduces the earlier behaviour, and any other value is part of the config and of the
id. The micro presets' ids and records therefore stand. Each rule below says why its value is the
legacy one.

The id is the first 12 hex digits of the SHA-1 of the hashed config as JSON, keys sorted.

No torch: the reporting side (settings_of) and run storage (check_records) use it as well as the plan.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

# Keys of a run's config that decide its results; each enters the run id (numerics and drift only when
# they hold another value than their legacy one, see LEGACY).
RESULT_KEYS = ("model", "suite", "data", "train", "ordering", "strategy", "seed", "threads", "numerics", "drift")
# Keys that change how a run executes but not what it computes: kept in config.json, left out of the id.
EXECUTION_KEYS = ("device",)
# Settings of the `data` section that say where files are, not what is computed: left out of the id.
DATA_LOCATION_KEYS = ("root", "download", "cache_dir")
# Keys that change what is scored, never how a run trains: --rescore scores a kept run's weights again
# for a config that differs from it only in these.
SCORING_ONLY_KEYS = ("suite", "drift")
# Keys of the train section that only the reference probe (benchmark/reference_probe.py) reads.
REFERENCE_ONLY_KEYS = ("probe", "probe_lr", "probe_steps")
# Keys of a strategy entry that are run settings, not hyperparameters (ft:head_init=zs): `RunSpec.of` moves
# them into the run's train section (strategies.spec.RUN_KEYS checks their values).
ENTRY_TRAIN_KEYS = ("head_init",)


@dataclass(frozen=True)
class LegacyRule:
    """Settings (`keys` of `section`, None: the run's top level) left out of a config while `at_legacy`
    holds for that section; `why`: the behaviour their legacy value reproduces."""

    section: str | None
    keys: tuple[str, ...]
    at_legacy: Callable[[dict[str, Any]], bool]
    why: str


LEGACY: tuple[LegacyRule, ...] = (
    LegacyRule("train", REFERENCE_ONLY_KEYS, lambda s: s.get("probe", "sklearn") == "sklearn",
               "the sklearn probe was the only probe; its runs never read the reference probe's lr grid or steps"),
    LegacyRule("data", ("variants",), lambda s: not s.get("variants"),
               "no dataset variants: the suite's datasets as they were"),
    LegacyRule("data", ("max_templates",), lambda s: s.get("max_templates") is None,
               "every prompt template of the registry in the zero-shot heads"),
    LegacyRule("train", ("checkpoint",), lambda s: s.get("checkpoint", "end") == "end",
               "the model at the end of a task is the one scored"),
    LegacyRule("train", ("anchor_autocast",), lambda s: not s.get("anchor_autocast", False),
               "frozen forward passes (LDIFS's anchor) in full precision"),
    LegacyRule("train", ("compile",), lambda s: s.get("compile", "off") == "off",
               "the encoder runs eagerly (no torch.compile)"),
    LegacyRule("train", ("iterations",), lambda s: s.get("iterations") is None,
               "training is counted in epochs"),
    LegacyRule("train", ("label_smoothing",), lambda s: s.get("label_smoothing", 0.0) == 0.0,
               "plain cross-entropy"),
    LegacyRule(None, ("numerics",), lambda s: s.get("numerics", "native") == "native",
               "the CPU kernels this machine offers (benchmark/numerics.py), as every run before `portable`"),
    LegacyRule(None, ("drift",), lambda s: s.get("drift", 64) == 64,
               "feature drift measured on 64 images per dataset, the default since drift was recorded"),
)


def drop_legacy(config: dict[str, Any], sections_only: bool = False) -> dict[str, Any]:
    """`config` without the settings of `LEGACY` that hold their legacy value. A section that loses a key
    is copied (the caller's dicts are left as they were); the order of the other keys is kept (config.json
    is written in that order). `sections_only`: leave the top-level rules out (the experiment's config,
    whose numerics and drift the command itself reads)."""
    out = dict(config)
    for rule in LEGACY:
        if rule.section is None:
            if not sections_only and rule.at_legacy(out):
                for k in rule.keys:
                    out.pop(k, None)
            continue
        section = out.get(rule.section)
        if isinstance(section, dict) and rule.at_legacy(section) and any(k in section for k in rule.keys):
            out[rule.section] = {k: v for k, v in section.items() if k not in rule.keys}
    return out


def hashed_config(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's config that determines its results (what its id hashes): without the run id,
    the execution keys and the data section's locations."""
    out = {k: v for k, v in config.items() if k != "run_id" and k not in EXECUTION_KEYS}
    if isinstance(out.get("data"), dict):
        out["data"] = {k: v for k, v in out["data"].items() if k not in DATA_LOCATION_KEYS}
    return out


def run_id(hashed: dict[str, Any]) -> str:
    """A stable id: the hash of the run's result-determining config, keys sorted."""
    blob = json.dumps(hashed, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def id_of(config: dict[str, Any]) -> str:
    """The id a run's config hashes to."""
    return run_id(hashed_config(config))


def training_key(config: dict[str, Any]) -> str:
    """What decides a run's training: its hashed config without the scoring-only keys (as JSON)."""
    return json.dumps({k: v for k, v in hashed_config(config).items() if k not in SCORING_ONLY_KEYS},
                      sort_keys=True, default=str)


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True, default=str)
    return out


def settings_of(configs: list[dict[str, Any]], ignore: tuple[str, ...] = ()) -> list[str]:
    """Per run config, the result-determining settings outside strategy, ordering and seed (train, data,
    model, suite, threads, ...) in which the runs of this collection differ: 'train.lr=0.01', or '' where
    all agree. Runs that differ in any of them are never pooled as seeds of one row. `ignore`: flattened
    keys left out (train.head_init, which a method's label already says)."""
    flat = [{k: v for k, v in _flat({k: v for k, v in hashed_config(c).items()
                                     if k not in ("strategy", "ordering", "seed")}).items() if k not in ignore}
            for c in configs]
    keys = sorted({k for f in flat for k in f})
    varying = [k for k in keys if len({f.get(k) for f in flat}) > 1]
    return [",".join(f"{k}={f.get(k, 'unset')}" for k in varying) for f in flat]


@dataclass(frozen=True)
class RunSpec:
    """One run of a plan: every key of its config. `config()` is what is written and hashed."""

    model: dict[str, Any]
    suite: list[str]
    data: dict[str, Any]
    train: dict[str, Any]
    ordering: list[str]
    strategy: dict[str, Any]
    seed: int
    threads: int
    numerics: str = "native"
    drift: int = 64
    device: str = "cpu"

    @classmethod
    def of(cls, cfg: dict[str, Any], ordering: list[str], entry: dict[str, Any], seed: int) -> "RunSpec":
        """The run of a validated experiment config for one ordering, strategy entry and seed. A strategy
        entry's own head init (ft:head_init=zs) is the run's train.head_init: the same run, and id, as the
        experiment-wide setting would give; an entry without one runs the experiment's."""
        strategy = {k: v for k, v in entry.items() if k not in ENTRY_TRAIN_KEYS}
        moved = {k: entry[k] for k in ENTRY_TRAIN_KEYS if k in entry and entry[k] != cfg["train"].get(k)}
        train = {**cfg["train"], **moved} if moved else cfg["train"]
        return cls(model=cfg["model"], suite=cfg["suite"], data=cfg["data"], train=train, ordering=ordering,
                   strategy=strategy, seed=seed, threads=cfg["threads"], numerics=cfg.get("numerics", "native"),
                   drift=cfg.get("drift", 64), **{k: cfg[k] for k in EXECUTION_KEYS})

    def config(self) -> dict[str, Any]:
        """The run's config: {"run_id", result keys (legacy values left out), execution keys}."""
        run = drop_legacy({k: getattr(self, k) for k in RESULT_KEYS})
        run.update({k: getattr(self, k) for k in EXECUTION_KEYS})
        return {"run_id": id_of(run), **run}
