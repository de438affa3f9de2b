"""What a report holds: plain frozen dataclasses built from a study
(:func:`autosize.report.build_report`), from which the markdown, the PNG plots and the
dashboard figures are drawn alone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from autosize.search.store.results import TrialResult

__all__ = ["Headline", "Importances", "ReportData", "SeedSummary"]


@dataclass(frozen=True)
class SeedSummary:
    architecture: str
    params: int | None
    epochs: int | None
    seconds: float | None
    val: Mapping[str, float] = field(default_factory=dict)
    test: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Headline:
    """Best warm-started against best baseline, both trained for the same trial budget."""

    warm: TrialResult | None
    baseline: TrialResult | None
    # warm minus baseline on the validation objective and on the test metric.
    val_delta: float | None
    test_delta: float | None
    # True when the warm-started trial is better on validation.
    warm_wins: bool | None


@dataclass(frozen=True)
class Importances:
    values: tuple[tuple[str, float], ...] = ()
    note: str | None = None  # why there are none


@dataclass(frozen=True)
class ReportData:
    study: str
    storage: str
    command: str
    generated: datetime
    dataset: str
    task: str
    objective: str
    metric: str  # the key of val/test dicts the objective reads, e.g. "rmse"
    maximize: bool
    multi_objective: bool
    budget: Mapping[str, object]
    data_sizes: Mapping[str, object]
    seed: SeedSummary | None
    trials: tuple[TrialResult, ...]
    pareto: tuple[int, ...]  # trial numbers on the (objective, params) front
    headline: Headline
    importances: Importances

    @property
    def complete(self) -> tuple[TrialResult, ...]:
        return tuple(t for t in self.trials if t.state == "complete" and t.value is not None)

    def ranked(self) -> list[TrialResult]:
        return sorted(self.complete, key=lambda t: t.checked_value, reverse=self.maximize)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for t in self.trials:
            role = out.setdefault(t.role or "?", {})
            role[t.state] = role.get(t.state, 0) + 1
        return out
