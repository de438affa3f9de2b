"""How many warm-started trials a cohort trains together: ``[study] cohort = "auto"``
sized from the network the steps start from and the device, and each cohort's size near the
deadline and the study's target."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
import torch

from autosize.models import ArchSpec
from autosize.search.deadline import Deadline
from autosize.search.policy.population import ranked_parents
from autosize.search.store import record

__all__ = ["auto_size", "auto_sizer", "next_size"]

# ``cohort = "auto"`` (the default). On a CPU, K small networks trained stacked cost about
# what one costs (a step is per-step overhead), while a network whose step is arithmetic
# trains only ~1.1-1.2x faster stacked, so each of K members gets ~1/K of its updates. So a
# CPU cohort holds at most AUTO_CPU_PARAMS parameters in all: 16 members up to 200k
# parameters, 8 at 400k, one at a time above 1.6M. A GPU has room for many.
# The measurements behind these numbers: reports/population.md ("In the search").
AUTO_CPU, AUTO_CPU_PARAMS = 16, 16 * 200_000
AUTO_CUDA = 32
# A cohort's K trials are asked before any of them is told, so the sampler learns nothing
# inside a cohort: with a wall budget that is paid for by K times the trials, with n_trials
# fixed it is not (reports/population.md). So with n_trials set, "auto" keeps at least
# AUTO_MIN_COHORTS cohorts.
AUTO_MIN_COHORTS = 16


def auto_size(params: int, device: torch.device, n_trials: int | None = None) -> int:
    """The cohort size ``"auto"`` stands for, for steps that start from a network of
    ``params`` parameters, on ``device``, in a study of ``n_trials`` (None: bounded by time
    only). A seed :func:`~autosize.population.can_stack` refuses (conv, batchnorm,
    dropout) trains one at a time instead (it would train with ``fit`` in a cohort too)."""
    if device.type == "cuda":
        k = AUTO_CUDA
    else:
        k = max(1, min(AUTO_CPU, AUTO_CPU_PARAMS // max(1, params)))
    if n_trials is not None:
        k = min(k, max(1, n_trials // AUTO_MIN_COHORTS))
    return k


def auto_sizer(
    study: optuna.Study,
    seed: ArchSpec,
    device: torch.device,
    n_trials: int | None,
    *,
    maximize: bool,
) -> Callable[[], int]:
    """``"auto"`` for a study of a stackable seed: before each cohort, :func:`auto_size` of
    the network most of its steps start from (the population sampler's rank-1 parent:
    the best warm-started network so far, else the seed)."""

    def size() -> int:
        best = ranked_parents(study, maximize=maximize)
        params = record.read(best[0]).params if best else None
        return auto_size(seed.param_count() if params is None else params, device, n_trials)

    return size


def next_size(size: int, left: int | None, deadline: Deadline) -> int:
    """The next cohort's size: ``size``, no more trials than are ``left``, and no more than
    the time to the deadline has reserves for (each trial ends with its own validation,
    test and upload after the cohort's training: near the deadline, a smaller cohort)."""
    k = size if left is None else min(size, left)
    if deadline.reserve > 0 and math.isfinite(deadline.remaining()):
        k = min(k, max(1, int(deadline.remaining() / deadline.reserve)))
    return k
