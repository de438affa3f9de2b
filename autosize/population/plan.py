"""Which members train in which stack: a member's shape (:class:`MemberShape`) and the plan
that groups members of one key into runs by size (:func:`plan_stacks`)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from autosize.models.layers import PeriodicEmbedding

__all__ = ["MemberShape", "padded", "plan_stacks"]


@dataclass(frozen=True)
class MemberShape:
    """What a stack needs to know about one member: its layer sizes and activation."""

    sizes: tuple[int, ...]  # [in, hidden..., out]
    bias: tuple[bool, ...]  # per weight layer (the head always has one)
    act: nn.Module  # the hidden layers' activation (stateless; shared within a stack)
    dtype: torch.dtype
    # (features n, frequencies k, width d) of a periodic embedding before the first layer
    embed: tuple[int, int, int] | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """Members with the same key can share a stack: depth, activation, biases, dtype,
        embedding."""
        return (len(self.sizes), repr(self.act), self.bias, self.dtype, self.embed)

    def params(self, sizes: Sequence[int] | None = None) -> int:
        s = self.sizes if sizes is None else sizes
        dense = sum(a * b + b for a, b in itertools.pairwise(s))
        if self.embed is None:
            return dense
        n, k, d = self.embed
        return dense + PeriodicEmbedding(features=n, frequencies=k, width=d).param_count()


def padded(shapes: Sequence[MemberShape]) -> tuple[int, ...]:
    return tuple(max(col) for col in zip(*(s.sizes for s in shapes), strict=True))


def plan_stacks(shapes: Sequence[MemberShape], overhead: float) -> list[list[int]]:
    """Group member indices into stacks: same key, then contiguous runs by size.

    Within one key the members are sorted by parameter count and cut into runs that
    minimise the modelled step cost, ``sum over stacks (overhead + K * padded params)``:
    one stack per key when the per-stack ``overhead`` (in parameter-equivalents) is large
    (a GPU, tiny nets), several when padding small members to a big one would cost more.
    """
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, s in enumerate(shapes):
        groups.setdefault(s.key, []).append(i)
    plan: list[list[int]] = []
    for members in groups.values():
        order = sorted(members, key=lambda i: shapes[i].params())
        n = len(order)
        best = [0.0] + [math.inf] * n  # best[j]: cheapest cut of order[:j]
        cut = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(j):
                run = [shapes[m] for m in order[i:j]]
                cost = best[i] + overhead + (j - i) * run[0].params(padded(run))
                if cost < best[j]:
                    best[j], cut[j] = cost, i
        runs, j = [], n
        while j > 0:
            runs.append(order[cut[j] : j])
            j = cut[j]
        plan.extend(reversed(runs))
    return plan
