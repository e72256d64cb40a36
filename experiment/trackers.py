"""The evaluation of a run, step by step, in TensorBoard and Weights & Biases (logging only: the
records stay the source of every number; nothing here changes a run or its id).

After step 0 and after every task, `RunTrackers.step` logs, for every dataset of the suite, the
linear-probe and zero-shot accuracy and their change since step 0, the row of R just scored, the
feature drift at each tap (LDIFS distance and CKA), and the task's training loss per epoch and penalty
terms; `finish` logs the run's headline figures (ACC, BWT, FWT, ZSCL's MTIL figures, dLP/dZS), as
the leaderboard computes them. Values are fractions, as in records.json. Tags (TensorBoard) and keys
(W&B) are the same:

    eval/LP/<dataset>   eval/ZS/<dataset>   eval/dLP/<dataset>   eval/dZS/<dataset>
    eval/R/task<k>_<dataset>                (the ordering's k-th task, own head)
    eval/dLP_heldout  eval/dZS_heldout      (means over the datasets the ordering does not train)
    drift/ldifs/<dataset>/<tap>   drift/cka/<dataset>/<tap>
    train/loss_epoch                        (one point per epoch, x: the epoch counted over the run)
    train/penalty/<name>                    (the task's mean unweighted term, x: the step)
    final/<figure>                          (x: the last step; in W&B also the run's summary)

The x axis of the eval/ and drift/ tags is the step: 0 = the pre-trained model, k = after task k.

TensorBoard: the writer of Avalanche's TensorboardLogger that already holds the run's loss curves, so
one TensorBoard run (`<out>/<experiment>/tensorboard/<run_name>`) shows both. W&B (`wandb: true`,
`--wandb`): one W&B run per run, project = the experiment, group = strategy, parameters and ordering
(the seeds of one setting side by side), name = `run_name`, config = the run's config; files under
`<out>/<experiment>/wandb/`. `WANDB_MODE=offline` needs no account and no network (`wandb sync` later
uploads them).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any


def run_name(run: dict) -> str:
    """A run's name in TensorBoard's and W&B's run lists: strategy and hyperparameters, ordering,
    seed, then the run id (unique), e.g. `ldifs_lam=30__mnist-fashion_mnist__seed0__0a1b2c3d4e5f`.
    Only letters, digits and `.=,_-`: a config value can never choose another folder."""
    params = ",".join(f"{k}={v}" for k, v in run["strategy"].items() if k != "name")
    parts = [run["strategy"]["name"] + (f"_{params}" if params else ""), "-".join(run["ordering"]),
             f"seed{run['seed']}", run["run_id"]]
    return "__".join(_safe(p, 80) for p in parts)


def _safe(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9.=,_-]+", "_", str(text)).strip("._")[:limit] or "x"


def step_scalars(rec: dict, step: int) -> dict[str, float]:
    """The eval/ and drift/ scalars of `step` from a run's records (rows 0..step must be there)."""
    suite, ordering = rec["suite"], rec["ordering"]
    held = [j for j, d in enumerate(suite) if d not in ordering]
    out: dict[str, float] = {}
    for name in ("LP", "ZS"):
        m = rec.get(name)
        if not m:
            continue
        row, first = m[step], m[0]
        for j, d in enumerate(suite):
            out[f"eval/{name}/{d}"] = float(row[j])
            out[f"eval/d{name}/{d}"] = float(row[j]) - float(first[j])
        if held:
            out[f"eval/d{name}_heldout"] = sum(float(row[j]) - float(first[j]) for j in held) / len(held)
    for k, (d, v) in enumerate(zip(ordering, rec["R"][step])):
        out[f"eval/R/task{k + 1}_{d}"] = float(v)
    drift = rec.get("drift")
    if isinstance(drift, dict) and len(drift.get("ldifs") or []) > step:
        for kind in ("ldifs", "cka"):
            for d, per_tap in zip(suite, drift[kind][step]):
                for tap, v in zip(drift["taps"], per_tap):
                    if v is not None and math.isfinite(v):
                        out[f"drift/{kind}/{d}/{tap}"] = float(v)
    return out


