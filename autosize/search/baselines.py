"""Baselines: fixed-size networks trained from random initialisation for the
trial budget, as trials of the same study (``role = "baseline"``)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import optuna
import torch
from optuna.trial import TrialState

from autosize.models import ArchSpec, build_model
from autosize.search import record, training
from autosize.search.bridge import TrialReporter
from autosize.search.clock import Deadline
from autosize.search.prepare import Prepared
from autosize.search.results import TrialResult
from autosize.search.training import (
    TrialFailed,
    describe,
    finish_trial,
)
from autosize.seeds import derive_seed

__all__ = ["run_baselines"]

logger = logging.getLogger(__name__)


def run_baselines(
    study: optuna.Study,
    p: Prepared,
    *,
    on_trial: Callable[[TrialResult], None] | None,
    deadline: Deadline | None = None,
) -> None:
    """Train every configured baseline that the study does not have yet (while time is left)."""
    deadline = deadline or Deadline.after(None)
    done = {
        rec.baseline_key
        for rec in map(record.read, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if rec.is_baseline
    }
    for i, spec in enumerate(p.baseline_specs):
        key = spec.to_json(indent=None)
        if key in done:
            continue
        if deadline.training_left() <= 0:
            logger.info("no time left for the remaining baselines; a resumed run trains them")
            return
        with warnings.catch_warnings():
            # Baselines run through ask/tell, before the heartbeat-guarded optimize loop.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        try:
            value = _baseline_trial(
                trial,
                p,
                spec,
                key,
                seed=derive_seed(p.config.seed, "baseline", i),
                deadline=deadline,
            )
        except BaseException as exc:
            # As in warm-started trials: diverged or out of memory -> FAIL and go on.
            oom = isinstance(exc, torch.OutOfMemoryError)
            reason = (
                "interrupted"
                if isinstance(exc, KeyboardInterrupt)
                else "out of memory"
                if oom
                else str(exc)
                if isinstance(exc, TrialFailed)
                else repr(exc)
            )
            record.write(trial, fail_reason=reason)
            study.tell(trial, state=TrialState.FAIL)
            if not (oom or isinstance(exc, TrialFailed)):
                raise
        else:
            study.tell(trial, value)
        if on_trial is not None:
            on_trial(TrialResult.from_trial(study._storage.get_trial(trial._trial_id)))


def _baseline_trial(
    trial: optuna.Trial, p: Prepared, spec: ArchSpec, key: str, *, seed: int, deadline: Deadline
) -> float | tuple[float, float]:
    record.write(
        trial,
        role=record.BASELINE,
        baseline_key=key,
        operation="from scratch",
        parent=None,
        lineage=[f"{spec.summary()} from random initialisation"],
        **describe(spec),
    )
    reporter = TrialReporter(
        trial,
        p.config.objective,
        maximize=p.maximize,
        prune=False,
        report=not p.multi_objective,
    )
    model = build_model(spec, seed=seed)
    model, spec, history, seconds = training.train_step(
        model, spec, p, p.config.train, seed=seed, deadline=deadline, callbacks=[reporter]
    )
    return finish_trial(trial, p, model, spec, history, seconds, reporter)
