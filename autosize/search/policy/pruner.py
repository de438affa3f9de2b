"""Pruning against fixed-size baselines, and Optuna's own pruners by name.

Baselines are trials of the same study (user attribute ``role = "baseline"``),
trained from random initialisation for the same budget as every warm-started
trial. :class:`BaselinePruner` stops a warm-started trial whose learning curve
stays worse than the matching baseline's curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from autosize.errors import ConfigError
from autosize.search.config import BaselineConfig, BaselineReference
from autosize.search.config.components import PRUNER_CLASSES, component_class
from autosize.search.store import record
from autosize.search.store.results import maximizing

__all__ = [
    "BaselineCurve",
    "BaselinePruner",
    "baseline_curves",
    "gain",
    "make_pruner",
    "pick_baseline",
]

Reference = BaselineReference


@dataclass(frozen=True)
class BaselineCurve:
    number: int
    params: int
    value: float
    curve: Mapping[int, float]

    def at(self, step: int) -> float:
        """The baseline's value at ``step``, or at its last step before it (its first if none)."""
        if step in self.curve:
            return self.curve[step]
        earlier = [s for s in self.curve if s <= step]
        return self.curve[max(earlier)] if earlier else self.curve[min(self.curve)]


def baseline_curves(trials: Sequence[FrozenTrial]) -> list[BaselineCurve]:
    """The completed baseline trials among ``trials`` that have a curve (of a baseline cut
    short by the wall budget and trained again in full, the full one).

    The recorded per-epoch ``curve`` (epoch ``i + 1`` at index ``i``) is used when there is
    one: it is complete where reports are throttled, and a multi-objective study, whose
    trials cannot ``report()``, has it too. Otherwise the intermediate values.
    """
    found: list[tuple[record.TrialRecord, BaselineCurve]] = []
    for t in trials:
        # Called at every report of every trial: only baselines' records are read in full.
        if t.state != TrialState.COMPLETE or record.role(t) != record.BASELINE or t.values is None:
            continue
        rec = record.read(t)
        curve = {i + 1: float(v) for i, v in enumerate(rec.curve) if v is not None}
        curve = curve or dict(t.intermediate_values)
        if not curve:
            continue
        found.append(
            (
                rec,
                BaselineCurve(
                    number=t.number,
                    params=int(rec.params or 0),
                    value=float(t.values[0]),
                    curve=curve,
                ),
            )
        )
    # A baseline the wall budget cut short, once a resumed run has trained it in full, is
    # not the one to compare with.
    full = {rec.baseline_key for rec, _ in found if not rec.cut}
    return [c for rec, c in found if not (rec.cut and rec.baseline_key in full)]


def pick_baseline(
    curves: Sequence[BaselineCurve], *, params: int | None, reference: Reference, maximize: bool
) -> BaselineCurve | None:
    """The best baseline, or the one nearest in parameter count (log scale) to ``params``."""
    if not curves:
        return None
    if reference == "nearest" and params:
        return min(curves, key=lambda c: (abs(math.log(max(c.params, 1) / params)), c.number))
    return (max if maximize else min)(curves, key=lambda c: c.value)


def gain(value: float, baseline: float, *, maximize: bool) -> float:
    """How much better ``value`` is than ``baseline`` (positive = better), in the metric's unit."""
    return value - baseline if maximize else baseline - value


class BaselinePruner(BasePruner):
    """Prune a warm-started trial that keeps doing worse than the fixed-size baselines.

    At step ``k`` the trial's intermediate value is compared with the matching
    baseline's value at step ``k`` (``reference="best"``: the baseline with the
    best final value; ``"nearest"``: the one closest in parameter count, read
    from the trial's ``params`` user attribute). The trial is pruned once it
    has been worse by more than ``margin`` for ``patience`` consecutive steps,
    counting only steps ``>= min_steps``. Baseline trials are never pruned, and
    nothing is pruned before a baseline has completed.
    """

    def __init__(
        self,
        *,
        margin: float = 0.0,
        patience: int = 1,
        min_steps: int = 1,
        reference: Reference = BaselineConfig.reference,
    ) -> None:
        if not (isinstance(margin, int | float) and margin >= 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a non-negative number, got {margin!r}")
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if not isinstance(min_steps, int) or min_steps < 0:
            raise ValueError(f"min_steps must be a non-negative integer, got {min_steps!r}")
        if reference not in ("best", "nearest"):
            raise ValueError(f"reference must be 'best' or 'nearest', got {reference!r}")
        self.margin = float(margin)
        self.patience = patience
        self.min_steps = min_steps
        self.reference: Reference = reference

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        rec = record.read(trial)
        if rec.is_baseline or not trial.intermediate_values:
            return False
        maximize = maximizing(study)
        curves = baseline_curves(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        params = rec.params
        base = pick_baseline(curves, params=params, reference=self.reference, maximize=maximize)
        if base is None:
            return False
        streak = 0
        for step in sorted(trial.intermediate_values):
            if step < self.min_steps:
                continue
            value = trial.intermediate_values[step]
            worse = (
                math.isnan(value) or gain(value, base.at(step), maximize=maximize) < -self.margin
            )
            streak = streak + 1 if worse else 0
        return streak >= self.patience


def make_pruner(name: str, options: Mapping[str, object], *, where: str = "[pruner]") -> BasePruner:
    """A pruner by config name; bad keyword arguments become a one-line ConfigError."""
    # Config values: the pruner's constructor checks them (its TypeError, ValueError below).
    kwargs: dict[str, Any] = dict(options)
    try:
        if name == "patient":
            inner = kwargs.pop("wrapped", None)
            wrapped = make_pruner(str(inner), {}, where=where) if inner else None
            return optuna.pruners.PatientPruner(wrapped, **kwargs)
        if name == "none" and kwargs:  # NopPruner's TypeError would not name the key
            raise ConfigError(f"{where} none: takes no options, got {', '.join(map(repr, kwargs))}")
        if name not in PRUNER_CLASSES:
            raise ConfigError(
                f"{where} name: unknown pruner {name!r}; expected one of {', '.join(PRUNER_CLASSES)}"
            )
        return component_class(PRUNER_CLASSES, name)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} {name}: {exc}") from None
