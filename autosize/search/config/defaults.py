"""What a config leaves out, chosen from the data: a study needs only ``[study]`` and ``[data]``.

A config that gives only ``[study]`` and ``[data]`` (``autosize run --data``, the
scikit-learn estimators, a two-table file) runs the same search the shipped studies run:
a population of networks that train on, widen, deepen or compress, each step a short
training in wall seconds with a cosine schedule, several steps trained at once where the
networks stack. The choices follow from the data (rows ``n``, inputs ``d``, images or a
table, numeric and categorical columns), the family of the seed and the wall budget
``T`` (``study.timeout``), never from a dataset's name; :func:`choose_defaults` makes
them once the data is loaded:

* ``study.objective``: ``val_accuracy`` for classification, ``val_rmse`` for regression;
  ``val_loss`` (log-loss) for classification validated on fewer than :data:`RANKING_ROWS`
  rows, where accuracy moves in steps of more than 0.1% and ties networks that differ;
* ``[seed]``: for images, two 3x3 conv blocks of 16 and 32 channels (max-pooled by 2; one
  block for inputs under 16 pixels a side) and a dense layer of 128, lr 1e-3; for a table,
  two dense layers of ``clip(next_pow2(2 d), 32, 256)`` units, lr 3e-3, and, where the table
  mixes numeric columns with categorical ones, a periodic embedding of its numeric columns
  (the library's default frequencies, width and sigma). AdamW, weight decay
  :data:`WEIGHT_DECAY`, batches of ``clip(next_pow2(n / 16), 16, 128)`` rows, about
  :data:`SEED_STEPS` gradient steps (``clip(SEED_STEPS / steps_per_epoch, 2, 100)`` epochs),
  with ``T`` at most :data:`SEED_SHARE` of it;
* ``[train]`` (every step and the baseline): with ``T``, a wall-clock step of ``T`` /
  :data:`STEPS_PER_BUDGET` seconds for a table's dense nets (they stack, so a cohort of
  steps shares it) and ``T`` / :data:`CONV_STEPS_PER_BUDGET` for a conv net (it trains
  alone, and a step has to see the images a few times); without ``T``, a quarter of the
  seed's epochs (at least 2). The seed's lr, optimizer and batch size; cosine schedule (each
  step is a warm restart that ends at a low lr); best-validation weights kept;
* ``[search]``: every operation the activation allows (``train``, ``widen``, ``deepen``,
  ``compress``); parents ``best`` among the top 4; growth that jumps (widen by x1.5 to x3 a
  step for dense nets, x1.5 to x2 for conv nets, whose cost grows with the square of the
  channels); up to two layers deeper than the seed; widths up to 8 times the seed's widest
  layer for a table (at least 512) and 2 times for images; step learning rates from a tenth
  to three times the seed's; compress's L1 strength and gate learning rate over wide
  ranges (``lam`` 1e-6..1e-1, ``gate_lr`` 1e-3..1e-1), which the population narrows by
  keeping what worked;
* ``[baselines]``: the seed's architecture trained from scratch for one step, the study's
  own control;
* ``[sampler]`` and ``[pruner]``: the population sampler (exploit the best networks, explore
  by changing their size) and no pruner (every step restarts its schedule at a high lr, so a
  good step trails mid-way by design; a step that ends worse is never chosen as a parent).

A table the config gives is kept as given; ``[search]``, ``[baselines]``, ``[sampler]`` and
``[pruner]`` are chosen only when ``[seed]`` is chosen too (they are relative to it). Every
choice is returned as a line for the run to print, so the user sees it and can write it into
the config to change it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from autosize.data import DataBundle
from autosize.models import ConvLayer, DenseLayer, Layer
from autosize.search.config import (
    BaselineConfig,
    Component,
    SearchSpace,
    SeedConfig,
    StudyConfig,
    TrainConfig,
)
from autosize.search.config.schema import EmbeddingConfig, Objective

__all__ = [
    "CONV_STEPS_PER_BUDGET",
    "RANKING_ROWS",
    "SEED_SHARE",
    "SEED_STEPS",
    "STEPS_PER_BUDGET",
    "WEIGHT_DECAY",
    "choose_defaults",
]

SEED_STEPS = 3000
# Classification validated on fewer rows than this is judged by log-loss (val_loss): an
# accuracy on n rows moves in steps of 1/n, and below 1,000 rows (0.1%) it ties networks
# that differ, so the search cannot tell which to keep (a 2%-positive table of a few
# hundred rows scores every network 1.0).
RANKING_ROWS = 1000
# With a wall budget (study.timeout) the seed may use this share of it.
SEED_SHARE = 0.1
# A step's wall seconds are the budget divided by these: 15 s and 40 s at 600 s. A dense
# step is cheap and stacks with others (a cohort shares one step's seconds), so the study
# takes many; a conv step trains alone and must see the images a few times to move.
STEPS_PER_BUDGET = 40
CONV_STEPS_PER_BUDGET = 15
# AdamW's decoupled weight decay, the usual value of current training recipes: small nets
# on small tables overfit within tens of epochs, and best-validation weights alone only
# stop that, they do not regularise the step.
WEIGHT_DECAY = 0.05


def _pow2(x: float) -> int:
    return 1 << max(0, math.ceil(math.log2(max(x, 1.0))))


def _clip(x: int, low: int, high: int) -> int:
    return max(low, min(high, x))


def _seed_layers(bundle: DataBundle) -> tuple[Layer, ...]:
    shape = bundle.input_shape
    if len(shape) == 3:  # images: (channels, height, width)
        blocks = (16, 32) if min(shape[1:]) >= 16 else (16,)
        convs = tuple(ConvLayer(channels=c, kernel=3, pool=2) for c in blocks)
        return (*convs, DenseLayer(width=128))
    width = _clip(_pow2(2 * math.prod(shape)), 32, 256)
    return (DenseLayer(width=width), DenseLayer(width=width))


def choose_defaults(config: StudyConfig, bundle: DataBundle) -> tuple[StudyConfig, tuple[str, ...]]:
    """``config`` with its left-out parts chosen from ``bundle``, and one line per choice."""
    if not config.auto:
        return config, ()
    lines: list[str] = []
    auto = config.auto
    n = bundle.sizes["train"]
    timeout = config.timeout
    changes: dict[str, Any] = {"auto": frozenset()}  # keyword arguments of replace()

    if "objective" in auto:
        changes["objective"], line = _objective(bundle)
        lines.append(line)
    batch = _clip(_pow2(n / 16), 16, 128)
    steps = math.ceil(n / batch)
    seed_epochs = _clip(math.ceil(SEED_STEPS / steps), 2, 100)
    seed_net = config.seed_net
    if "seed" in auto:
        seed_net, line = _seed(config, bundle, batch=batch, seed_epochs=seed_epochs)
        changes["seed_net"] = seed_net
        lines.append(line)
    if "train" in auto:
        changes["train"], line = _train(seed_net, timeout, seed_epochs)
        lines.append(line)
    if "search" in auto:
        changes["search"], line = _search(config, seed_net)
        lines.append(line)
    if "baselines" in auto:
        changes["baselines"] = BaselineConfig(scales=())
        lines.append("[baselines] the seed's architecture, trained from scratch for one step")
    if "sampler" in auto:
        changes["sampler"] = Component("population", {"p_best": 0.5})
        lines.append("[sampler] population (p_best = 0.5)")
    if "pruner" in auto:
        changes["pruner"] = Component("none")
        lines.append("[pruner] none")
    return replace(config, **changes), tuple(lines)


def _objective(bundle: DataBundle) -> tuple[Objective, str]:
    """The objective: accuracy or RMSE by task; log-loss for classification on few rows."""
    objective: Objective = "val_accuracy" if bundle.task == "classification" else "val_rmse"
    why: str = bundle.task
    n_val = bundle.sizes["val"]
    if bundle.task == "classification" and n_val < RANKING_ROWS:
        objective = "val_loss"
        why = (
            f"classification on {n_val} validation rows: accuracy moves in steps of "
            f"{100 / max(n_val, 1):.2g}% and ties networks, log-loss ranks them"
        )
    return objective, f"study.objective = {objective!r}  ({why})"


def _seed(
    config: StudyConfig, bundle: DataBundle, *, batch: int, seed_epochs: int
) -> tuple[SeedConfig, str]:
    """The seed network and its training, from the data's shape and the wall budget."""
    n, d, timeout = bundle.sizes["train"], math.prod(bundle.input_shape), config.timeout
    layers = _seed_layers(bundle)
    conv = any(lay.type == "conv" for lay in layers)
    lr = 1e-3 if conv else 3e-3
    width = min(max(lay.size for lay in layers), config.search.max_width)
    layers = tuple(lay.resized(min(lay.size, width)) for lay in layers)
    # A table that mixes numeric columns with one-hot ones: embed the numeric ones.
    mixed = not conv and 0 < bundle.numeric_features < d
    embedding = EmbeddingConfig() if mixed and config.seed_net.embedding is None else None
    seconds = None if timeout is None else round(SEED_SHARE * timeout, 1)
    seed_net = SeedConfig(
        layers=layers,
        activation=config.seed_net.activation,
        train=TrainConfig(
            epochs=seed_epochs,
            max_seconds=seconds,
            optimizer="adamw",
            lr=lr,
            weight_decay=WEIGHT_DECAY,
            batch_size=batch,
        ),
        embedding=embedding or config.seed_net.embedding,
    )
    tags = ", ".join(lay.tag() for lay in layers)
    cap = "" if seconds is None else f", max_seconds = {seconds:g}"
    emb = ""
    if embedding is not None:
        emb = f", embedding = periodic ({bundle.numeric_features} numeric columns)"
    return seed_net, (
        f"[seed] layers {tags}{emb}, epochs = {seed_epochs}{cap}, optimizer = 'adamw', "
        f"lr = {lr:g}, weight_decay = {WEIGHT_DECAY:g}, batch_size = {batch}  "
        f"({n} training rows, {d} inputs)"
    )


