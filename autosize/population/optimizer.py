"""One optimizer step per batch for the whole population: :class:`PopulationOptimizer`.

Each :class:`~autosize.population.stack.Stack` lays its slabs out in one flat buffer of
its own; the population's optimizer concatenates those of every stack (all of the
features' dtype) into one parameter, one gradient and one buffer per optimizer moment, and points each
stack's slabs at its piece of them (``Stack.adopt``). A batch then ends in one step for
every member of every stack, not one per stack: on the small networks of a tabular
search each stack's step was ~10 element-wise ops whose cost is their fixed overhead,
not their arithmetic.

The step is what ``make_optimizer``'s optimizers do, for every member with its own
learning rate: from ``FUSED_MIN_ELEMENTS`` elements through torch's own fused kernels
(one call per distinct learning rate, over those members' rows of every slab), below
that with a few element-wise ops over the whole buffer, the learning rates spread per
element (the fused calls' fixed cost would dominate there). Each member gets
``torch.optim``'s SGD (momentum 0.9), Adam or AdamW update, as ``fit`` would give it,
up to float rounding. Padded entries have zero gradients and zero moments, so they
never move (see :mod:`autosize.population.stack`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from autosize.optim import SGD_MOMENTUM, OptimizerName, fused_update
from autosize.population.stack import Stack

__all__ = ["FUSED_MIN_ELEMENTS", "PopulationOptimizer"]

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults, which make_optimizer uses
# From this many elements (all members' parameters) the step goes through torch's fused
# kernels: one pass over memory instead of ~10 (measured: Airfoil's 256-wide nets).
FUSED_MIN_ELEMENTS = 1 << 16


class PopulationOptimizer:
    """The optimizer of every stack of a population: one buffer, one step per batch."""

    def __init__(
        self, stacks: Sequence[Stack], *, optimizer: OptimizerName, weight_decay: float
    ) -> None:
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.step_count = 0
        self._tiny = torch.finfo(stacks[0].dtype).tiny
        self._step_t = torch.zeros((), dtype=torch.float32, device=stacks[0].device)
        self.bind(stacks)

    def bind(self, stacks: Sequence[Stack]) -> None:
        """Lay these stacks' parameters, gradients and moments out in one buffer each.

        Called again whenever the stacks changed (members left one, a stack emptied):
        values and moments carry over, the step count is the population's.
        """
        first = stacks[0]
        assert all(s.dtype == first.dtype and s.device == first.device for s in stacks)
        self.stacks = list(stacks)
        total = sum(s.flat.numel() for s in stacks)
        self.flat, self.grad, *self.state = (
            first.flat.new_empty(total) for _ in range(2 + len(first.state))
        )
        at = 0
        for s in stacks:  # each stack copies its values and moments into its piece
            n = s.flat.numel()
            s.adopt(
                self.flat[at : at + n], self.grad[at : at + n], [b[at : at + n] for b in self.state]
            )
            at += n
        self.fused = total >= FUSED_MIN_ELEMENTS
        self.lrs_changed()

    def lrs_changed(self) -> None:
        """A stack's learning rates changed (``Stack.set_lr``): rebuild what depends on them."""
        self._lr_flat: torch.Tensor | None = None
        self._by_lr: list[tuple[float, list[list[torch.Tensor]]]] | None = None

    def zero_grad(self) -> None:
        self.grad.zero_()

    def _lr_elements(self) -> torch.Tensor:
        """Every member's learning rate spread over its elements (until the lrs change)."""
        if self._lr_flat is None:
            self._lr_flat = torch.cat([s.lr_elements() for s in self.stacks])
        return self._lr_flat

    @torch.no_grad()
    def step(self) -> None:
        """One optimizer step for every member, from the gradients in ``self.grad``."""
        self.step_count += 1
        if self.fused:
            self._fused_step()
            return
        p, g, lr, wd = self.flat, self.grad, self._lr_elements(), self.weight_decay
        if wd and self.optimizer != "adamw":
            g = g.add(p, alpha=wd)
        if self.optimizer == "sgd":
            (buf,) = self.state
            if self.step_count == 1:
                buf.copy_(g)
            else:
                buf.mul_(SGD_MOMENTUM).add_(g)
            p.addcmul_(buf, lr, value=-1.0)
            return
        if self.optimizer == "adamw" and wd:
            p.mul_(1.0 - lr * wd)
        m, v = self.state
        m.lerp_(g, 1.0 - BETA1)
        v.mul_(BETA2).addcmul_(g, g, value=1.0 - BETA2)
        bc1 = 1.0 - BETA1**self.step_count
        bc2_sqrt = math.sqrt(1.0 - BETA2**self.step_count)
        # sqrt of the padding's exact zeros (and of subnormals) takes MKL's slow path on
        # a CPU, 20x the time of a normal value (measured: 75 against 4 us for 16,000
        # floats); from the smallest normal float up nothing changes, and below it the
        # denominator moves by under 1e-19 against eps = 1e-8, below float32's rounding.
        denom = v.clamp_min(self._tiny).sqrt_().div_(bc2_sqrt).add_(EPS)
        p.addcdiv_(m * lr, denom, value=-1.0 / bc1)

    def _fused_plan(self) -> list[tuple[float, list[list[torch.Tensor]]]]:
        """Per distinct learning rate, its members' [params, grads, *moments] of every slab."""
        if self._by_lr is None:
            rows: dict[float, list[list[list[torch.Tensor]]]] = {}
            for s in self.stacks:
                for r, lr in enumerate(s.lrs):
                    rows.setdefault(lr, []).append(s.row_views[r])
            self._by_lr = [
                (lr, [[t for row in got for t in row[i]] for i in range(2 + len(self.state))])
                for lr, got in rows.items()
            ]
        return self._by_lr

    def _fused_step(self) -> None:
        """torch's own fused kernels (what make_optimizer's optimizers run), per learning rate."""
        self._step_t.fill_(float(self.step_count))
        for lr, (params, grads, *state) in self._fused_plan():
            fused_update(
                self.optimizer,
                params,
                grads,
                state,
                [self._step_t] * len(params),
                lr=lr,
                weight_decay=self.weight_decay,
                betas=(BETA1, BETA2),
                eps=EPS,
                first_step=self.step_count == 1,
            )
