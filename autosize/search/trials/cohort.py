"""Warm-started trials trained together (``[study] cohort = K``): K asks, one
:func:`~autosize.population.fit_population`, a report and a pruning decision per trial
and epoch, K tells.

Each trial of a cohort is the trial :class:`~autosize.search.trials.warmstart.StepObjective`
would run alone: the same parent, operations, lr, seed (so the same batches) and budget,
and the same ending (:func:`~autosize.search.trials.training.finish_trial`: attributes, the
network artifact); its record's ``cohort`` names the trials trained with it and its
``seconds`` is the cohort's wall time. A trial whose network cannot be stacked (compress
trains with gates, regularize adds dropout) trains alone, with ``fit``, after the others.
A trial the pruner stops leaves the cohort at once and costs no more compute. With
``[study] halving = true`` the worse half of the stacked trials also stops at each slice of
the budget (:class:`Halving`).

Optuna's ``optimize`` runs one trial at a time, so a cohort uses ask and tell; what
``optimize`` does around a trial is done here too: stale trials are failed first, every
running trial sends the storage's heartbeat (so a killed worker's trials are failed and
redone), and the study's callbacks see each finished trial.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from autosize.callbacks import Callback, TrainState, budget_progress
from autosize.history import EpochRecord
from autosize.population import can_stack, fit_population
from autosize.search.config.schema import TrainConfig
from autosize.search.deadline import Deadline
from autosize.search.optuna_private import heartbeat_threads
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.storage import fail_stale
from autosize.search.trials import training
from autosize.search.trials.cohort_size import next_size
from autosize.search.trials.warmstart import Step, StepObjective

__all__ = ["Halving", "run_cohorts"]

logger = logging.getLogger(__name__)

TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def run_cohorts(
    study: optuna.Study,
    objective: StepObjective,
    *,
    size: int | Callable[[], int],
    n_trials: int | None,
    deadline: Deadline,
    should_stop: Callable[[], bool] = lambda: False,
    callbacks: Sequence[TrialCallback] = (),
) -> None:
    """Cohorts of ``size`` trials (or of ``size()``, asked before each cohort: see
    :func:`auto_sizer`) until ``n_trials``, the deadline or ``should_stop()``."""
    sizer = size if callable(size) else lambda: size
    cap: int | None = None  # after an out-of-memory cohort: at most half of it
    done = 0
    while (n_trials is None or done < n_trials) and deadline.training_left() > 0:
        if should_stop():
            break
        want = sizer() if cap is None else min(sizer(), cap)
        k = next_size(want, None if n_trials is None else n_trials - done, deadline)
        out_of_memory = run_cohort(study, objective, k, deadline=deadline, callbacks=callbacks)
        done += k
        if out_of_memory and k > 1:
            # The same K would fail the same way: each cohort after this one is half as large.
            cap = max(1, k // 2)
            logger.warning(
                "study %r: a cohort of %d trials ran out of memory; cohorts of at most %d "
                "from now on",
                study.study_name,
                k,
                cap,
            )


class Halving:
    """Successive halving inside one cohort (``[study] halving = true``).

    A cohort's stacked members share one budget, so each gets ~1/K of the updates a step
    alone would get where the networks are compute-bound (Airfoil's and Poker's on a CPU),
    and the best of them ends as short-trained as the worst. Here the budget is cut into
    ``h + 1`` equal slices (``h`` = the halvings that take K to one): at the end of each
    slice the worse half of the members still training, by validation metric (loss where
    the study's objective is ``val_loss``), stop there (finished trials with the networks
    they have), so the ones left train faster, and the best member trains the whole
    budget. Where a step is arithmetic, the slices cost about the same compute, and the
    last member gets ~0.4 of the budget's compute at K = 16 instead of 1/16. Members the
    pruner stops count toward a slice's halving. Off by default: on Airfoil at 600 s it was
    behind the plain cohort on validation at each of three seeds (reports/population.md,
    "Fifth sitting").

    Each member's ``on_epoch_end`` records its validation value; the first one called
    after a slice ends decides from every member's previous epoch (all of them recorded),
    so a member that is halved trains one epoch more than the values that judged it.
    """

    def __init__(
        self,
        k: int,
        *,
        epochs: int | None,
        max_seconds: float | None,
        by: Literal["metric", "loss"] = "metric",
    ) -> None:
        self.k = k
        self.epochs, self.max_seconds = epochs, max_seconds
        self.by = by  # what ranks the members: validation metric or loss (the objective's)
        self.higher_is_better = False  # metric: the members' History says (accuracy: higher)
        halvings = math.ceil(math.log2(k)) if k > 1 else 0
        self.marks = [i / (halvings + 1) for i in range(1, halvings + 1)]
        self.targets = [math.ceil(k / 2 ** (i + 1)) for i in range(halvings)]
        self.rung = 0
        self.latest: dict[int, float] = {}  # member -> its last validation value
        self.training = set(range(k))
        self.halved: dict[int, int] = {}  # member -> the slice (1-based) it stopped after
        self.decided_epoch = -1
        self.start: float | None = None  # the first member's on_train_begin sets it

    def members(self) -> list[Callback]:
        return [_HalvingMember(self, i) for i in range(self.k)]

    def _decide(self, epoch: int) -> None:
        """At the first ``on_epoch_end`` of ``epoch``: halve for every slice that has ended."""
        if epoch == self.decided_epoch:
            return
        self.decided_epoch = epoch
        ranked = [i for i in self.training if i not in self.halved]
        if not ranked or any(i not in self.latest for i in ranked):
            return  # the first epoch: nothing to judge by yet
        # the budget spent by the epochs done before this one (all recorded)
        elapsed = time.perf_counter() - self.start if self.start is not None else 0.0
        progress = budget_progress(epoch, elapsed, epochs=self.epochs, max_seconds=self.max_seconds)
        if self.rung == len(self.marks) or progress < self.marks[self.rung]:
            return  # no slice has ended since the last decision
        sign = -1.0 if self.higher_is_better else 1.0
        # Best first; a non-finite value ranks last.
        ranked.sort(key=lambda i: (not math.isfinite(self.latest[i]), sign * self.latest[i], i))
        while self.rung < len(self.marks) and progress >= self.marks[self.rung]:
            target = self.targets[self.rung]
            self.rung += 1
            for i in ranked[target:]:
                self.halved[i] = self.rung
            ranked = ranked[:target]


class _HalvingMember(Callback):
    def __init__(self, halving: Halving, index: int) -> None:
        self.halving, self.index = halving, index

    def on_train_begin(self, state: TrainState) -> None:
        h = self.halving
        if h.start is None:
            h.start = time.perf_counter()
            h.higher_is_better = h.by == "metric" and state.history.higher_is_better

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool | None:
        h = self.halving
        h._decide(state.epoch)
        h.latest[self.index] = record.val_metric if h.by == "metric" else record.val_loss
        rung = h.halved.get(self.index)
        if rung is None:
            return None
        state.stop_reason = (
            f"halved after slice {rung} of {len(h.marks) + 1} (the cohort's worse half by "
            "validation)"
        )
        return True

    def on_train_end(self, state: TrainState) -> None:
        self.halving.training.discard(self.index)


@contextlib.contextmanager
def _heartbeats(study: optuna.Study, trials: Sequence[optuna.Trial]) -> Iterator[None]:
    threads = heartbeat_threads(study, trials)
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.join()


def run_cohort(
    study: optuna.Study,
    objective: StepObjective,
    k: int,
    *,
    deadline: Deadline,
    callbacks: Sequence[TrialCallback] = (),
) -> bool:
    """One cohort: ``k`` warm-started trials, trained together where they can be.

    Returns whether training them together ran out of memory (those trials are FAIL,
    "out of memory", and the caller makes the next cohort smaller)."""
    fail_stale(study)
    with warnings.catch_warnings():
        # Optuna warns that heartbeats are meant for Study.optimize; a cohort runs each
        # trial's heartbeat itself (_heartbeats below), so the warning says nothing here.
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed", UserWarning)
        trials = [study.ask() for _ in range(k)]
    told: set[int] = set()

    def tell(trial: optuna.Trial, run: Callable[[], float | tuple[float, float]]) -> None:
        """Run ``run`` under the trial's failure records and tell its outcome, as optimize would."""
        try:
            with training.recorded_failures(trial):
                values = run()
        except optuna.TrialPruned:
            frozen = study.tell(trial, state=TrialState.PRUNED)
        except training.TrialFailed as exc:
            logger.warning("trial %d failed: %s", trial.number, exc)
            frozen = study.tell(trial, state=TrialState.FAIL)
        except BaseException:
            told.add(trial.number)
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            frozen = study.tell(trial, values)
        told.add(trial.number)
        for callback in callbacks:
            callback(study, frozen)

    with warnings.catch_warnings(), _heartbeats(study, trials):
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return _run(objective, trials, tell, deadline)
        except BaseException as exc:  # an interrupt or an error: the rest of the cohort fails
            reason = training.redone_reason(exc) or f"cohort stopped: {exc!r}"
            for trial in trials:
                if trial.number not in told:
                    if record.read(trial).fail_reason is None:
                        record.write(trial, fail_reason=reason)
                    study.tell(trial, state=TrialState.FAIL)
            raise


