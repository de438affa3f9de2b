"""The bridge between the training engine and an Optuna trial.

Like Optuna's own pruning integrations: a callback that reports the
validation metric at every epoch and asks the pruner. It never raises
``TrialPruned`` from inside the training loop; it asks the loop to stop and
the objective raises after ``fit`` returns, so the history survives.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import optuna

from autosize.callbacks import Callback, TrainState
from autosize.history import EpochRecord
from autosize.search.config import Objective
from autosize.search.policy.pruner import BaselineCurve, gain

__all__ = ["TrialReporter", "objective_value"]


def objective_value(record: EpochRecord, objective: Objective) -> float:
    """The number an epoch contributes to the objective."""
    return record.val_loss if objective == "val_loss" else record.val_metric


class TrialReporter(Callback):
    """Report each epoch's objective to ``trial``; stop the loop when the pruner says so.

    ``baseline`` (if any) is the matching fixed-size baseline's curve: the gain over it at
    each step is recorded. Multi-objective studies cannot prune in Optuna, so there the
    values are only collected.

    After the first ``always_first`` epochs, reports (each one a storage write) are at
    least ``min_interval`` seconds apart: an Airfoil epoch takes 3 ms, far less than one
    SQLite or PostgreSQL write, so reporting every epoch would spend the trial's budget
    on the storage. The last epoch is always reported (at the end of training), and
    every epoch's value is kept in ``values`` (the trial's ``curve`` attribute).
    """

    def __init__(
        self,
        trial: optuna.Trial,
        objective: Objective,
        *,
        maximize: bool,
        prune: bool,
        report: bool,
        baseline: BaselineCurve | None = None,
        step_offset: int = 0,
        min_interval: float = 0.2,
        always_first: int = 10,
    ) -> None:
        self.trial = trial
        self.objective: Objective = objective
        self.maximize = maximize
        self.prune = prune
        self.report = report
        self.baseline = baseline
        self.step_offset = step_offset
        self.values: list[float] = []
        self.gains: list[float] = []
        self.widths: list[list[int]] = []
        self.pruned_at: int | None = None
        self.min_interval = min_interval
        self.always_first = always_first
        self._last_report = -math.inf
        self._unreported: tuple[float, int] | None = None

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
        value = objective_value(record, self.objective)
        step = record.epoch + self.step_offset
        self.values.append(value)
        widths = record.extra.get("widths")  # the Sparsifier's: a list of ints
        if isinstance(widths, list):
            self.widths.append([w for w in widths if isinstance(w, int)])
        if self.baseline is not None and math.isfinite(value):
            self.gains.append(gain(value, self.baseline.at(step), maximize=self.maximize))
        now = time.perf_counter()
        due = record.epoch <= self.always_first or now - self._last_report >= self.min_interval
        if self.report and math.isfinite(value) and not due:
            self._unreported = (value, step)
        if self.report and math.isfinite(value) and due:
            self._last_report, self._unreported = now, None
            self.trial.report(value, step)
            if self.prune and self.trial.should_prune():
                self.pruned_at = step
                return True
        return False

    def on_train_end(self, state: TrainState) -> None:
        if self._unreported is not None and self.pruned_at is None:
            self.trial.report(*self._unreported)
            self._unreported = None

    @property
    def curve(self) -> Sequence[float]:
        return self.values
