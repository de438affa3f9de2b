"""Run a study: train (or reuse) the seed, run the baselines, then warm-started trials.

The order inside one study:

1. **Check everything first.** Config, sampler, pruner, data and every
   architecture are validated before the storage is touched, so a bad config
   writes nothing.
2. **The seed** is trained once per (dataset, seed architecture, budget, seed)
   and stored as a study artifact; its key and metrics are in the study's user
   attribute ``seed``. A resumed run downloads it instead of retraining.
3. **Baselines** (``role = "baseline"``): the seed architecture and the
   configured ladder, trained from random initialisation for the trial budget,
   as trials of the same study. Only missing ones run on resume.
4. **Warm-started trials** (``role = "warmstart"``): parent, operations,
   training with pruning, then user attributes and the trained network as an
   artifact. ``n_trials`` is the study's target count of warm-started trials:
   running again resumes towards it.

Each step has its own module: :mod:`~autosize.search.prepare`,
:mod:`~autosize.search.seed`, :mod:`~autosize.search.baselines`,
:mod:`~autosize.search.warmstart` (with the policy in
:mod:`~autosize.search.policy`), and :mod:`~autosize.search.training`, the one
training path they share. This module opens the study, refuses incompatible
resumes, holds the wall budget (:mod:`~autosize.search.clock`) and runs the
worker processes.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import signal
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autosize import interrupts
from autosize.errors import AutosizeError, ConfigError, StorageLost, StudyError
from autosize.models import ArchSpec, Net
from autosize.population import can_stack
from autosize.search import record
from autosize.search.baselines import run_baselines
from autosize.search.clock import Deadline
from autosize.search.cohort import auto_size, auto_sizer, run_cohorts
from autosize.search.config import StudyConfig, load_config
from autosize.search.prepare import Prepared, load_bundle, make_sampler, prepare
from autosize.search.results import TrialResult
from autosize.search.seed import SeedNotFound, ensure_seed, seed_key
from autosize.search.storage import fail_stale, make_storage
from autosize.search.training import (
    RESERVE_EVALS,
    RESERVE_SECONDS,
    TrialFailed,
    metrics,
)
from autosize.search.warmstart import StepObjective
from autosize.train import resolve_device

__all__ = ["TrialFailed", "load_bundle", "make_sampler", "open_study", "prepare", "run_study"]

logger = logging.getLogger(__name__)


def _counted(study: optuna.Study) -> int:
    """Warm-started trials that count towards n_trials.

    Interrupted trials are redone, and so are those whose network the artifact store could
    not take, and those of a worker that stopped (killed, its machine gone): the heartbeat
    marks those FAIL with no ``fail_reason`` of autosize's.
    """
    finished = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    return sum(
        1
        for t in finished
        if (rec := record.read(t)).is_warmstart
        and not rec.redone
        and not (t.state == TrialState.FAIL and rec.fail_reason is None)
    )


class _StopAtTarget:
    def __init__(self, target: int | None) -> None:
        self.target = target

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.target is not None and _counted(study) >= self.target:
            study.stop()


def open_study(p: Prepared) -> optuna.Study:
    storage = make_storage(p.config.storage)
    study = optuna.create_study(
        storage=storage,
        study_name=p.config.name,
        sampler=p.sampler(),
        pruner=p.pruner(),
        directions=p.config.directions,
        load_if_exists=True,
    )
    if study.directions != [
        optuna.study.StudyDirection.MAXIMIZE
        if d == "maximize"
        else optuna.study.StudyDirection.MINIMIZE
        for d in p.config.directions
    ]:
        raise ConfigError(
            f"{p.config.path}: study {p.config.name!r} exists with other directions; change study.name or the objective"
        )
    return study


# What must not change while a study resumes: its trials would stop being comparable.
_IDENTITY = {
    "data": "[data]",
    "objective": "study.objective",
    "trial_budget": "[train]",
    "seed_key": "[seed] (architecture, budget) or study.seed",
    "data_sha256": "the data file's contents",
}


def _study_record(p: Prepared) -> dict[str, object]:
    config = p.config
    return {
        "config": str(config.path),
        "dataset": p.bundle.name,
        "task": p.bundle.task,
        "data": {
            "name": config.data.name,
            "data_dir": config.data.data_dir,
            "options": dict(config.data.options),
            "max_train": config.data.max_train,
            "max_val": config.data.max_val,
            "max_test": config.data.max_test,
        },
        "data_notes": dict(p.bundle.notes),
        # A table's files (None for the six datasets, whose files are checked by sha256).
        "data_sha256": p.bundle.notes.get("sha256"),
        "preprocessing": p.bundle.preprocessing.to_dict(),
        "seed": config.seed,
        "seed_key": seed_key(p),
        "objective": config.objective,
        "direction": config.direction,
        "trial_budget": config.train.record(),
        "artifacts": str(config.artifacts),
        # the wall budget the chosen step seconds follow (not part of the identity)
        "timeout": config.timeout,
    }


def _check_same_study(p: Prepared, existing: object, meta: dict[str, object]) -> None:
    """Refuse to resume a study with a config that would mix incomparable trials."""
    if not isinstance(existing, dict):
        return
    for key, where in _IDENTITY.items():
        before, now = existing.get(key), json.loads(json.dumps(meta[key]))
        if key in existing and before != now:
            if key == "trial_budget" and any(line.startswith("[train]") for line in p.chosen):
                _refuse_another_budget(p, existing.get("timeout"))
            raise ConfigError(
                f"{p.config.path}: {where} differs from what study {p.config.name!r} was started "
                f"with ({before!r} then, {now!r} now); restore it or set a new study.name"
            )


def _refuse_another_budget(p: Prepared, then: object) -> None:
    """A study whose step seconds were chosen from its wall budget resumed with another."""
    again = (
        f"resume it with --timeout {then:g}"
        if isinstance(then, int | float)
        else "resume it with the --timeout it was started with"
    )
    now = "no timeout" if p.config.timeout is None else f"--timeout {p.config.timeout:g}"
    raise ConfigError(
        f"{p.config.path}: study {p.config.name!r} was started with another wall budget, and "
        f"the seconds of each step were chosen from it ({now} now); {again}, "
        "or start a new study with --study-name NAME"
    )


def run_study(
    config: StudyConfig,
    *,
    workers: int = 1,
    timeout: float | None = None,
    started: float | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
    on_prepared: Callable[[Prepared], None] | None = None,
) -> optuna.Study:
    """Run (or resume) the study described by ``config`` and return it.

    ``on_prepared`` is called once the config is checked against the data and before
    anything is written (the CLI prints what was chosen from the data there).

    ``timeout`` (default: the config's) is the study's wall budget in seconds from
    ``started`` (a ``time.time()`` value; default: now; the CLI passes the moment its
    process started). Everything counts against it, the seed and the baselines too; the
    trial running at the deadline is cut there and keeps what it has.
    """
    if workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {workers}")
    seconds = timeout if timeout is not None else config.timeout
    deadline = replace(Deadline.after(seconds, start=started), reserve=RESERVE_SECONDS)
    preparing = time.perf_counter()
    p = prepare(config)
    prepare_seconds = time.perf_counter() - preparing
    config = p.config  # with the parts chosen from the data
    if workers > 1 and (config.storage.startswith("memory:") or not config.path.is_file()):
        raise ConfigError(
            "--workers: several workers need a config file and a shared storage "
            "(not --data or an in-memory storage)"
        )
    if on_prepared is not None:
        on_prepared(p)
    config.artifacts.check_writable()
    study = open_study(p)
    meta = _study_record(p)
    existing = record.study_meta(study)
    if existing:  # refused before anything is written, stale trials included
        _check_same_study(p, existing, meta)
    fail_stale(study)
    if not existing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(
                [config.objective, "params"] if p.multi_objective else [config.objective]
            )
        record.write_study_meta(study, meta)
    try:
        seed_model, seed_spec = ensure_seed(study, p, deadline)
    except SeedNotFound as exc:
        before = existing.get("artifacts") if isinstance(existing, dict) else None
        if before is None or before == str(config.artifacts):
            raise
        raise ConfigError(
            f"{config.path}: study.artifacts is {str(config.artifacts)!r}, but study "
            f"{config.name!r} was started with {before!r} and its networks are not here ({exc}); "
            "restore it, or copy that folder's files here"
        ) from None
    if deadline.seconds is not None:
        deadline = replace(deadline, reserve=_reserve(seed_model, p))
    run_baselines(study, p, on_trial=on_trial, deadline=deadline)
    target = config.n_trials
    remaining = None if target is None else max(0, target - _counted(study))
    if remaining == 0:
        logger.info("study %r already has its %s warm-started trials", config.name, target)
        return study
    if deadline.training_left() <= 0:
        logger.info("study %r: the wall budget is spent", config.name)
        return study
    if workers > 1 and not worth_spawning(deadline.training_left(), prepare_seconds):
        # Each worker loads the data again before its first trial: with less time left
        # than that takes, a worker would spend what is left loading; train here instead.
        logger.info(
            "study %r: %.0f s left, less than a worker needs to load the data (%.1f s here): "
            "this process trains alone",
            config.name,
            deadline.training_left(),
            prepare_seconds,
        )
        workers = 1
    if workers == 1:
        _optimize(
            study,
            p,
            seed_model,
            seed_spec,
            n_trials=remaining,
            target=target,
            deadline=deadline,
            on_trial=on_trial,
        )
    else:
        ctx = multiprocessing.get_context("spawn")
        # No fixed share per worker: each runs until the study has its target (or the wall
        # budget is spent), so a worker that dies leaves its part to the others.
        procs = [
            ctx.Process(
                target=_worker,
                # the parent's Optuna verbosity: -v shows the workers' Optuna lines too
                args=(
                    str(config.path),
                    _worker_overrides(config),
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
    return study


def worth_spawning(left: float, prepare_seconds: float) -> bool:
    """Whether worker processes, which each prepare the data again (as long as this
    process took, ``prepare_seconds``) before their first trial, would still have time to
    train in the ``left`` seconds of the wall budget."""
    return left > 2 * prepare_seconds


def _reserve(model: nn.Module, p: Prepared) -> float:
    """Seconds to keep free at the deadline: a multiple of one validation and test pass."""
    start = time.perf_counter()
    metrics(model, p, "val")
    metrics(model, p, "test")
    return RESERVE_SECONDS + RESERVE_EVALS * (time.perf_counter() - start)


def _optimize(
    study: optuna.Study,
    p: Prepared,
    seed_model: Net,
    seed_spec: ArchSpec,
    *,
    n_trials: int | None,
    target: int | None,
    deadline: Deadline,
    on_trial: Callable[[TrialResult], None] | None,
) -> None:
    reports: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    if on_trial is not None:
        reports.append(lambda _study, trial: on_trial(TrialResult.from_trial(trial)))
    left = deadline.training_left()
    if left <= 0:
        return
    objective = StepObjective(study, p, seed_model, seed_spec, deadline)
    size: int | Callable[[], int] = 1
    if p.config.cohort != "auto":
        size = p.config.cohort
    elif can_stack(seed_model, p.bundle):
        device = resolve_device(p.config.device)
        size = auto_sizer(study, seed_spec, device, target, maximize=p.maximize)
        # One size for the whole study where no network but the seed is ever a parent, or
        # where n_trials leaves room for cohorts of 1 only (then: optimize, one at a time).
        if p.config.search.parents == "seed" or auto_size(1, device, target) == 1:
            size = size()
            logger.info("study %r: cohort = %d (auto)", p.config.name, size)
        else:
            logger.info("study %r: cohort = auto, sized before each cohort", p.config.name)
    if callable(size) or size > 1:
        run_cohorts(
            study,
            objective,
            size=size,
            n_trials=n_trials,
            deadline=deadline,
            should_stop=lambda: target is not None and _counted(study) >= target,
            callbacks=reports,
        )
        return
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [_StopAtTarget(target), *reports]
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=None if math.isinf(left) else left,
        catch=(TrialFailed,),
        callbacks=callbacks,
        gc_after_trial=False,
    )


def _worker_overrides(config: StudyConfig) -> dict[str, object]:
    """Every command-line override, and the resolved name, storage and target."""
    return {
        **config.overrides,
        "name": config.name,
        "storage": config.storage,
        "n_trials": config.n_trials,
    }


def _worker(
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
    _optimize(
        study,
        p,
        seed_model,
        seed_spec,
        n_trials=None,
        target=target,
        deadline=deadline,
        on_trial=lambda result: print(result.line(), flush=True),
    )
