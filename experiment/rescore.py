"""Scoring saved runs again without training (`run_benchmark.py --rescore [EXPERIMENT]`).

A run trained with `save_weights: true` keeps the model it scored after every task
(benchmark/models/saved.py). After a dataset is added to the suite (or drift is measured on another
sample), every run of the new plan whose training is the same as a kept run's (its config equal but for
`suite` and `drift`, which only decide what is scored) is scored from those weights, step 0 from the
pre-trained model as always. Its records are written into its own run folder under its own id (the id
the new config hashes to, as if it had been trained with that suite), with `rescored` saying from which
run and when; the collector reads them like any other. The original run's folder is not touched.

Training does not depend on the suite (scoring draws no random numbers and reads nothing training
writes), so a rescored run's records equal those of a run that scored the larger suite from the start:
tests/experiment/test_rescore.py checks it bit for bit on the micro suite.
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import TextIO

from evaluation.storage.identity import training_key
from evaluation.storage.records import (CONFIG, RECORDS, RunLock, check_run, finished_runs, load_records, mark_done,
                                        unmark_done)

from .config import ConfigError, plan

def source_folder(out: Path, experiment: str, source: str | None) -> Path:
    """The experiment folder whose kept runs are scored: `source` as an experiment name under `out`, or a
    path to an experiment folder; None: this experiment."""
    candidates = [Path(out) / experiment] if source is None else [Path(out) / source, Path(source)]
    for c in candidates:
        if (c / "runs").is_dir():
            return c
    raise ConfigError(f"--rescore {source or experiment}: no experiment folder with runs/ at "
                      f"{' or '.join(str(c) for c in candidates)}; name an experiment under --out "
                      f"({out}) or an experiment folder's path")


def sources_for(runs: list[dict], src_dir: Path) -> tuple[dict[str, Path], list[dict]]:
    """For each run of `runs`, a finished run of `src_dir` with kept weights for every task that trained
    the same way: ({run id: its source's folder}, [runs without one])."""
    from benchmark.models.saved import has_weights

    by_key: dict[str, Path] = {}
    for p in finished_runs(src_dir, quiet=True):
        try:
            rec = load_records(p)
        except (OSError, ValueError):
            continue
        if has_weights(p, len(rec.ordering)):
            by_key.setdefault(training_key(rec.config), p)
    found, lacking = {}, []
    for r in runs:
        p = by_key.get(training_key(r))
        if p is None:
            lacking.append(r)
        else:
            found[r["run_id"]] = p
    return found, lacking


def rescore_experiment(cfg: dict, out: Path, source: str | None, log: TextIO, quiet: bool = False,
                       plots: bool = True) -> int:
    """Score every run of `cfg`'s plan that is not done from the kept weights of a run of `source` that
    trained the same way; then collect. Exit code 2 (one line) when a run has no such source."""
    from .driver import collect_and_print

    exp_dir = Path(out) / cfg["experiment"]
    src_dir = source_folder(out, cfg["experiment"], source)
    runs = plan(cfg)
    todo = [r for r in runs if check_run(exp_dir / "runs" / r["run_id"]) is not None]
    found, lacking = sources_for(todo, src_dir)
    if lacking:
        r = lacking[0]
        raise ConfigError(f"--rescore: {len(lacking)} of the {len(todo)} runs to score have no finished run in {src_dir} "
                          f"that trained the same way with kept weights (e.g. {r['strategy']['name']} "
                          f"{'>'.join(r['ordering'])} seed {r['seed']}); train those with --set save_weights=true, "
                          "or narrow the plan (--strategies, --seeds, --orderings) to the runs that have them")
    print(f"experiment {cfg['experiment']}: {len(runs)} runs planned, {len(runs) - len(todo)} already done, "
          f"{len(todo)} to score from kept weights in {src_dir} -> {exp_dir}", file=log)
    if todo:
        from .preflight import load_and_check, missing_inputs
        from .runner import Resources

        missing = missing_inputs(cfg)
        if missing:
            for line in missing:
                print(f"error: {line}", file=sys.stderr)
            return 2
        res = Resources()
        if not load_and_check(cfg, res):
            return 2
        from . import interrupts

        for k, r in enumerate(todo, 1):
            interrupts.set_phase(f"rescoring run {r['run_id']}: rescored runs are kept; this one has no done marker "
                                 "and is scored again next time")
            run_dir = exp_dir / "runs" / r["run_id"]
            lock = RunLock(run_dir)
            if not lock.acquire(blocking=True):
                continue
            try:
                if check_run(run_dir) is None:
                    continue
                unmark_done(run_dir)
                rescore_run(r, found[r["run_id"]], run_dir, res, log,
                            label=f"[{k}/{len(todo)} {r['strategy']['name']} {'>'.join(r['ordering'])} s{r['seed']}]")
            finally:
                lock.release()
    return collect_and_print(exp_dir, log, quiet, plots)


def rescore_run(run: dict, source_dir: Path, run_dir: Path, res, log: TextIO = sys.stderr, label: str = "") -> dict:
    """Score `run` after step 0 and after every task from the weights kept in `source_dir`; write its
    records (with `rescored`), config and done marker into `run_dir`."""
    import torch

    import strategies
    from benchmark.models import TaskModel, text_side
    from benchmark.models.saved import load_step, weights_path
    from benchmark.precision import matmul_precision
    from benchmark.profiling import phase
    from benchmark.files import atomic_write_json
    from benchmark import numerics
    from evaluation.scoring.drift import tap_names

    from .runner import _utc, add_scores, prepare_scoring

    src = load_records(source_dir)
    t0 = time.time()
    with matmul_precision((run.get("train") or {}).get("precision", "fp32")):
        fm, data, zs, tcfg, ev, meter = prepare_scoring(run, res)
        ordering = run["ordering"]
        text = text_side(fm, {t: zs[n] for t, n in enumerate(ordering)} if zs else None)
        model = TaskModel(copy.deepcopy(fm.visual), fm.embed_dim, run["model"].get("freeze_bn_stats", False),
                          text=text).to(run["device"])
        strategies.from_config(run["strategy"]).rebuild(model)
        rec = {"run_id": run["run_id"], "config": run, "ordering": ordering, "suite": list(data),
               "R": [], "LP": [], "ZS": [] if zs else None, "steps": [], "complete": False,
               **({"drift": {"sample": meter.sample, "taps": tap_names(model), "ldifs": [], "cka": []}}
                  if meter else {}),
               "code": src.code, "env": src.env,
               "rescored": {"from": src.run_id, "from_experiment": source_dir.parent.parent.name,
                            "source_suite": src.suite, "env": {"numerics": numerics.describe(),
                                                                  "threads": torch.get_num_threads()}}}
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / CONFIG, run)
        for step in range(len(ordering) + 1):
            t = time.time()
            if step > 0:
                load_step(weights_path(source_dir, step), model)
            with phase("step-0 scores" if step == 0 else "evaluation: other"):
                row = ev.evaluate(model, ordering, n_trained=step)
            add_scores(rec, row, model, step, meter, zs)
            # the training's entry as the source wrote it (key order and numbers unchanged)
            trained = dict(src.as_written()["steps"][step]) if step < len(src.steps) else {"step": step}
            rec["steps"].append({**trained, "eval_s": round(time.time() - t, 2)})
            print(f"{label} step {step}: rescored R={[round(v, 3) for v in row['R']]} [eval {time.time() - t:.1f}s]",
                  file=log, flush=True)
    rec["complete"] = True
    for key in ("wall_s", "started", "finished"):  # the training's, as the source recorded them
        if key in src.model_fields_set:
            rec[key] = getattr(src, key)
    rec["rescored"].update(wall_s=round(time.time() - t0, 2), started=_utc(t0), finished=_utc(time.time()))
    atomic_write_json(run_dir / RECORDS, rec)
    mark_done(run_dir)
    return rec
