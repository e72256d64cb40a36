"""Presets (YAML) + command-line overrides -> one validated config -> the plan: one entry per run.

Everything is checked here, before any model or data is loaded: the shape of every section, types
and ranges (pydantic; see `schema.py`), names of datasets, strategies and models, and that no run is
asked for twice. Every failure is a ConfigError whose message is one line.

Longer than 300 lines because the schema of every section, the checks that span sections and the
one-line messages they give belong together: split, each half would need the other's names.
"""
from __future__ import annotations

import copy
import itertools
import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

import strategies
from evaluation.storage.identity import RunSpec, drop_legacy

from benchmark import strict_yaml
from benchmark.data import known_datasets
from .orderings import OrderingError, expand_orderings
from .presets import preset_path, presets
from benchmark.data.settings import DataSection
from benchmark.schema import Bool, Float, NonNegInt, PositiveFloat, PositiveInt, Section
from benchmark.training import TrainConfig

MAX_NAME = 100  # experiment names: one path component, short enough for every file system
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


class ConfigError(ValueError):
    """Bad input: the message says what is wrong, what is allowed and what to do."""


# ----------------------------------------------------------------------------------------------
# The schema


class ModelSection(Section):
    """Which foundation model: an open_clip architecture and its weights."""

    name: str  # open_clip architecture, e.g. ViT-B-32, or one of benchmark/model_configs/
    pretrained: str | None = None  # open_clip tag (openai), a checkpoint path, "packaged", or null (random)
    image_size: Annotated[PositiveInt, Field(ge=8, le=4096)] | None = None  # input resolution override
    freeze_bn_stats: Bool = False  # keep pre-trained BatchNorm statistics while fine-tuning


class ExecutorSection(Section):
    """How the plan's runs are spread out (`executor: {kind: ray, ...}`, --executor, --ray-address). Not part
    of any run's identity: a run gives the same records whichever executor trains it."""

    kind: Literal["local", "ray"] = "local"  # local: this process (and `jobs` helpers); ray: a Ray cluster
    address: str | None = None  # Ray: None starts a local instance; "auto" joins a running one; or host:port
    cpus_per_run: Annotated[Float, Field(gt=0, le=1024)] = 1.0  # Ray: CPUs reserved by each run
    gpus_per_run: Annotated[Float, Field(ge=0, le=64)] = 0.0  # Ray: GPUs per run, fractional packs runs on one GPU
    max_retries: Annotated[NonNegInt, Field(le=100)] = 2  # Ray: retries of a run whose worker process or node died

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return v if v is None else ray_address_problem(v)


def ray_address_problem(v: str) -> str:
    """`v` if it is a Ray address (auto, host:port, [v6]:port, ray://host:port); else ValueError, said
    before Ray is asked (Ray waits half a minute on a malformed address, then warns in its own words)."""
    from urllib.parse import urlsplit

    if v == "auto":
        return v
    rule = "auto, HOST:PORT, [IPv6]:PORT or ray://HOST:PORT"
    if not v.isprintable() or any(c.isspace() for c in v) or len(v) > 300:
        raise ValueError(f"not an address: it holds spaces or control characters; give {rule}")
    try:
        parts = urlsplit(v if v.startswith("ray://") else f"ray://{v}")
        port = parts.port
    except ValueError as e:
        raise ValueError(f"not an address ({e}); give {rule}") from None
    if parts.scheme != "ray" or not parts.hostname or port is None or parts.path or parts.query or parts.fragment:
        raise ValueError(f"not an address; give {rule}")
    return v


