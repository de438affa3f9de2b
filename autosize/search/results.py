"""A study's trials as plain objects, for the CLI's summary, reports and export."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["TrialResult", "best_of", "trial_results"]


@dataclass(frozen=True)
class TrialResult:
    number: int
    role: str
    state: str
    value: float | None
    params: int | None
    architecture: str
    operation: str
    parent: int | str | None
    test_metric: float | None
    gain: float | None
    seconds: float | None

    @classmethod
    def from_trial(cls, t: FrozenTrial) -> TrialResult:
        a = t.user_attrs
        return cls(
            number=t.number,
            role=str(a.get("role", "")),
            state=t.state.name.lower(),
            value=t.values[0] if t.values else None,
            params=a.get("params"),
            architecture=str(a.get("architecture", "")),
            operation=str(a.get("operation", "")),
            parent=a.get("parent"),
            test_metric=a.get("test_metric"),
            gain=a.get("gain"),
            seconds=a.get("seconds"),
        )


def trial_results(study: optuna.Study) -> list[TrialResult]:
    return [TrialResult.from_trial(t) for t in study.get_trials(deepcopy=False)]


def best_of(results: Sequence[TrialResult], role: str, *, maximize: bool) -> TrialResult | None:
    done = [
        r
        for r in results
        if r.role == role and r.state == TrialState.COMPLETE.name.lower() and r.value is not None
    ]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda r: r.value)  # type: ignore[arg-type, return-value]


def maximizing(study: optuna.Study) -> bool:
    return study.directions[0] == StudyDirection.MAXIMIZE
