"""The Ray executor (`--executor ray`): the plan's runs are Ray tasks on a Ray cluster.

One run is one Ray task reserving `executor.cpus_per_run` CPUs and `executor.gpus_per_run` GPUs
(fractions pack runs on one GPU); Ray schedules them, retries a run whose worker process or node died
(`executor.max_retries`), and knows the cluster's members. Ray reuses its worker processes, so a
worker keeps what runs share across the runs it trains (executors/ray_worker.py).

This process (the driver) is the only writer of the experiment folder: it holds each run's lock
(evaluation.storage.records.RunLock, on its own file system) while the run is out, writes the files the worker
returns atomically, checks the records and only then writes the done marker. Workers need no shared
file system, and a run is done once, by this process, or not at all (docs/design.md, "Executors").
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import sys
import time
from collections import deque
from pathlib import Path

from benchmark.files import atomic_write_bytes
from evaluation.storage.records import CONFIG, RECORDS, RunLock, check_records, check_run, mark_done, unmark_done

from .. import interrupts
from .base import Executor, Job
from .local import tensorboard_name
from .ray_worker import NodeInputError, train_run, warm_up

ROOT = Path(__file__).resolve().parents[2]  # the repository: on the workers' PYTHONPATH


class RayExecutor(Executor):
    """Trains on the Ray cluster at `executor.address` (None: a local instance started here; "auto": the
    running one). A Ray connection this process already has (ray.init before, e.g. in tests) is used as is."""

    def __init__(self, address: str | None = None, early: bool = False):
        self.owned = False  # whether this executor started the connection (and so shuts it down)
        self.address, self.early = address, early  # the address asked for, read before validation
        self.problem: str | None = None

    def start(self, jobs: int = 1, left: list[dict] | None = None, settings: dict | None = None) -> None:
        """With `early`, join (or start) the cluster now and have the workers that will train (`warm_count`)
        import the training code, overlapping this process's pre-flight. Nothing is trained or written."""
        if self.early:
            self.problem = self._connect(self.address)  # a failure is reported by `execute`
            if self.problem is None:
                import ray

                s = settings or {}
                cpus, gpus = float(s.get("cpus_per_run", 1)), float(s.get("gpus_per_run", 0))
                # reserved as a run, in the runs' runtime environment: workers on the runs' nodes, reused by them
                env = worker_env(left[0].get("numerics", "native") if left else "native")
                warm = ray.remote(warm_up).options(num_cpus=cpus, num_gpus=gpus, runtime_env={"env_vars": env})
                self.warming = [warm.remote() for _ in range(warm_count(cpus, gpus, left))]

    def refusal(self, settings: dict) -> str | None:
        problem = self._problem(settings)
        return problem if isinstance(problem, str) else None

    def execute(self, todo: list[dict], job: Job) -> int:
        s = job.executor or {}
        problem = self._problem(s)
        if isinstance(problem, str):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        return _Dispatch(todo, job, s, slots=problem).run()

    def _problem(self, s: dict) -> str | int:
        """Why no run of the plan can go to the cluster (one line), or how many runs it can hold at once:
        the address (joined if need be), then the resources a run reserves."""
        if self.early and self.problem is None and s.get("address") != self.address:
            self.problem = (f"executor.address {s.get('address')!r} is not the address read before the configuration "
                            f"was checked ({self.address!r}); give it with --ray-address")
        problem = self.problem or self._connect(s.get("address"))
        if problem is None:
            problem = _resource_problem(float(s.get("cpus_per_run", 1)), float(s.get("gpus_per_run", 0)))
        return problem

    def _connect(self, address: str | None) -> str | None:
        import ray

        if ray.is_initialized():
            return None
        if address not in (None, "auto") and not address.startswith("ray://"):
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
            except (OSError, ValueError) as e:
                return (f"--ray-address {address}: no Ray cluster answers there ({getattr(e, 'strerror', None) or e}); "
                        "give the head's host:port (`ray start --head` prints it), `auto`, or omit it for a local instance")
        extra = {} if address else {"include_dashboard": False}
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **extra)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"--ray-address {address}: cannot join the Ray cluster ({reason})"
        self.owned = True
        return None

    def close(self) -> None:
        if self.owned:
            import ray

            ray.shutdown()
            self.owned = False


