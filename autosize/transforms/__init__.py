"""Transforms: take a model and its ArchSpec, return a new model and a new spec.

Never imports optuna; the search layer decides when to apply them.
"""

from __future__ import annotations

from autosize.transforms.compress import compress
from autosize.transforms.net2net import deepen, widen
from autosize.transforms.regularize import set_dropout

__all__ = [
    "compress",
    "deepen",
    "set_dropout",
    "widen",
]
