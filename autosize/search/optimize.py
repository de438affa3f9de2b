"""The warm-started part of a study in one process: trials one at a time through
``study.optimize``, or cohorts trained together, until the study has its target count or the
wall budget is spent."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autosize.models import ArchSpec, Net
from autosize.population import can_stack
from autosize.search.deadline import Deadline
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.results import TrialResult
from autosize.search.trials.cohort import run_cohorts
from autosize.search.trials.cohort_size import auto_size, auto_sizer
from autosize.search.trials.training import RESERVE_EVALS, RESERVE_SECONDS, TrialFailed, metrics
from autosize.search.trials.warmstart import StepObjective
from autosize.train import resolve_device

__all__ = ["StopAtTarget", "counted", "optimize", "reserve_seconds"]

logger = logging.getLogger(__name__)


def counted(study: optuna.Study) -> int:
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


class StopAtTarget:
    def __init__(self, target: int | None) -> None:
        self.target = target

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.target is not None and counted(study) >= self.target:
            study.stop()


def reserve_seconds(model: nn.Module, p: Prepared) -> float:
    """Seconds to keep free at the deadline: a multiple of one validation and test pass."""
    start = time.perf_counter()
    metrics(model, p, "val")
    metrics(model, p, "test")
    return RESERVE_SECONDS + RESERVE_EVALS * (time.perf_counter() - start)


def optimize(
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
            should_stop=lambda: target is not None and counted(study) >= target,
            callbacks=reports,
        )
        return
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [StopAtTarget(target), *reports]
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=None if math.isinf(left) else left,
        catch=(TrialFailed,),
        callbacks=callbacks,
        gc_after_trial=False,
    )
