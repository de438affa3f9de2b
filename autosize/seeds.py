"""One seed scheme: independent random streams derived from a study's seed.

``seed + i`` schemes collide: baseline ``i`` used ``seed + 1000 + i`` while
``autosize train`` defaulted to ``seed + 1000`` (its "from-scratch control"
repeated baseline 0's initialisation), and the widen noise of trial ``n`` used
``seed + n + i``, the seed of trial ``n + i``'s training. :func:`derive_seed`
hashes ``(seed, purpose, index...)`` through :class:`numpy.random.SeedSequence`,
so every purpose and index gets its own stream and no two meet by arithmetic.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["derive_seed"]


def derive_seed(seed: int, purpose: str, *index: int) -> int:
    """A 31-bit seed for ``purpose`` (e.g. ``"baseline"``, ``"trial"``) and ``index``.

    Deterministic: the same arguments always give the same seed, on every machine.
    """
    entropy = [
        int(seed) & 0xFFFFFFFF,
        zlib.crc32(purpose.encode("utf-8")),
        *(int(i) for i in index),
    ]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)
