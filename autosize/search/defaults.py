"""What a config leaves out, chosen from the data: a study needs only ``[study]`` and ``[data]``.

The choices, made once the data is loaded (:func:`choose_defaults`), from the
training rows ``n``, the input size ``d`` and the task:

* ``study.objective``: ``val_accuracy`` for classification, ``val_rmse`` for
  regression;
* ``[seed]`` (absent): one dense layer of ``clip(next_pow2(d) / 2, 8, 64)``
  units, trained with Adam at lr 3e-3 for about :data:`SEED_STEPS` gradient steps
  (``clip(SEED_STEPS / steps_per_epoch, 10, 100)`` epochs), batches of
  ``clip(next_pow2(n / 16), 16, 128)`` rows; conv inputs get a small conv seed;
  with a ``study.timeout`` at most :data:`SEED_SHARE` of it;
* ``[train]`` (absent): a quarter of the seed's epochs (at least 2) at lr 1e-3, the
  seed's batch size, a cosine schedule (each trial ends at a low learning rate); with
  a ``study.timeout`` at most :data:`TRIAL_SHARE` of it per trial (the budget is part
  of the study's identity: resuming with another timeout is refused);
* ``[search]`` and ``[baselines]`` (absent, with ``[seed]`` absent too: they are
  relative to the chosen seed): parents ``best`` (climb), max width 16 times the seed's
  (at least 256), depth up to 4, widen factors up to 8, the quickstart's compress
  ranges; baselines at the seed's widths times 4 and 16.

Every choice is returned as a line for the run to print, so the user sees it and can
write it into the config to change it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from autosize.data import DataBundle
from autosize.models import ConvLayer, DenseLayer, Layer
from autosize.search.config import BaselineConfig, SearchSpace, SeedConfig, StudyConfig, TrainConfig

__all__ = ["SEED_SHARE", "SEED_STEPS", "TRIAL_SHARE", "choose_defaults"]

SEED_STEPS = 3000
# With a wall budget (study.timeout), the seed may use this share of it and each trial
# (and baseline) this share, so that a short budget still ends with trials to compare.
SEED_SHARE = 0.2
TRIAL_SHARE = 0.05


def _pow2(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def _clip(x: int, low: int, high: int) -> int:
    return max(low, min(high, x))


def choose_defaults(config: StudyConfig, bundle: DataBundle) -> tuple[StudyConfig, tuple[str, ...]]:
    """``config`` with its left-out parts chosen from ``bundle``, and one line per choice."""
    if not config.auto:
        return config, ()
    lines: list[str] = []
    auto = config.auto
    n = bundle.sizes["train"]
    d = math.prod(bundle.input_shape)
    image = len(bundle.input_shape) == 3
    changes: dict[str, Any] = {"auto": frozenset()}  # keyword arguments of replace()

    if "objective" in auto:
        objective = "val_accuracy" if bundle.task == "classification" else "val_rmse"
        changes["objective"] = objective
        lines.append(f"study.objective = {objective!r}  ({bundle.task})")

    batch = _clip(_pow2(n / 16), 16, 128)
    steps = math.ceil(n / batch)
    seed_epochs = _clip(math.ceil(SEED_STEPS / steps), 10, 100)
    seed_net = config.seed_net
    if "seed" in auto:
        layers: tuple[Layer, ...]
        if image:
            layers = (ConvLayer(channels=8, kernel=3, pool=2), DenseLayer(width=32))
        else:
            layers = (DenseLayer(width=_clip(_pow2(d) // 2, 8, 64)),)
        width = min(max(lay.size for lay in layers), config.search.max_width)
        layers = tuple(lay.resized(min(lay.size, width)) for lay in layers)
        seconds = None if config.timeout is None else round(SEED_SHARE * config.timeout, 1)
        seed_net = SeedConfig(
            layers=layers,
            activation=config.seed_net.activation,
            train=TrainConfig(epochs=seed_epochs, max_seconds=seconds, lr=3e-3, batch_size=batch),
        )
        changes["seed_net"] = seed_net
        tags = ", ".join(lay.tag() for lay in layers)
        cap = "" if seconds is None else f", max_seconds = {seconds:g}"
        lines.append(
            f"[seed] layers {tags}, epochs = {seed_epochs}{cap}, lr = 3e-3, batch_size = {batch}  "
            f"({n} training rows, {d} inputs)"
        )
    if "train" in auto:
        epochs = max(2, seed_epochs // 4)
        train_batch = seed_net.train.batch_size
        seconds = None if config.timeout is None else round(TRIAL_SHARE * config.timeout, 2)
        changes["train"] = TrainConfig(
            epochs=epochs,
            max_seconds=seconds,
            lr=1e-3,
            batch_size=train_batch,
            schedule="cosine",
        )
        cap = "" if seconds is None else f", max_seconds = {seconds:g}"
        lines.append(
            f"[train] epochs = {epochs}{cap}, lr = 1e-3, batch_size = {train_batch}, "
            "schedule = 'cosine'"
        )
    widest = max(lay.size for lay in seed_net.layers)
    if "search" in auto:
        search = SearchSpace(
            operations=config.search.operations,  # the parsed default: what the activation allows
            parents="best",
            max_width=max(256, 16 * widest),
            max_widen_factor=8.0,
            max_depth=max(4, len(seed_net.layers) + 2),
            lam=(1e-4, 1e-1),
            gate_lr=(1e-2, 1e-1),
        )
        changes["search"] = search
        lines.append(
            f"[search] operations = {', '.join(search.operations)}; parents = 'best'; "
            f"max_width = {search.max_width}; max_depth = {search.max_depth}; max_widen_factor = 8"
        )
    if "baselines" in auto:
        changes["baselines"] = BaselineConfig(scales=(4.0, 16.0))
        lines.append("[baselines] the seed's architecture and its widths times 4 and 16")
    return replace(config, **changes), tuple(lines)