class ExperimentConfig(Section):
    """A whole experiment: model x orderings x strategies x seeds, and how each run trains."""

    experiment: str  # the results folder's name under --out: one safe path component
    model: ModelSection
    suite: Annotated[list[str], Field(min_length=1)]  # datasets scored after every step
    orderings: Annotated[list[Any], Field(min_length=1)]  # lists of dataset names, or "a,b,c"
    strategies: Annotated[list[Any], Field(min_length=1)]  # "name", "name:key=value,..." or {name: ..., key: value}
    # model-dependent defaults of this preset, e.g. {ldifs: {lam: 30}} on the micro model: applied to every
    # strategy of that name whose spec does not set the hyperparameter (run ids carry the values used)
    strategy_defaults: dict[str, dict[str, Any]] = {}
    seeds: Annotated[list[Annotated[NonNegInt, Field(le=2**32 - 1)]], Field(min_length=1)]
    data: DataSection = DataSection()
    train: TrainConfig = TrainConfig()
    device: str = "cpu"  # torch device: cpu, cuda, cuda:N or mps
    threads: Annotated[NonNegInt, Field(le=1024)] = 0  # CPU threads for torch and BLAS; 0: the library default
    # training images per second of one GPU for this model and precision (scripts/gpu_throughput.py
    # measures it); --dry-run turns it into a GPU-hour estimate. Not part of any run's identity.
    throughput: PositiveFloat | None = None
    # Training loss curves (and strategies' penalty terms) through Avalanche's TensorBoard logger, in
    # <out>/<experiment>/tensorboard/<strategy_params>__<ordering>__seed<N>__<run id>/
    # (`tensorboard --logdir` there). Logging only: not part of any run's identity.
    tensorboard: Bool = False
    # The evaluation after every step (and the run's config, figures and loss curves) in Weights & Biases
    # (experiment/trackers.py): one W&B run per run, project = the experiment, files in
    # <out>/<experiment>/wandb/; WANDB_MODE=offline needs no account. Logging only: not part of any run's identity.
    wandb: Bool = False
    # Processes that share out the runs (run_benchmark.py --jobs overrides it); each uses `threads` CPU
    # threads, so keep jobs x threads within the cores. Results do not depend on it.
    jobs: Annotated[PositiveInt, Field(le=256)] = 1
    # The CPU numeric path (benchmark/numerics.py): `native` runs the kernels this CPU offers; `portable`
    # pins the lowest common ones (run_benchmark.py re-executes itself with their environment before
    # torch starts; one thread). It changes the records, so `portable` is part of a run's identity.
    numerics: Literal["native", "portable"] = "native"
    # Feature drift (evaluation/scoring/drift.py): test images per dataset on which every layer's drift from the
    # pre-trained encoder is measured after every step; 0 turns it off. It changes the records, so a
    # value other than the default is part of a run's identity.
    drift: Annotated[NonNegInt, Field(le=100_000)] = 64
    executor: ExecutorSection = ExecutorSection()
    # Keep the scored image encoder and heads after every task in runs/<id>/weights/step<k>.pt, so that
    # `--rescore` can score the run on another suite later without training (benchmark/models/saved.py;
    # --dry-run gives the size). Storage only: not part of any run's identity.
    save_weights: Bool = False

    @field_validator("experiment")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not _SAFE_NAME.fullmatch(v) or len(v) > MAX_NAME:
            raise ValueError(f"must be one folder name of at most {MAX_NAME} characters: letters, digits, '.', "
                             "'_', '-', not starting with '.' or '-' (it becomes --out/<experiment>)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.fullmatch(v):
            raise ValueError("must be cpu, cuda, cuda:N or mps")
        return v


# ----------------------------------------------------------------------------------------------
# Loading and overriding


def load_preset(name_or_path: str) -> dict[str, Any]:
    path = preset_path(name_or_path)
    if not path.exists():
        raise ConfigError(f"no config {name_or_path!r}; presets: {', '.join(presets())}, or a path to a YAML file")
    try:
        cfg = strict_yaml.load_file(path)
    except strict_yaml.StrictYamlError as e:
        raise ConfigError(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file; a config is YAML text") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level (see configs/micro.yaml)")
    return cfg


def set_dotted(cfg: dict, assignment: str) -> None:
    """Apply 'train.lr=3e-5' (the value is parsed as YAML)."""
    key, eq, value = assignment.partition("=")
    parts = key.split(".")
    if not eq or not all(p.strip() for p in parts):
        raise ConfigError(f"--set {assignment!r}: expected key.sub=value, e.g. --set train.lr=3e-5")
    node = cfg
    for p in parts[:-1]:
        if node.get(p) is None:
            node[p] = {}
        node = node[p]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment!r}: {p!r} is a value, not a section of settings")
    try:
        node[parts[-1]] = strict_yaml.loads(value)
    except strict_yaml.StrictYamlError as e:
        raise ConfigError(f"--set {assignment[:80]!r}: {e}") from None
    except yaml.YAMLError:
        raise ConfigError(f"--set {assignment!r}: the value is not valid YAML; quote strings, write lists as [a, b]"
                          ) from None


# ----------------------------------------------------------------------------------------------
# Validation