def final_scalars(rec: dict) -> dict[str, float]:
    """The run's headline figures as the leaderboard computes them (undefined ones left out)."""
    from evaluation.reporting.leaderboard import MAIN_COLS, run_row
    from evaluation.storage.records import Records

    # the record the runner is finishing, as the typed schema the leaderboard reads (its file is checked
    # when it is read back; not validated again here)
    row = run_row(Records.model_construct(**rec), rec["run_id"])
    return {f"final/{c}": float(row[c]) for c in MAIN_COLS if isinstance(row.get(c), float) and math.isfinite(row[c])}


class RunTrackers:
    """The trackers of one run: a TensorBoard writer (or None) and a W&B run (or None)."""

    def __init__(self, run: dict, tb_writer=None, wandb_dir: Path | None = None, project: str | None = None):
        self.tb = tb_writer
        self.wb = None
        self.epochs = 0
        if wandb_dir is not None:
            self.wb = start_wandb(run, Path(wandb_dir), project)

    @property
    def active(self) -> bool:
        return self.tb is not None or self.wb is not None

    def step(self, rec: dict, step: int, losses: list[float] | None = None, penalties: dict | None = None) -> None:
        if not self.active:
            return
        scalars = step_scalars(rec, step)
        for name, p in (penalties or {}).items():
            if isinstance(p, dict) and math.isfinite(p.get("mean", math.nan)):
                scalars[f"train/penalty/{name}"] = float(p["mean"])
        for tag, v in scalars.items():
            if self.tb is not None:
                self.tb.add_scalar(tag, v, step)
        epoch_points = []
        for loss in losses or []:
            self.epochs += 1
            if loss is not None and math.isfinite(loss):
                epoch_points.append((self.epochs, float(loss)))
                if self.tb is not None:
                    self.tb.add_scalar("train/loss_epoch", float(loss), self.epochs)
        if self.wb is not None:
            for epoch, loss in epoch_points:  # W&B's step must grow: epochs on their own axis
                self.wb.log({"train/loss_epoch": loss, "train/epoch": epoch})
            self.wb.log({**scalars, "step": step})
        if self.tb is not None:
            self.tb.flush()

    def finish(self, rec: dict) -> None:
        if not self.active:
            return
        scalars = final_scalars(rec)
        last = len(rec["ordering"])
        if self.tb is not None:
            for tag, v in scalars.items():
                self.tb.add_scalar(tag, v, last)
            self.tb.flush()
        if self.wb is not None:
            self.wb.log({**scalars, "step": last})
            for tag, v in scalars.items():
                self.wb.summary[tag] = v
            self.wb.finish()
            self.wb = None

    def abort(self) -> None:
        """A run that stopped before its end: its W&B run is closed as failed (TensorBoard's files are
        removed by the executor that reruns it)."""
        if self.wb is not None:
            try:
                self.wb.finish(exit_code=1)
            finally:
                self.wb = None


def start_wandb(run: dict, folder: Path, project: str | None):
    """One W&B run for `run`, its files under `folder`. The mode is W&B's own (`WANDB_MODE`: online with
    an account, offline with none)."""
    os.environ.setdefault("WANDB_SILENT", "true")  # W&B's banner lines would break the one-line-per-epoch log
    import wandb

    folder.mkdir(parents=True, exist_ok=True)
    params = ",".join(f"{k}={v}" for k, v in run["strategy"].items() if k != "name")
    group = _safe(run["strategy"]["name"] + (f"_{params}" if params else "") + "__" + "-".join(run["ordering"]), 120)
    wb = wandb.init(project=os.environ.get("WANDB_PROJECT") or project or "cfbench", group=group,
                    name=run_name(run), job_type=run["strategy"]["name"], config=_config(run), dir=str(folder),
                    reinit="create_new", settings=wandb.Settings(console="off", save_code=False))
    wb.define_metric("step")
    wb.define_metric("train/epoch")
    for prefix in ("eval/*", "drift/*", "final/*", "train/penalty/*"):
        wb.define_metric(prefix, step_metric="step")
    wb.define_metric("train/loss_epoch", step_metric="train/epoch")
    return wb


def _config(run: dict) -> dict[str, Any]:
    """The run's config as W&B config: nested sections flattened by W&B itself, the id kept."""
    return {k: v for k, v in run.items()}
