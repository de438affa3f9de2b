"""Baselines: fixed-size networks trained from random initialisation for the
trial budget, as trials of the same study (``role = "baseline"``)."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from autosize.models import ArchSpec, build_model
from autosize.search.deadline import Deadline
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.claims import claim
from autosize.search.store.results import TrialResult
from autosize.search.trials import training
from autosize.search.trials.reporter import TrialReporter
from autosize.search.trials.training import (
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
    """Train every configured baseline that the study does not have yet (while time is left).

    Of several processes on one study, one runs them (a claim, see
    :mod:`autosize.search.store.claims`); the others go on to warm-started trials at once.
    """
    deadline = deadline or Deadline.after(None)
    wanted = [spec.to_json(indent=None) for spec in p.baseline_specs]

    def finished() -> set[str | None]:
        return {
            rec.baseline_key
            for rec in map(
                record.read, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            )
            if rec.is_baseline and not rec.cut  # one the wall budget cut short: again
        }

    with claim(
        p.config.storage,
        study.study_name,
        "baselines",
        done=lambda: set(wanted) <= finished(),
        wait=False,
    ) as mine:
        if mine:
            _run_missing(study, p, wanted, finished(), on_trial=on_trial, deadline=deadline)


def _run_missing(
    study: optuna.Study,
    p: Prepared,
    wanted: list[str],
    done: set[str | None],
    *,
    on_trial: Callable[[TrialResult], None] | None,
    deadline: Deadline,
) -> None:
    for i, (spec, key) in enumerate(zip(p.baseline_specs, wanted, strict=True)):
        if key in done:
            continue
        if deadline.training_left() <= 0:
            logger.info("no time left for the remaining baselines; a resumed run trains them")
            return
        objective = functools.partial(
            _baseline_trial,
            p=p,
            spec=spec,
            key=key,
            seed=derive_seed(p.config.seed, "baseline", i),
            deadline=deadline,
        )
        callbacks = (
            []
            if on_trial is None
            else [lambda _study, frozen: on_trial(TrialResult.from_trial(frozen))]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # One trial through optimize (not ask/tell): the storage's heartbeat then covers
            # it, so a baseline whose worker is killed is failed and trained again.
            study.optimize(
                objective,
                n_trials=1,
                catch=(TrialFailed,),
                callbacks=callbacks,
                gc_after_trial=False,
            )


def _baseline_trial(
    trial: optuna.Trial, p: Prepared, spec: ArchSpec, key: str, *, seed: int, deadline: Deadline
) -> float | tuple[float, float]:
    with training.recorded_failures(trial):
        record.write(
            trial,
            **record.worker_attrs(),  # before role: a kill never leaves a role without it
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
        model, spec, history, seconds, cut = training.train_step(
            model, spec, p, p.config.train, seed=seed, deadline=deadline, callbacks=[reporter]
        )
        return finish_trial(trial, p, model, spec, history, seconds, reporter, cut=cut)
