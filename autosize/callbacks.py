"""Hooks into :func:`autosize.train.fit`: :class:`Callback`, :class:`TrainState`, :class:`EarlyStopping`.

A callback overrides only the hooks it needs; every hook is a no-op here.
Order within one ``fit``::

    on_train_begin
    for each epoch:
        on_epoch_begin
        for each training batch: penalty   (after the forward pass)
        (validation; the epoch's EpochRecord is appended to state.history)
        on_epoch_end(state, record)        (True asks to stop)
    on_train_end                           (after restore_best, if any)

``on_epoch_end`` may modify ``state.model`` in place (remove units, so
parameters change shape) and replace ``state.optimizer``; the loop reads both
afresh before the next epoch. ``state.model`` itself must stay the same object
(``fit`` changes the caller's model in place). A diverged epoch does not reach
``on_epoch_end``: its record is appended and training stops.

Stopping is a return value, never an exception (unlike skorch's
KeyboardInterrupt): every callback's ``on_epoch_end`` runs, then the loop
stops if any returned True. A callback may set ``state.stop_reason`` to
explain.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from autosize.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from autosize.data.bundle import DataBundle
    from autosize.history import EpochRecord, History
    from autosize.optim import OptimizerName

__all__ = ["Callback", "CosineSchedule", "EarlyStopping", "TrainState", "budget_progress"]

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class TrainState:
    """Everything a hook may read or change during ``fit``; one object for the whole run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    bundle: DataBundle
    device: torch.device
    history: History
    epoch: int  # 0-based index of the current epoch
    batch_size: int
    lr: float  # the learning rate fit was given (the optimizer's current one is in its param_groups)
    weight_decay: float
    optimizer_name: OptimizerName
    seed: int
    batch: int = 0  # 0-based index of the current batch within the epoch
    stop_reason: str = ""  # set by a callback that returns True from on_epoch_end


class Callback:
    """Base class: every hook does nothing. Override the ones you need."""

    def on_train_begin(self, state: TrainState) -> None:
        """Before the first epoch (the model and data are already on the device)."""

    def on_epoch_begin(self, state: TrainState) -> None:
        """Before the first batch of epoch ``state.epoch``."""

    def penalty(self, state: TrainState) -> torch.Tensor | None:
        """A scalar tensor added to this batch's loss (e.g. ``lam * gates.sum()``), or None.

        Called for every training batch after the forward pass, with gradients
        enabled. The recorded ``train_loss`` excludes it; ``train_penalty``
        records its batch average.
        """
        return None

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool | None:
        """After validation; ``record`` is already in ``state.history``. Return True to stop.

        May add JSON data to ``record.extra``, change ``state.model`` in place and
        replace ``state.optimizer`` (see :func:`autosize.train.make_optimizer`).
        """
        return None

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch, whatever stopped training (not on an exception)."""


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor`` is ``"val_loss"`` or ``"train_loss"`` (lower is better) or
    ``"val_metric"`` (higher for accuracy, lower for RMSE). A non-finite value
    never counts as an improvement.
    """

    def __init__(
        self,
        patience: int,
        min_delta: float = 0.0,
        monitor: Literal["val_loss", "val_metric", "train_loss"] = "val_loss",
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping patience must be an integer >= 1, got {patience!r}")
        if not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise ConfigError(f"EarlyStopping min_delta must be >= 0, got {min_delta!r}")
        if monitor not in ("val_loss", "val_metric", "train_loss"):
            raise ConfigError(
                f"EarlyStopping monitor must be 'val_loss', 'val_metric' or 'train_loss', got {monitor!r}"
            )
        self.patience = patience
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_train_begin(self, state: TrainState) -> None:
        self.best, self.best_epoch, self.wait = None, None, 0

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool:
        value = float(getattr(record, self.monitor))
        higher = self.monitor == "val_metric" and state.history.higher_is_better
        sign = 1.0 if higher else -1.0
        improved = math.isfinite(value) and (
            self.best is None or sign * (value - self.best) > self.min_delta
        )
        if improved:
            self.best, self.best_epoch, self.wait = value, record.epoch, 0
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        state.stop_reason = (
            f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
            f"(best {self.best} at epoch {self.best_epoch})"
        )
        logger.info(state.stop_reason)
        return True


def budget_progress(
    epochs_done: int, elapsed: float, *, epochs: int | None, max_seconds: float | None
) -> float:
    """How much of a ``fit`` budget is spent, 0 to 1: the larger of the epochs done over
    ``epochs`` and the seconds spent over ``max_seconds`` (either may be None)."""
    done = 0.0
    if epochs:
        done = max(done, epochs_done / epochs)
    if max_seconds:
        done = max(done, elapsed / max_seconds)
    return min(done, 1.0)


def schedule_callbacks(
    schedule: str, *, epochs: int | None, max_seconds: float | None
) -> list[Callback]:
    """The callbacks a named learning-rate schedule needs: ``[]`` for "constant",
    a :class:`CosineSchedule` over the budget for "cosine"."""
    return [CosineSchedule(epochs=epochs, max_seconds=max_seconds)] if schedule == "cosine" else []


class CosineSchedule(Callback):
    """Cosine-anneal every param group's learning rate from its start value towards zero.

    Progress is the larger of the epochs done over ``epochs`` and the seconds spent over
    ``max_seconds`` (give the budget ``fit`` was given: one or both), so a budget in
    seconds anneals as well as one in epochs. The rate changes at the start of every
    epoch; each group keeps its own start value (compress's gates have their own), also
    when a callback rebuilds the optimizer. A fresh ``fit`` restarts the schedule: in a
    search, each trial that trains on is a warm restart.
    """

    def __init__(self, *, epochs: int | None = None, max_seconds: float | None = None) -> None:
        if epochs is None and max_seconds is None:
            raise ConfigError("CosineSchedule needs epochs and/or max_seconds")
        self.epochs = epochs
        self.max_seconds = max_seconds
        self._base: list[float] = []
        self._start = 0.0

    def progress(self, epoch: int, elapsed: float) -> float:
        return budget_progress(epoch, elapsed, epochs=self.epochs, max_seconds=self.max_seconds)

    def on_train_begin(self, state: TrainState) -> None:
        self._base = []
        self._start = time.perf_counter()

    def on_epoch_begin(self, state: TrainState) -> None:
        groups = state.optimizer.param_groups
        if not self._base:
            self._base = [float(g["lr"]) for g in groups]
        factor = 0.5 * (
            1.0 + math.cos(math.pi * self.progress(state.epoch, time.perf_counter() - self._start))
        )
        for g, base in zip(groups, self._base, strict=False):
            g["lr"] = base * factor
