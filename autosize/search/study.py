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

The layer reads in one direction, from this module down:

- :mod:`~autosize.search.prepare`: the config made ready (data loaded, what it leaves out
  chosen by :mod:`~autosize.search.config.defaults`, sampler and pruner built), before
  anything is written;
- :mod:`~autosize.search.opening`: the study created or resumed, its record checked;
- :mod:`~autosize.search.trials`: the seed, the baselines, the warm-started steps (one at a
  time or as cohorts) and the one training path they share;
- :mod:`~autosize.search.policy`: what each step does (operations, the population sampler,
  the pruners);
- :mod:`~autosize.search.store`: the storage, the typed trial and study records, artifacts
  and claims; :mod:`~autosize.search.config`: the typed config and its reader.

This module holds the wall budget (:mod:`~autosize.search.deadline`) and the order above;
:mod:`~autosize.search.optimize` runs the warm-started trials in this process and
:mod:`~autosize.search.workers` in ``--workers`` processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import optuna

import autosize.search.workers as workers_mod
from autosize.errors import ConfigError
from autosize.models import ArchSpec, Net
from autosize.search.config import StudyConfig
from autosize.search.deadline import Deadline
from autosize.search.opening import open_or_resume, open_study
from autosize.search.optimize import counted, optimize, reserve_seconds
from autosize.search.prepare import Prepared, prepare
from autosize.search.store.results import TrialResult
from autosize.search.trials.baselines import run_baselines
from autosize.search.trials.seed import SeedNotFound, ensure_seed
from autosize.search.trials.training import RESERVE_SECONDS, TrialFailed
from autosize.search.workers import run_workers

__all__ = ["TrialFailed", "open_study", "prepare", "run_study"]

logger = logging.getLogger(__name__)


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
    study, existing = open_or_resume(p)
    seed_model, seed_spec = _seed(study, p, existing, deadline)
    if deadline.seconds is not None:
        deadline = replace(deadline, reserve=reserve_seconds(seed_model, p))
    run_baselines(study, p, on_trial=on_trial, deadline=deadline)
    target = config.n_trials
    remaining = None if target is None else max(0, target - counted(study))
    if remaining == 0:
        logger.info("study %r already has its %s warm-started trials", config.name, target)
        return study
    if deadline.training_left() <= 0:
        logger.info("study %r: the wall budget is spent", config.name)
        return study
    if workers > 1 and not workers_mod.worth_spawning(deadline.training_left(), prepare_seconds):
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
        optimize(
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
        run_workers(config, workers, target, deadline)
    return study


def _seed(
    study: optuna.Study, p: Prepared, existing: dict[str, object] | None, deadline: Deadline
) -> tuple[Net, ArchSpec]:
    """The seed network, trained or downloaded; a resumed study whose artifacts moved says
    where they were."""
    try:
        return ensure_seed(study, p, deadline)
    except SeedNotFound as exc:
        before = existing.get("artifacts") if existing else None
        if before is None or before == str(p.config.artifacts):
            raise
        raise ConfigError(
            f"{p.config.path}: study.artifacts is {str(p.config.artifacts)!r}, but study "
            f"{p.config.name!r} was started with {before!r} and its networks are not here ({exc}); "
            "restore it, or copy that folder's files here"
        ) from None
