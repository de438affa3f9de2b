"""Population training: :func:`fit_population` trains K small dense networks at once.

The same contract as :func:`autosize.train.fit`, for K models of different widths,
depths and activations: each member gets exactly the batches and updates ``fit``
would give it alone, while the population runs as a few batched matmuls per step
(:mod:`autosize.population.stack`). On the tabular datasets a trial's cost is
per-step overhead, not arithmetic, so K trials cost little more than one.

This package never imports optuna: the search layer bridges the two.
"""

from __future__ import annotations

from autosize.population.fit import fit_population
from autosize.population.member import can_stack

__all__ = ["can_stack", "fit_population"]