def _run(
    objective: StepObjective,
    trials: list[optuna.Trial],
    tell: Callable[[optuna.Trial, Callable[[], float | tuple[float, float]]], None],
    deadline: Deadline,
) -> bool:
    p = objective.p
    steps: list[Step] = []
    for trial in trials:
        # worker before role (one attribute each): a kill between them never leaves a role without it
        record.write(trial, **record.worker_attrs(), role=record.WARMSTART)
        try:
            with training.recorded_failures(trial):
                steps.append(objective.step(trial))
        except optuna.TrialPruned as exc:  # the operation cannot apply: told now
            tell(trial, functools.partial(_raise, exc))
    together = [s for s in steps if s.plan.compress is None and can_stack(s.model, p.bundle)]
    alone = [s for s in steps if s not in together]
    # One fit_population per budget: steps that grow train longer ([search] grow_budget).
    groups: dict[TrainConfig, list[Step]] = {}
    for s in together:
        groups.setdefault(s.budget, []).append(s)
    out_of_memory = False
    for group in groups.values():
        out_of_memory |= not _train_together(p, group, tell, deadline)
    # Each step alone gets its whole budget, as it would one at a time: ~K times the updates
    # of a stacked sibling where the nets are compute-bound. Cutting them to the stacked
    # steps' epochs (7f7837b, reverted) left Add10 and Census level and cost Poker 0.9966
    # -> 0.9894 validation accuracy at 600 s (its best nets had been compressed ones trained
    # long; without them the search grew 1M-parameter nets a cohort of 16 starves) and
    # Airfoil its test-set lead over plain Optuna (reports/population.md, "Fourth sitting").
    for step in alone:
        tell(step.trial, functools.partial(objective.train, step))
    return out_of_memory