def _train(
    seed_net: SeedConfig, timeout: float | None, seed_epochs: int
) -> tuple[TrainConfig, str]:
    """Every step's training: the seed's settings, a cosine schedule, a share of the budget."""
    conv = any(lay.type == "conv" for lay in seed_net.layers)
    base = seed_net.train
    if timeout is None:
        epochs: int | None = max(2, seed_epochs // 4)
        seconds = None
        budget = f"epochs = {epochs}"
    else:
        epochs = None
        share = CONV_STEPS_PER_BUDGET if conv else STEPS_PER_BUDGET
        seconds = round(timeout / share, 2)
        budget = f"max_seconds = {seconds:g} (study.timeout / {share})"
    train = TrainConfig(
        epochs=epochs,
        max_seconds=seconds,
        optimizer=base.optimizer,
        lr=base.lr,
        weight_decay=base.weight_decay,
        batch_size=base.batch_size,
        schedule="cosine",
    )
    return train, (
        f"[train] {budget}, optimizer = {base.optimizer!r}, lr = {base.lr:g}, "
        f"weight_decay = {base.weight_decay:g}, batch_size = {base.batch_size}, "
        "schedule = 'cosine'"
    )


def _search(config: StudyConfig, seed_net: SeedConfig) -> tuple[SearchSpace, str]:
    """The search space around the seed: how far it may widen and deepen, the step lrs."""
    conv = any(lay.type == "conv" for lay in seed_net.layers)
    widest = max(lay.size for lay in seed_net.layers)
    lr = seed_net.train.lr
    max_width = 2 * widest if conv else max(512, 8 * widest)
    search = SearchSpace(
        # the parsed default: what the activation allows, with "train" (train on) first
        operations=("train", *(o for o in config.search.operations if o != "train")),
        parents="best",
        top_k=4,
        max_width=max_width,
        min_widen_factor=1.5,
        max_widen_factor=2.0 if conv else 3.0,
        max_depth=len(seed_net.layers) + 2,
        lr=(lr / 10, 3 * lr),
        lam=(1e-6, 1e-1),
        gate_lr=(1e-3, 1e-1),
    )
    return search, (
        f"[search] operations = {', '.join(search.operations)}; parents = 'best', top_k = 4; "
        f"widen x{search.min_widen_factor:g}-x{search.max_widen_factor:g}; "
        f"max_width = {search.max_width}; max_depth = {search.max_depth}; "
        f"lr = [{lr / 10:g}, {3 * lr:g}]; lam = [1e-6, 0.1]; gate_lr = [0.001, 0.1]"
    )
