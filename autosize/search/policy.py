"""The population policy: exploit the best networks, explore by changing their size.

TPE over "parent rank" and "layer position" chases a moving target: the network
behind rank 1 changes as the study finds better ones, so what TPE learned about
a value no longer describes what that value picks. :class:`PopulationSampler`
instead decides each warm-started step the way population-based training does,
except that the exploration changes the network's size:

- **exploit**: the parent is the best network so far with probability
  ``p_best``, else one of the other ``top_k`` (uniformly); the seed only while
  no warm-started network exists yet;
- **explore**: the operation is drawn with fixed ``weights`` (``train`` on
  unchanged, ``widen``, ``deepen``, ``compress``, ``regularize``); every other parameter
  (positions, widen factors, lam, learning rate) is drawn like Optuna's
  ``RandomSampler`` from its distribution (a widen jumps by a factor from the
  search space's ``[min_widen_factor, max_widen_factor]``, log-uniformly).

It is an ordinary Optuna sampler, so every step stays a trial with its
parameters, curve, attributes and artifact, and resume, the dashboard and
several workers work as before. Each draw is a pure function of
``(seed, trial number, parameter name)`` and the study's completed trials, so
a resumed or parallel study makes the same choices for the same history.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from autosize.errors import ConfigError
from autosize.search import record
from autosize.seeds import derive_seed

__all__ = ["DEFAULT_WEIGHTS", "PopulationSampler", "ranked_parents"]

# Training on unchanged is the step that most often improves a good network; growth
# has to be tried often enough to leave a size that is too small.
# Weights are relative among the operations a study allows ([search] operations).
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "train": 0.4,
    "widen": 0.3,
    "deepen": 0.15,
    "compress": 0.15,
    "regularize": 0.15,
}
_OP = re.compile(r"^op\d+$")


def ranked_parents(study: Study, *, maximize: bool) -> list[FrozenTrial]:
    """The completed warm-started trials with a network, best first: parent ``r`` is ``[r - 1]``."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if (rec := record.read(t)).is_warmstart and rec.network_artifact
    ]
    done.sort(key=lambda t: (-t.values[0] if maximize else t.values[0], t.number))
    return done


class PopulationSampler(BaseSampler):
    """Exploit-and-explore over warm-started steps (see the module docstring)."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        p_best: float = 0.5,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(p_best, int | float) or isinstance(p_best, bool) or not 0 <= p_best <= 1:
            raise ConfigError(f"p_best: expected a number in [0, 1], got {p_best!r}")
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        for name, w in weights.items():
            if name not in DEFAULT_WEIGHTS:
                raise ConfigError(
                    f"weights.{name}: unknown operation; expected some of {', '.join(DEFAULT_WEIGHTS)}"
                )
            if (
                not isinstance(w, int | float)
                or isinstance(w, bool)
                or not w >= 0
                or not math.isfinite(w)
            ):
                raise ConfigError(f"weights.{name}: expected a number >= 0, got {w!r}")
        self.seed = 0 if seed is None else int(seed)
        self.p_best = float(p_best)
        self.weights = weights

    # Nothing is sampled jointly: every parameter is decided on its own, when asked.
    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def _seed(self, trial: FrozenTrial, name: str) -> int:
        return derive_seed(self.seed, f"policy/{name}", trial.number)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        rng = np.random.default_rng(self._seed(trial, param_name))
        dist = param_distribution
        if param_name == "parent" and isinstance(dist, IntDistribution):
            maximize = study.directions[0].name == "MAXIMIZE"
            available = min(dist.high, len(ranked_parents(study, maximize=maximize)))
            if available < 1:
                return max(dist.low, 0)
            if available == 1 or rng.random() < self.p_best:
                return 1
            return int(rng.integers(2, available + 1))
        if _OP.match(param_name) and isinstance(dist, CategoricalDistribution):
            w = np.array([float(self.weights.get(str(c), 0.0)) for c in dist.choices])
            if w.sum() <= 0:
                w = np.ones(len(dist.choices))
            return dist.choices[int(rng.choice(len(dist.choices), p=w / w.sum()))]
        # Everything else as Optuna's RandomSampler draws it, seeded per trial and name.
        return RandomSampler(seed=self._seed(trial, param_name)).sample_independent(
            study, trial, param_name, dist
        )