def _resource_problem(cpus: float, gpus: float) -> str | int:
    """Why no run can be placed on the cluster (one line), or how many runs it can hold at once."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    if gpus > 0 and not any(n.get("GPU", 0) > 0 for n in nodes):
        return (f"executor.gpus_per_run={gpus:g}, but the Ray cluster has no GPU; add GPU nodes, or run on the CPU "
                "with --device cpu --set executor.gpus_per_run=0")
    slots = sum(min(math.floor(n.get("CPU", 0) / cpus + 1e-9),
                    math.floor(n.get("GPU", 0) / gpus + 1e-9) if gpus else sys.maxsize) for n in nodes)
    if slots < 1:
        most = max(((n.get("CPU", 0), n.get("GPU", 0)) for n in nodes), default=(0, 0))
        return (f"no node of the Ray cluster has executor.cpus_per_run={cpus:g} CPUs and gpus_per_run={gpus:g} GPUs "
                f"for one run (the largest has {most[0]:g} CPUs, {most[1]:g} GPUs); lower them")
    return slots


def warm_count(cpus: float, gpus: float, left: list[dict] | None) -> int:
    """The runs the cluster trains at once, at most the runs left (`left`; None: not known); 0 where no run
    fits. (One per cluster CPU left unused workers wherever a run reserves several CPUs or a GPU.)"""
    slots = _resource_problem(cpus, gpus) if cpus > 0 and gpus >= 0 else 0
    return 0 if isinstance(slots, str) else slots if left is None else min(slots, len(left))


def worker_env(numerics_setting: str) -> dict[str, str]:
    """The environment of the workers: the repository on PYTHONPATH, the driver's thread-pool sizes, and
    the numeric path's variables (which must be in place before torch starts)."""
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
           **thread_env()}
    if numerics_setting != "native":
        from benchmark import numerics

        env.update(numerics.SETTINGS[numerics_setting])
    return env


