"""The configuration's schema: every section's keys, types and ranges (pydantic), and pydantic's errors
written as one line. Torch-free (the `train` and `data` sections are declared by benchmark/train_settings.py
and benchmark/data/settings.py without torch), so that the command checks a configuration's shape before its
heavy imports (experiment/checks.py); experiment.config.validate adds what needs the models and strategies.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from benchmark.data.settings import DataSection
from benchmark.schema import Bool, Float, NonNegInt, PositiveFloat, PositiveInt, Section
from benchmark.text import did_you_mean
from benchmark.train_settings import TrainConfig

MAX_NAME = 100  # experiment names: one path component, short enough for every file system
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps")


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


def one_line(e: ValidationError) -> str:
    """pydantic's errors -> 'train.lr: must be ... (got ...)' for the first few, on one line."""
    msgs = []
    for err in e.errors()[:3]:
        loc = tuple(err["loc"])
        where = ".".join(str(x) for x in loc) or "config"
        kind = err["type"]
        if kind == "extra_forbidden":
            section = ".".join(str(x) for x in loc[:-1])
            allowed = ", ".join(_fields(ExperimentConfig, loc[:-1]))
            msgs.append(f"unknown setting {where!r}; allowed{' in ' + section if section else ''}: {allowed}"
                        + did_you_mean(loc[-1], _fields(ExperimentConfig, loc[:-1])))
        elif kind == "missing":
            msgs.append(f"{where} is missing")
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            msgs.append(f"{where} must be a mapping of settings, got {err.get('input')!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            msgs.append(f"{where}: {msg[0].lower() + msg[1:]}, got {err.get('input')!r}")
    more = len(e.errors()) - len(msgs)
    return "; ".join(msgs) + (f" (and {more} more)" if more > 0 else "")
