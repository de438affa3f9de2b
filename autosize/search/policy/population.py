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

**No wasted steps.** Once bound to the study's search space (:meth:`PopulationSampler.bind`,
which the study does), the first operation of a step is drawn only among those that can
still do something new to its parent: not ``widen`` when every layer is at ``max_width``,
not ``deepen`` at ``max_depth`` or once every position has been deepened from that parent,
not ``train`` on (with ``[train]``'s lr) when that parent has been trained on already, not
``regularize`` without a dense layer; a widen picks a layer below ``max_width`` and a deepen
an unused position. What is left to chance (a capped widen that repeats an earlier one) the
objective refuses before any training (``repeats trial N``).

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
from autosize.models import ArchSpec, DenseLayer
from autosize.search.config.schema import SearchSpace
from autosize.search.store import record
from autosize.seeds import derive_seed

__all__ = ["DEFAULT_WEIGHTS", "PopulationSampler", "children_operations", "ranked_parents"]

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


# States of trials whose step counts as tried (a step pruned before training has
# operation "none (...)" and matches nothing).
_TRIED = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED)


def children_operations(study: Study, parent: int | str, *, exclude: int) -> dict[str, int]:
    """The operations tried from ``parent`` ("seed" or a trial number): operation text ->
    the first trial that ran it (trial ``exclude`` left out)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False, states=_TRIED):
        if t.number == exclude:
            continue
        rec = record.read(t)
        if rec.is_warmstart and rec.parent == parent and rec.operation:
            out.setdefault(rec.operation, t.number)
    return out


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
        self.space: SearchSpace | None = None
        # (trial number, its parent's open steps and depth): op0 and its position are drawn
        # in one trial, and the study is read once for both
        self._opened: tuple[int, tuple[dict[str, list[int]], int] | None] | None = None

    def bind(self, space: SearchSpace) -> None:
        """Draw first operations that can still do something new to their parent."""
        self.space = space

    def _parent(self, study: Study, trial: FrozenTrial) -> tuple[int | str, ArchSpec] | None:
        """The parent this trial starts from (as the objective picks it) and its spec."""
        assert self.space is not None
        rank = 0 if self.space.parents == "seed" else int(trial.params.get("parent", 0))
        if rank > 0:
            done = ranked_parents(study, maximize=study.directions[0].name == "MAXIMIZE")
            if len(done) >= rank:
                spec = record.read(done[rank - 1]).spec
                return (done[rank - 1].number, ArchSpec.from_dict(spec)) if spec else None
        spec = record.seed_info(study).get("spec")
        return ("seed", ArchSpec.from_dict(spec)) if spec else None

    def _open(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, list[int]], int] | None:
        """Per operation, what is still new for this trial's parent (the positions for widen
        and deepen, ``[0]`` for the others), and the parent's depth; None when unknown (no
        bound space, no spec). Read once per trial."""
        if self.space is None:
            return None
        if self._opened is not None and self._opened[0] == trial.number:
            return self._opened[1]
        found = self._parent(study, trial)
        result = None
        if found is not None:
            key, spec = found
            tried = children_operations(study, key, exclude=trial.number)
            space, depth = self.space, spec.depth
            deepened = {k for k in range(depth) if f"deepen(after L{k})" in tried}
            steps = {
                "widen": [k for k in range(depth) if spec.layers[k].size < space.max_width],
                "deepen": [] if depth >= space.max_depth else sorted(set(range(depth)) - deepened),
                "train": [] if space.lr is None and "train on" in tried else [0],
                "regularize": [0] if any(isinstance(x, DenseLayer) for x in spec.layers) else [],
                "compress": [0],
            }
            result = (steps, depth)
        self._opened = (trial.number, result)
        return result

    def _position(self, open_: list[int], depth: int, rng: np.random.Generator) -> float:
        """A position in [0, 1) that lands on one of the open layers (operations._position)."""
        k = int(open_[int(rng.integers(len(open_)))])
        return min((k + float(rng.random())) / depth, math.nextafter((k + 1) / depth, 0.0))

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
            opened = self._open(study, trial) if param_name == "op0" else None
            if opened is not None:
                fresh = w * np.array([bool(opened[0].get(str(c), [0])) for c in dist.choices])
                if fresh.sum() > 0:  # else every operation is spent: the objective says so
                    w = fresh
            return dist.choices[int(rng.choice(len(dist.choices), p=w / w.sum()))]
        if param_name in ("op0/widen/layer", "op0/deepen/after"):
            opened = self._open(study, trial)
            if opened is not None and (positions := opened[0][param_name.split("/")[1]]):
                return self._position(positions, opened[1], rng)
        # Everything else as Optuna's RandomSampler draws it, seeded per trial and name.
        return RandomSampler(seed=self._seed(trial, param_name)).sample_independent(
            study, trial, param_name, dist
        )
