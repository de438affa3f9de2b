"""``--workers K``: K spawned processes on the study's shared storage, each training
warm-started trials until the study has its target count or the wall budget is spent. The
parent passes a Ctrl-C or SIGTERM on, and a worker that fails says why in one line."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
import time
import warnings
from pathlib import Path

import optuna
import torch

from autosize import interrupts
from autosize.errors import AutosizeError, StorageLost, StudyError
from autosize.search.config import StudyConfig, load_config
from autosize.search.deadline import Deadline
from autosize.search.opening import open_study
from autosize.search.optimize import optimize
from autosize.search.prepare import prepare
from autosize.search.trials.seed import ensure_seed

__all__ = ["run_workers", "worker", "worth_spawning"]


def worth_spawning(left: float, prepare_seconds: float) -> bool:
    """Whether worker processes, which each prepare the data again (as long as this
    process took, ``prepare_seconds``) before their first trial, would still have time to
    train in the ``left`` seconds of the wall budget."""
    return left > 2 * prepare_seconds


def run_workers(config: StudyConfig, workers: int, target: int | None, deadline: Deadline) -> None:
    """Spawn ``workers`` processes on the study and wait for them; a failed one is an error."""
    ctx = multiprocessing.get_context("spawn")
    # No fixed share per worker: each runs until the study has its target (or the wall
    # budget is spent), so a worker that dies leaves its part to the others.
    procs = [
        ctx.Process(
            target=worker,
            # the parent's Optuna verbosity: -v shows the workers' Optuna lines too
            args=(
                str(config.path),
                worker_overrides(config),
                target,
                deadline,
                optuna.logging.get_verbosity(),
            ),
            daemon=False,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join()
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reaches every process of the group; a SIGTERM (`kill`, a
        # scheduler) only this one: pass it on, so no worker trains on as an orphan.
        if interrupts.received() != signal.SIGINT:
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        # Each worker fails its trial as interrupted and exits; one still alive when this
        # process's own watchdog is near (a wind-down that hangs) is killed: its trial
        # stays RUNNING until the heartbeat fails it, and is redone on resume.
        end = time.monotonic() + interrupts.GRACE_SECONDS - 5
        for proc in procs:
            proc.join(timeout=max(0.0, end - time.monotonic()))
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        raise
    failed = [proc.exitcode for proc in procs if proc.exitcode != 0]
    if failed:
        codes = ", ".join(str(c) for c in failed)
        raise StudyError(
            f"{len(failed)} of {workers} workers failed (exit code {codes}; each said why "
            "above); the trials they finished are in the study, run again to resume"
        )


def worker_overrides(config: StudyConfig) -> dict[str, object]:
    """Every command-line override, and the resolved name, storage and target."""
    return {
        **config.overrides,
        "name": config.name,
        "storage": config.storage,
        "n_trials": config.n_trials,
    }


def worker(
    config_path: str,
    overrides: dict[str, object],
    target: int | None,
    deadline: Deadline,
    verbosity: int | None = None,
) -> None:
    """One worker process of ``--workers K``: same storage, trials until the target, with
    the parent's Optuna ``verbosity`` (a spawned process starts at Optuna's INFO)."""
    if verbosity is not None:
        optuna.logging.set_verbosity(verbosity)
        if verbosity > logging.INFO:
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    interrupts.install()  # SIGTERM as Ctrl-C: "interrupted"; a hung wind-down ends
    torch.set_num_threads(1)
    try:
        _work(config_path, overrides, target, deadline)
    except StorageLost as exc:  # one line, as `autosize run` says it
        print(f"autosize: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(3)
    except AutosizeError as exc:  # a full artifact store, a missing seed: one line too
        print(f"autosize: error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:  # the trial is failed as "interrupted"; the parent says so
        sys.exit(interrupts.EXIT_INTERRUPTED)


def _work(
    config_path: str, overrides: dict[str, object], target: int | None, deadline: Deadline
) -> None:
    if deadline.training_left() <= 0:  # spawned too late: loading the data would overrun
        return
    config = load_config(Path(config_path), overrides=overrides)
    p = prepare(config)
    study = open_study(p)
    seed_model, seed_spec = ensure_seed(study, p, deadline)
    optimize(
        study,
        p,
        seed_model,
        seed_spec,
        n_trials=None,
        target=target,
        deadline=deadline,
        on_trial=lambda result: print(result.line(), flush=True),
    )