def _raise(exc: BaseException) -> float:
    """What a trial's run does when its outcome is already known: raise it."""
    raise exc


def _train_together(
    p: Prepared,
    steps: list[Step],
    tell: Callable[[optuna.Trial, Callable[[], float | tuple[float, float]]], None],
    deadline: Deadline,
) -> bool:
    """Train ``steps`` (one budget) with one fit_population and tell each; False if that ran
    out of memory."""
    budget = steps[0].budget
    # K trials end one after another (validation, test, upload): keep K trials' reserve.
    max_seconds = replace(deadline, reserve=deadline.reserve * len(steps)).clip(budget.max_seconds)
    numbers = [s.trial.number for s in steps]
    for s in steps:
        record.write(s.trial, cohort=numbers)
    halving = (
        Halving(
            len(steps),
            epochs=budget.epochs,
            max_seconds=max_seconds,
            by="loss" if p.config.objective == "val_loss" else "metric",
        )
        if p.config.halving and len(steps) > 1
        else None
    )
    halvers: list[list[Callback]] = (
        [[m] for m in halving.members()] if halving else [[]] * len(steps)
    )
    start = time.perf_counter()
    try:
        kwargs = budget.training_kwargs(max_seconds=max_seconds)
        del kwargs["lr"]  # each member's own
        histories = fit_population(
            [s.model for s in steps],
            p.bundle,
            lr=[budget.lr if s.lr is None else s.lr for s in steps],
            device=p.config.device,
            callbacks=[
                [s.reporter, *budget.schedule_callbacks(max_seconds), *halver]
                for s, halver in zip(steps, halvers, strict=True)
            ],
            seed=[s.seed for s in steps],
            **kwargs,
        )
    except BaseException as exc:  # out of memory (FAIL, the study goes on) or worse (raised)
        for s in steps:  # out of memory: FAIL each; anything else is raised by the first
            tell(s.trial, functools.partial(_raise, exc))
        return False
    seconds = time.perf_counter() - start
    logger.info("cohort of %d trials %s trained together in %.1f s", len(steps), numbers, seconds)
    halved = halving.halved if halving else {}
    for i, (s, history) in enumerate(zip(steps, histories, strict=True)):
        if i in halved:
            record.write(s.trial, halved=halved[i])
        finish = functools.partial(
            training.finish_trial,
            s.trial,
            p,
            s.model,
            s.spec,
            history,
            seconds,
            s.reporter,
            cut=training.cut_short(history, budget, max_seconds),
        )
        tell(s.trial, finish)
    return True
