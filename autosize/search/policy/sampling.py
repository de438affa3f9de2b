"""Optuna's samplers, reseeded per trial so that workers do not draw in lockstep.

Every worker process builds its sampler from the same config, so with ``[study] seed``
their random streams start identical: independent ``autosize run`` processes on one
study asked for the same parameters at the same moment (seen with TPE's random start-up
trials: three workers ran ``widen(L0:8->31)`` together). Optuna's documentation warns
about seeded samplers in distributed studies for this reason.

:class:`TrialSeeded` wraps a sampler and, before each draw, reseeds every random state
the sampler holds from ``(seed, trial number, parameter name)``. Concurrent trials have different
numbers, so they get different streams; one process is still reproducible from the
seed, and a resumed study draws what it would have drawn without the interruption (for
the random parts; a model-based sampler still sees the history it sees). autosize's
own ``population`` sampler already draws per trial number and is not wrapped.

The random states are found by walking the sampler's attributes for Optuna's
``LazyRandomState`` (:func:`autosize.search.optuna_private.random_states`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from autosize.search.optuna_private import random_states
from autosize.seeds import derive_seed

__all__ = ["TrialSeeded", "random_states"]


class TrialSeeded(BaseSampler):
    """``inner``, its random states reseeded from ``(seed, trial.number, name)`` at each draw."""

    def __init__(self, inner: BaseSampler, seed: int) -> None:
        self.inner = inner
        self.seed = int(seed)

    def __str__(self) -> str:
        return f"TrialSeeded({self.inner})"

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        self._reseed(trial, "relative")
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        self._reseed(trial, f"param/{param_name}")
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def _reseed(self, trial: FrozenTrial, what: str) -> None:
        # At every draw, not once per trial: a trial's parameters are drawn when the
        # objective suggests them, which may be after later trials were asked (a cohort).
        value = derive_seed(self.seed, f"sampler/{what}", trial.number)
        for state in random_states(self.inner):
            state.rng.seed(value)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()
