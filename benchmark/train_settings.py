"""The `train` section of the configuration (TrainConfig) and the types of its settings that other modules
own (the reference probe's, the scored checkpoint's), declared without torch so that the command checks a
configuration before the heavy imports. benchmark.training, benchmark.reference_probe and
benchmark.checkpoints use them from here."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .schema import Bool, NonNegFloat, NonNegInt, PositiveFloat, PositiveInt, Section, one_or_per_dataset, positive_grid

REFERENCE_LRS = (0.01, 0.05, 0.1, 0.5, 1.0)  # the reference's grid of AdamW learning rates
REFERENCE_STEPS = 1000  # full-batch AdamW steps per fit

# The probe's settings of the `train` section:
# probe: sklearn = L-BFGS on standardised features, C from probe_C (benchmark/probe.py; the micro
# presets); reference = full-batch AdamW on L2-normalised features, lr from probe_lr, refitted
# (benchmark/reference_probe.py).
ProbeKind = Literal["sklearn", "reference"]
ProbeLR = Annotated[Any, BeforeValidator(positive_grid("learning rate", at_most=100))]  # probe: reference only
ProbeSteps = Annotated[PositiveInt, Field(le=100000)]  # probe: reference only

N_CHECKPOINTS = 100  # the reference saves every floor(S / 100) steps; its last index is 100


def _checkpoint(v):
    what = "'end', or the index 0..100 of the reference's checkpoints of each task (100: the last, near the end)"
    if v == "end":
        return v
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= N_CHECKPOINTS:
        raise ValueError(f"input should be {what}")
    return v


# The `train` section's choice of the scored model (benchmark/checkpoints.py)
Checkpoint = Annotated[Any, BeforeValidator(_checkpoint)]


def _int_in(v, lo: int, hi: int, what: str) -> int:
    # pydantic's own wording, so that messages read alike across settings
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"input should be a valid integer ({what})")
    if v < lo:
        raise ValueError(f"input should be greater than or equal to {lo} ({what})")
    if v > hi:
        raise ValueError(f"input should be less than or equal to {hi} ({what})")
    return v


def _epochs(v):
    """A positive integer, or a mapping dataset name -> positive integer."""
    what = "epochs per task, or a mapping dataset -> epochs"
    if isinstance(v, dict):
        if not v:
            raise ValueError(f"an empty mapping gives no epochs ({what})")
        return {str(k): _int_in(n, 1, 10000, what) for k, n in v.items()}
    return _int_in(v, 1, 10000, what)


class TrainConfig(Section):
    """The `train` section: the optimisation protocol shared by every strategy."""

    # epochs per task: one number, or a mapping dataset -> epochs (the paper presets: Cars 35, DTD 76, ...)
    epochs: Annotated[Any, BeforeValidator(_epochs)] = 2
    batch_size: Annotated[PositiveInt, Field(le=65536)] = 32
    # AdamW peak learning rate (above 1 no run converges), or a mapping dataset -> rate (ZSCL: 5e-5 for
    # Aircraft and MNIST, 1e-5 for the others)
    lr: Annotated[Any, BeforeValidator(one_or_per_dataset(float, 0, 1.0, "a learning rate, or a mapping dataset -> rate"))] = 1e-4
    # optimiser steps per task, or a mapping dataset -> steps, instead of epochs (ZSCL: 1000); null: epochs
    iterations: Annotated[Any, BeforeValidator(one_or_per_dataset(int, 1, 10_000_000, "steps per task, or a mapping dataset -> steps"))] = None
    label_smoothing: Annotated[NonNegFloat, Field(le=1.0)] = 0.0  # of the task head's cross-entropy (ZSCL: 0.2)
    weight_decay: Annotated[NonNegFloat, Field(le=10.0)] = 0.1  # decoupled (AdamW) weight decay
    warmup_steps: NonNegInt = 10  # linear warm-up iterations, then cosine decay to 0 (per task)
    grad_clip: NonNegFloat = 1.0  # max global gradient norm; 0 disables
    head_init: Literal["lp", "zs"] = "lp"  # "lp": logistic-regression probe on current features; "zs": text embeddings
    # inverse l2 strength of the logistic-regression probe (LP metric and LP-init heads); a list is a grid
    # from which the validation split picks (the paper presets use benchmark.probe.PROBE_GRID)
    probe_C: Annotated[Any, BeforeValidator(positive_grid("number"))] = 1.0
    # fp32: the paper's; tf32: float32 matmuls on TF32 tensor cores (CUDA); bf16: autocast forward passes
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    # sklearn (benchmark/probe.py) or the authors' AdamW probe (benchmark/reference_probe.py), its lr grid, steps
    probe: ProbeKind = "sklearn"
    probe_lr: ProbeLR = list(REFERENCE_LRS)
    probe_steps: ProbeSteps = REFERENCE_STEPS
    checkpoint: Checkpoint = "end"  # the scored model of a task: end, or the reference's checkpoint 0..100
    # Throughput settings (docs/design.md, "GPU throughput"); at their defaults they are left out of a run's
    # config (evaluation/storage/identity.py, LEGACY), so older runs keep their ids.
    anchor_autocast: Bool = False  # bf16 only: frozen forward passes (LDIFS's anchor) under autocast too
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"  # torch.compile the encoder

    @model_validator(mode="after")
    def _anchor_needs_bf16(self):
        if self.anchor_autocast and self.precision != "bf16":
            raise ValueError(f"anchor_autocast runs frozen forward passes under bf16 autocast; it needs "
                             f"precision: bf16 (got {self.precision})")
        return self