def thread_env() -> dict[str, str]:
    """The thread-pool sizes this process's libraries start with, for the workers. Ray would start them
    with OMP_NUM_THREADS=cpus_per_run; but the foundation model is loaded (by the pre-flight here, and
    first thing in a worker) with the pool a process starts with, before a run limits it to `threads`, and
    measured on the micro preset a model loaded under 1 thread instead of 2 changes the runs' records after
    their second task. With the driver's sizes, workers give the records the local executor gives here."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    env = {k: os.environ[k] for k in names if os.environ.get(k)}
    env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    return env


class _Dispatch:
    """Keeps as many runs out as the cluster can train at once, each under its lock here."""

    def __init__(self, todo: list[dict], job: Job, settings: dict, slots: int):
        import ray

        self.job, self.slots = job, slots
        self.queue = deque(enumerate(todo, 1))
        self.total = len(todo)
        self.out: dict = {}  # object ref -> (k, run, lock)
        self.busy: list = []  # runs another process holds
        self.failed = 0
        env = worker_env(todo[0].get("numerics", "native") if todo else "native")
        self.remote = ray.remote(train_run).options(
            num_cpus=float(settings.get("cpus_per_run", 1)), num_gpus=float(settings.get("gpus_per_run", 0)),
            max_retries=int(settings.get("max_retries", 2)), retry_exceptions=False,
            runtime_env={"env_vars": env})
        self.retries = int(settings.get("max_retries", 2))

    def run(self) -> int:
        import ray
        from tqdm import tqdm

        self.t0 = time.time()
        self.bar = tqdm(total=self.total, unit="run", desc="runs", file=sys.stderr, disable=not self.job.bars)
        interrupts.set_phase("a Ray plan: every run the driver wrote a done marker for is kept; the others "
                             "rerun next time")
        try:
            while self.queue or self.out:
                self._submit()
                if not self.out:
                    break
                ready, _ = ray.wait(list(self.out), num_returns=1, timeout=1.0)
                for ref in ready:
                    code = self._receive(ref)
                    if code == 2:
                        self._cancel()
                        return 2
                self.bar.set_postfix_str(f"running {len(self.out)}, queued {len(self.queue)}")
                if not self.queue and not self.out and self.busy:
                    self._wait_for_busy()
        except KeyboardInterrupt:
            self._cancel()
            raise
        finally:
            self.bar.close()
        return 1 if self.failed else 0

    def _submit(self) -> None:
        while self.queue and len(self.out) < self.slots:
            k, r = self.queue.popleft()
            run_dir = self.job.exp_dir / "runs" / r["run_id"]
            lock = RunLock(run_dir)
            if not lock.acquire(blocking=False):
                self.busy.append((k, r))
                continue
            why = check_run(run_dir)
            if why is None:  # another process finished it meanwhile
                lock.release()
                self.bar.update(1)
                continue
            if (run_dir / "done").exists():
                print(f"run {r['run_id']}: {why}; training it again", file=sys.stderr)
            unmark_done(run_dir)
            tb = self.job.exp_dir / "tensorboard" / tensorboard_name(r)
            if self.job.tensorboard and tb.exists():  # a rerun of an interrupted run: its curves start afresh
                shutil.rmtree(tb)
            self.out[self.remote.remote(r, self.job.tensorboard, self.job.wandb, self.job.exp_dir.name)] = (k, r, lock)

    def _receive(self, ref) -> int:
        import ray
        from ray.exceptions import RayTaskError

        k, r, lock = self.out.pop(ref)
        label = f"[{k}/{self.total} {r['strategy']['name']} {'>'.join(r['ordering'])} s{r['seed']}]"
        try:
            got = ray.get(ref)
            self._write(r, got)
        except RayTaskError as e:
            cause = e.cause if getattr(e, "cause", None) is not None else e
            reason = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
            if isinstance(cause, NodeInputError):
                print(f"error: {reason}; every node needs the datasets and weights at the paths of the config "
                      "(data.root, data.cache_dir)", file=sys.stderr)
                return 2
            print(f"error: run {r['run_id']} {label} failed on its worker: {reason}", file=sys.stderr)
            self.failed += 1
            return 1
        except ray.exceptions.RayError as e:  # the worker process or node died more often than allowed
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"error: run {r['run_id']} {label} lost its worker {self.retries + 1} times (executor.max_retries="
                  f"{self.retries}); last: {reason[:200]}", file=sys.stderr)
            self.failed += 1
            return 1
        except (RuntimeError, OSError, ValueError) as e:  # records that fail the checks, or a write error
            print(f"error: run {r['run_id']} {label}: {e}", file=sys.stderr)
            self.failed += 1
            return 1
        finally:
            lock.release()
        self.bar.update(1)
        print(f"{label} done: run {r['run_id']} on {got['node']} ({time.time() - self.t0:.0f}s elapsed)",
              file=self.job.log, flush=True)
        return 0

    def _write(self, r: dict, got: dict) -> None:
        """The worker's files into the run folder (atomically), checked, then the done marker."""
        run_dir = self.job.exp_dir / "runs" / r["run_id"]
        why = check_records(json.loads(got["files"][RECORDS]), r["run_id"])
        if why is not None:
            raise RuntimeError(f"the worker returned records that are not a finished run: {why}")
        for rel, data in got["tensorboard"].items():  # named as the local executor names them
            atomic_write_bytes(self.job.exp_dir / "tensorboard" / tensorboard_name(r) / rel, data)
        for rel, data in got.get("wandb", {}).items():  # W&B's own run folders (offline-run-..., run-...)
            atomic_write_bytes(self.job.exp_dir / "wandb" / rel, data)
        atomic_write_bytes(run_dir / CONFIG, got["files"][CONFIG])
        atomic_write_bytes(run_dir / RECORDS, got["files"][RECORDS])
        mark_done(run_dir)

    def _wait_for_busy(self) -> None:
        """Runs another process held: wait for their locks; those it left unfinished go out from here."""
        busy, self.busy = self.busy, []
        for k, r in busy:
            print(f"run {r['run_id']} is being trained by another process; waiting for it", file=self.job.log,
                  flush=True)
            lock = RunLock(self.job.exp_dir / "runs" / r["run_id"])
            lock.acquire(blocking=True)
            lock.release()
            self.queue.append((k, r))

    def _cancel(self) -> None:
        import ray

        for ref, (_, _, lock) in list(self.out.items()):
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or its worker is gone
                pass
            lock.release()
        self.out.clear()
