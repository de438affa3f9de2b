"""A study's trials as plain objects, for the CLI's summary, reports and export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autosize.search.store import record

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
    # Fields below are for reports; they default so older callers need not pass them.
    values: tuple[float, ...] = ()
    op_kind: str = ""
    baseline_trial: int | None = None
    epochs: int | None = None
    lineage_epochs: int | None = None  # all training behind the network (seed and ancestors)
    curve: tuple[float | None, ...] = ()  # per-epoch objective (intermediate values)
    widths: tuple[tuple[int, ...], ...] = ()  # compress trials: layer widths per epoch
    val: Mapping[str, float] = field(default_factory=dict)
    test: Mapping[str, float] = field(default_factory=dict)
    lr: float | None = None  # searched learning rate (param train/lr), if any
    started: datetime | None = None
    completed: datetime | None = None
    fail_reason: str | None = None
    pruned_at: int | None = None
    cut: bool = False  # stopped by the study's wall budget before its own

    @property
    def checked_value(self) -> float:
        """``value`` of a trial known to have one (e.g. a complete trial); ValueError if not."""
        if self.value is None:
            raise ValueError(f"trial {self.number} has no objective value")
        return self.value

    @property
    def checked_params(self) -> int:
        """``params`` of a trial known to have a parameter count; ValueError if not."""
        if self.params is None:
            raise ValueError(f"trial {self.number} has no parameter count")
        return self.params

    def line(self) -> str:
        """One line per finished trial, as ``autosize run`` prints it."""
        value = "-" if self.value is None else f"{self.value:.4f}"
        what = self.operation or self.fail_reason or ""
        return (
            f"trial {self.number:>4}  {self.role or '?':<9} {self.state:<8} {value:>9}  "
            f"{self.architecture:<28} {what}"
        )

    @classmethod
    def from_trial(cls, t: FrozenTrial) -> TrialResult:
        rec = record.read(t)
        return cls(
            number=t.number,
            role=rec.role,
            state=t.state.name.lower(),
            value=t.values[0] if t.values else None,
            params=rec.params,
            architecture=rec.architecture,
            operation=rec.operation,
            parent=rec.parent,
            test_metric=rec.test_metric,
            gain=rec.gain,
            seconds=rec.seconds,
            lineage_epochs=rec.lineage_epochs,
            values=tuple(t.values or ()),
            op_kind=rec.op_kind,
            baseline_trial=rec.baseline_trial,
            epochs=rec.epochs,
            curve=_curve(t, rec),
            widths=rec.widths,
            val=dict(rec.val),
            test=dict(rec.test),
            lr=t.params.get("train/lr"),
            started=t.datetime_start,
            completed=t.datetime_complete,
            fail_reason=rec.fail_reason
            if rec.fail_reason is not None or t.state != TrialState.FAIL
            # Failed by the heartbeat (or by an error autosize did not catch): no reason written.
            else WORKER_STOPPED,
            pruned_at=rec.pruned_at,
            cut=rec.cut,
        )


WORKER_STOPPED = "the worker stopped (no heartbeat) or failed unexpectedly"


def _curve(t: FrozenTrial, rec: record.TrialRecord) -> tuple[float | None, ...]:
    """The per-epoch objective: the ``curve`` attribute, else the intermediate values."""
    if rec.curve:
        return tuple(None if v is None else float(v) for v in rec.curve)
    steps = t.intermediate_values
    return tuple(steps[k] for k in sorted(steps))


def trial_results(study: optuna.Study) -> list[TrialResult]:
    return [TrialResult.from_trial(t) for t in study.get_trials(deepcopy=False)]


def best_of(results: Sequence[TrialResult], role: str, *, maximize: bool) -> TrialResult | None:
    done = [
        (r.value, r)
        for r in results
        if r.role == role and r.state == TrialState.COMPLETE.name.lower() and r.value is not None
    ]
    if not done:
        return None
    return (max if maximize else min)(done, key=lambda vr: vr[0])[1]


def maximizing(study: optuna.Study) -> bool:
    return study.directions[0] == StudyDirection.MAXIMIZE
