"""One training budget: every setting of a training run, each default written once, and the
one mapping onto ``fit``, ``compress`` and ``fit_population``.

A study config's ``[seed]`` and ``[train]`` tables are read into a :class:`Budget` field by
field (each field's ``metadata`` says how: a bound, the choices of a ``Literal``); the study
stores it (:meth:`Budget.record`), training runs it (:meth:`Budget.training_kwargs`), an
export records it with what the run did (:class:`~autosize.export_format.TrainingRecord`, a
``Budget`` with three more fields) and ``autosize train`` runs it again. A new training
setting is one field here and, where ``fit`` takes it, one line of
:meth:`Budget.training_kwargs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from autosize.callbacks import Callback, schedule_callbacks
from autosize.optim import OptimizerName, Precision, precision_flags

__all__ = ["Budget", "Schedule"]

Schedule = Literal["constant", "cosine"]


@dataclass(frozen=True)
class Budget:
    """One training budget and its hyperparameters (the seed's, or every trial's).

    ``metadata``: how a config's value is checked (``low``: the smallest value; ``strict``:
    above it, not at it)."""

    epochs: int | None = field(default=None, metadata={"low": 1})
    max_seconds: float | None = field(default=None, metadata={"strict": True})
    optimizer: OptimizerName = "adam"
    lr: float = field(default=1e-3, metadata={"strict": True})
    weight_decay: float = 0.0
    batch_size: int = field(default=128, metadata={"low": 1})
    # Report the best-validation epoch's weights (networks overfit within tens of epochs).
    restore_best: bool = True
    # "cosine" anneals the lr to zero over the budget (epochs and/or max_seconds): short
    # trials end at a low lr, and each trial that trains on is a warm restart.
    schedule: Schedule = "constant"
    # On a GPU: "tf32" matmuls or "bf16" autocast (a CPU trains in fp32 whatever this says).
    precision: Precision = "fp32"

    @property
    def amp(self) -> bool:
        """``fit``'s ``amp``: bf16 autocast (on CUDA; ignored on a CPU)."""
        return precision_flags(self.precision)["amp"]

    @property
    def allow_tf32(self) -> bool:
        """``fit``'s ``allow_tf32`` (on CUDA; ignored on a CPU)."""
        return precision_flags(self.precision)["allow_tf32"]

    def schedule_callbacks(self, max_seconds: float | None) -> list[Callback]:
        """The lr schedule over this budget, its seconds clipped to ``max_seconds``."""
        return schedule_callbacks(self.schedule, epochs=self.epochs, max_seconds=max_seconds)

    def training_kwargs(
        self, *, max_seconds: float | None, lr: float | None = None
    ) -> dict[str, Any]:
        """The keyword arguments ``fit``, ``compress`` and ``fit_population`` take for this
        budget, with its seconds clipped to ``max_seconds`` (a deadline) and ``lr`` in place
        of the budget's where given. ``compress`` takes all but ``restore_best``; the
        schedule is a callback (:meth:`schedule_callbacks`)."""
        return {
            "epochs": self.epochs,
            "max_seconds": max_seconds,
            "optimizer": self.optimizer,
            "lr": self.lr if lr is None else lr,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "restore_best": self.restore_best,
            "amp": self.amp,
            "allow_tf32": self.allow_tf32,
        }

    def record(self) -> dict[str, object]:
        """The budget as a study stores it (and as the seed's key hashes it). Fields added
        after studies were first stored are left out at their default, so a study started
        before them resumes, with the same seed key."""
        out = {f.name: getattr(self, f.name) for f in fields(Budget)}
        for name in _LATER_FIELDS:
            if out[name] == getattr(_DEFAULT, name):
                del out[name]
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, object]) -> Budget:
        """A budget as a study stored it; a key it lacks is at its default."""
        known = {f.name for f in fields(Budget)}
        return cls(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]


_DEFAULT = Budget()
# Fields added after studies were first stored (Budget.record leaves them out at default).
_LATER_FIELDS = ("precision",)