def _fields(model: type[Section], loc: tuple) -> list[str]:
    """The allowed keys of the section at `loc` (for the 'unknown setting' message)."""
    for part in loc:
        if not isinstance(part, str) or part not in model.model_fields:
            break
        ann = model.model_fields[part].annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            model = ann
        else:
            break
    return list(model.model_fields)


def _one_line(e: ValidationError) -> str:
    """pydantic's errors -> 'train.lr: must be ... (got ...)' for the first few, on one line."""
    msgs = []
    for err in e.errors()[:3]:
        loc = tuple(err["loc"])
        where = ".".join(str(x) for x in loc) or "config"
        kind = err["type"]
        if kind == "extra_forbidden":
            section = ".".join(str(x) for x in loc[:-1])
            allowed = ", ".join(_fields(ExperimentConfig, loc[:-1]))
            msgs.append(f"unknown setting {where!r}; allowed{' in ' + section if section else ''}: {allowed}")
        elif kind == "missing":
            msgs.append(f"{where} is missing")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msgs.append(f"{where} must be a mapping of settings, got {err.get('input')!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msgs.append(f"{where}: {msg[0].lower() + msg[1:]}, got {err.get('input')!r}")
    more = len(e.errors()) - len(msgs)
    return "; ".join(msgs) + (f" (and {more} more)" if more > 0 else "")


def device_problem(device: str) -> str | None:
    """Why `device` cannot run here (one line), or None. Not part of validate(): a dry run or a collection
    plans a GPU preset anywhere, and a real run reports it together with missing data and weights."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return f"device {device!r}: no CUDA device is visible here; use --device cpu"
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
    if device == "mps" and not torch.backends.mps.is_available():
        return "device 'mps': the Apple GPU backend is not available here; use --device cpu"
    return None


def validate(cfg: dict) -> dict:
    """Check everything that does not depend on this machine; return a normalised copy (orderings as
    lists, strategies as {name, **hparams}). `device_problem` checks the device."""
    if not isinstance(cfg, dict):
        raise ConfigError("a config is a mapping of settings (see configs/micro.yaml)")
    try:
        c = ExperimentConfig.model_validate(copy.deepcopy(cfg))
    except ValidationError as e:
        raise ConfigError(f"config: {_one_line(e)}; fix the YAML file or override with --set KEY=VALUE") from None

    from benchmark.models import available_models  # open_clip: imported only once the shapes are right

    models = available_models()
    if c.model.name not in models:
        raise ConfigError(f"unknown model {c.model.name!r}; open_clip knows {len(models)} architectures, "
                          "e.g. ViT-B-32, micro-effnet-lite0-minilm (python -c 'import open_clip; "
                          "print(open_clip.list_models())')")
    known = known_datasets()
    unknown = [d for d in c.suite if d not in known]
    if unknown:
        raise ConfigError(f"unknown dataset {', '.join(map(repr, unknown))} in suite; available: {', '.join(known)}")
    twice = sorted({d for d in c.suite if c.suite.count(d) > 1})
    if twice:
        raise ConfigError(f"suite lists {', '.join(twice)} more than once; name each dataset once")
    for item in c.orderings:
        if not (isinstance(item, str) or (isinstance(item, list) and all(isinstance(d, str) for d in item))):
            raise ConfigError(f"orderings: {str(item)[:80]!r} is not an ordering; each is a list of dataset names or "
                              "a text such as a,b,c or perm:a,b (e.g. --orderings mnist,textures)")
    for item in c.orderings:  # a known dataset outside the suite: say how to fix it, not "unknown"
        names = item.split(",") if isinstance(item, str) and ":" not in item else item
        if isinstance(names, list):
            outside = [str(d).strip() for d in names if str(d).strip() in known and str(d).strip() not in c.suite]
            if outside:
                raise ConfigError(f"ordering {item} trains on {', '.join(outside)}, which the suite does not score; "
                                  "add it to `suite` (or --suite)")
    try:
        orderings = expand_orderings(c.orderings, c.suite, seed=c.seeds[0])
    except OrderingError as e:
        raise ConfigError(f"{e}; the suite is {', '.join(c.suite)}") from None
    if not orderings:
        raise ConfigError("no ordering given; pass --orderings a,b,c")
    for key in ("epochs", "lr", "iterations"):  # per-dataset mappings: every name a dataset, every task covered
        per = getattr(c.train, key)
        if not isinstance(per, dict):
            continue
        stray = sorted(str(d) for d in per if d not in known)
        if stray:
            raise ConfigError(f"train.{key} names {', '.join(map(repr, stray))}, which is no dataset; "
                              f"available: {', '.join(known)}")
        lacking = sorted({d for o in orderings for d in o} - set(per))
        if lacking:
            raise ConfigError(f"train.{key} gives {key} per dataset but none for {', '.join(lacking)}; add them "
                              f"or give one number for all (--set train.{key}=N)")

    specs: list[dict] = []
    for s in c.strategies:
        hp, run_settings = split_run_keys(with_defaults(s, c.strategy_defaults))
        if run_settings.get("head_init") == c.train.head_init:  # the experiment's own: the plain entry's runs
            run_settings.pop("head_init")
        for spec in strategies.expand(hp):  # raises SpecError, one line
            spec = {**spec, **run_settings}  # head_init: plan() moves it into the runs' train section
            if spec in specs:
                raise ConfigError(f"strategy {_label(spec)} is asked for twice; list each strategy and "
                                  "hyperparameter combination once")
            specs.append(spec)
    twice = sorted({s for s in c.seeds if c.seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"seeds list {', '.join(map(str, twice))} more than once; give each seed once")
    if c.numerics == "portable" and c.threads != 1:
        raise ConfigError(f"numerics: portable needs threads: 1 (got {c.threads}{', the core count' if c.threads == 0 else ''}"
                          "): with more threads, how work is split and summed may still depend on the machine; "
                          "--set threads=1 (and --jobs N for more processes)")

    if c.executor.kind == "ray" and c.device.startswith("cuda") and c.executor.gpus_per_run == 0:
        raise ConfigError(f"device {c.device}: on Ray a run gets a GPU only when it reserves one; "
                          "--set executor.gpus_per_run=1 (or 0.25 to pack four runs on a GPU)")
    if c.executor.kind == "ray" and c.save_weights:
        raise ConfigError("save_weights: the Ray executor returns a run's records, not its weights, so they would be "
                          "lost; train with the local executor (--executor local, --jobs N) to keep weights")
    # new settings at their legacy values leave run ids as they were (evaluation/storage/identity.LEGACY)
    out = drop_legacy(c.model_dump(), sections_only=True)
    out["orderings"], out["strategies"] = orderings, specs
    out.pop("strategy_defaults", None)  # applied above: the specs carry them
    return out


def with_defaults(spec, defaults: dict[str, dict[str, Any]]):
    """A strategy spec with the preset's `strategy_defaults` for its name filled in where it sets nothing."""
    from strategies.spec import parse_spec

    unknown = sorted(set(defaults) - set(strategies.available()))
    if unknown:
        raise ConfigError(f"strategy_defaults names unknown strateg{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(unknown)}; available: {', '.join(strategies.available())}")
    name, params = parse_spec(spec) if isinstance(spec, str) else (spec.get("name"), {
        k: v for k, v in spec.items() if k != "name"})
    if name not in defaults:
        return spec
    return {"name": name, **defaults[name], **params}


def split_run_keys(spec) -> tuple[Any, dict[str, Any]]:
    """A strategy entry -> (the entry without its run settings, those settings: {"head_init": "zs"} for
    "ft:head_init=zs"), the settings checked (strategies.spec.RUN_KEYS). An entry without them is returned
    as it is."""
    from strategies.spec import RUN_KEYS, check_run_keys, parse_spec

    if isinstance(spec, str):
        name, params = parse_spec(spec)
    elif isinstance(spec, dict) and isinstance(spec.get("name"), str):
        name, params = spec["name"], {k: v for k, v in spec.items() if k != "name"}
    else:
        return spec, {}  # strategies.expand names what is wrong with it
    settings = {k: params.pop(k) for k in RUN_KEYS if k in params}
    if not settings:
        return spec, {}
    return {"name": name, **params}, check_run_keys(name, settings)


def _label(spec: dict) -> str:
    params = ",".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return spec["name"] + (f":{params}" if params else "")


def plan(cfg: dict) -> list[dict]:
    """model x ordering x strategy x seed -> one run config each, with its stable id (what enters the
    config and the id: evaluation/storage/identity.RunSpec)."""
    return [RunSpec.of(cfg, ordering, entry, seed).config()
            for ordering, entry, seed in itertools.product(cfg["orderings"], cfg["strategies"], cfg["seeds"])]
