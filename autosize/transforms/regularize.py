"""Dropout as a step: change the dropout rate of a trained network's dense layers.

Inverted dropout is the identity in eval mode, so the network computes exactly
the same function afterwards and training resumes from where it was; only the
training that follows is regularised. It also breaks the symmetry between the
copies Net2WiderNet makes (copies trained without dropout stay identical).
"""

from __future__ import annotations

import copy
import dataclasses
import math

from torch import nn

from autosize.errors import SpecError
from autosize.models import ArchSpec, DenseBlock, DenseLayer, Net

__all__ = ["set_dropout"]


def set_dropout(model: Net, spec: ArchSpec, *, p: float) -> tuple[Net, ArchSpec]:
    """A copy of ``model`` whose dense hidden layers drop with probability ``p``.

    Conv layers keep theirs. ``p = 0`` removes dropout. The weights are copied unchanged.
    """
    if not isinstance(p, int | float) or isinstance(p, bool) or not (0.0 <= p < 1.0):
        raise SpecError(f"dropout: must be a number in [0, 1), got {p!r}")
    if not math.isfinite(p):
        raise SpecError(f"dropout: must be finite, got {p!r}")
    if not isinstance(model, Net) or len(model.blocks) != spec.depth:
        raise SpecError("set_dropout: the model does not match its spec")
    new = copy.deepcopy(model)
    layers = list(spec.layers)
    for i, (layer, block) in enumerate(zip(spec.layers, new.blocks, strict=True)):
        if isinstance(layer, DenseLayer) and isinstance(block, DenseBlock):
            layers[i] = dataclasses.replace(layer, dropout=float(p))
            block.drop = nn.Dropout(p) if p else nn.Identity()
    return new, dataclasses.replace(spec, layers=tuple(layers))
