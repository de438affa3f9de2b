"""``fit_population``: train several networks together, each as ``fit`` would alone; the
arguments are checked here, the members grouped into stacks, and the epochs run by
:mod:`autosize.population.loop`."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.data.bundle import DataBundle
from autosize.errors import ConfigError
from autosize.evaluation import (
    metric_name,
)
from autosize.history import History
from autosize.models.net import Net
from autosize.optim import (
    OptimizerName,
    _check_batch_size,
    _check_optimizer_args,
    _check_positive,
    _is_int,
    make_optimizer,
    resolve_device,
)
from autosize.population.loop import Loop, gc_paused
from autosize.population.member import (
    Member,
    make_group,
    member_shape,
)
from autosize.population.stack import MemberShape, plan_stacks
from autosize.train import _defines_hook, _float32_precision

__all__ = ["fit_population", "plan_for"]

logger = logging.getLogger(__name__)

# What one more stack costs per step, in parameter x example units (a stack's fixed
# per-step work, measured on this project's CPU, against its per-weight arithmetic):
# plan_stacks splits members into several stacks only where padding would cost more.
_STACK_OVERHEAD = {"cpu": 1.0e6, "cuda": 1.0e9}


def plan_for(shapes: Sequence[MemberShape], dev: torch.device, batch_size: int) -> list[list[int]]:
    """``fit_population``'s grouping of members into stacks on ``dev``: :func:`plan_stacks`
    with the device's per-stack overhead, in parameter-equivalents per example."""
    overhead = _STACK_OVERHEAD.get(dev.type, _STACK_OVERHEAD["cuda"]) / batch_size
    return plan_stacks(shapes, overhead)


def _per_member(name: str, value: object, k: int) -> list[object]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != k:
            raise ConfigError(f"{name}: got {len(value)} values for {k} models")
        return list(value)
    return [value] * k


def fit_population(
    models: Sequence[nn.Module],
    bundle: DataBundle,
    *,
    epochs: int | None = None,
    max_seconds: float | None = None,
    optimizer: OptimizerName = "adam",
    lr: float | Sequence[float] = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    device: str | torch.device = "auto",
    callbacks: Sequence[Sequence[Callback]] = (),
    seed: int | Sequence[int] = 0,
    amp: bool = False,
    allow_tf32: bool = False,
    restore_best: bool = False,
) -> list[History]:
    """Train ``models`` together on ``bundle``, each as :func:`autosize.train.fit` would alone.

    Member ``k`` with ``seed[k]`` and ``lr[k]`` (``seed`` and ``lr``: one value for all, or
    one per model) sees the batches ``fit(..., seed=seed[k])`` sees, in the same order,
    and gets the same update, so its History and final weights match ``fit``'s up to float
    rounding. Members sharing a seed share each batch. The models are trained in place,
    moved to the device and left in eval mode; one History per model is returned, in order.

    Per member, as in ``fit``: a non-finite loss ends that member only
    (``stopped == "diverged"``), ``restore_best`` loads its best epoch back, and
    ``callbacks[k]`` (one sequence per model, or none) get ``on_train_begin``,
    ``on_epoch_begin``, ``on_epoch_end`` (True stops that member, e.g. pruned; a
    stopped member costs no more compute) and ``on_train_end``. The budget
    (``epochs``, ``max_seconds``) is the population's.

    Differences from ``fit``: each member's ``TrainState.optimizer`` only carries its
    learning rate (a callback may set ``param_groups[0]["lr"]``, read at every epoch's
    start; it is never stepped), ``state.model`` gets the trained weights when that
    member stops, not during training, and callbacks may not reshape the model, replace
    the optimizer or add a ``penalty``. Networks with conv layers, batchnorm, dropout or
    compress gates are refused (train those with ``fit``), as are other modules than
    :func:`~autosize.models.build_model`'s. The layout is in :mod:`autosize.population.stack`.
    """
    if epochs is None and max_seconds is None:
        raise ConfigError("fit_population needs a budget: pass epochs=..., max_seconds=... or both")
    if epochs is not None and (not _is_int(epochs) or epochs < 1):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if max_seconds is not None:
        max_seconds = _check_positive("max_seconds", max_seconds)
    k = len(models)
    if k == 0:
        raise ConfigError("fit_population needs at least one model")
    lr_values, seed_values = _per_member("lr", lr, k), _per_member("seed", seed, k)
    lrs: list[float] = []
    for rate in lr_values:
        _check_optimizer_args(optimizer, rate, weight_decay)
        assert isinstance(rate, numbers.Real)  # _check_optimizer_args refuses anything else
        lrs.append(float(rate))
    if not all(_is_int(s) for s in seed_values):
        raise ConfigError(f"seed must be an integer or one per model, got {seed!r}")
    seeds = [int(s) for s in seed_values if isinstance(s, numbers.Integral)]  # all are (_is_int)
    batch_size = _check_batch_size(batch_size)
    if len({id(m) for m in models}) != k:
        raise ConfigError("fit_population: the same model object appears more than once")
    if any(isinstance(c, Callback) for c in callbacks):
        raise ConfigError("callbacks: one sequence of Callback instances per model, e.g. [[cb]]")
    per_member = [list(c) for c in callbacks] if callbacks else [[] for _ in models]
    if len(per_member) != k:
        raise ConfigError(f"callbacks: got {len(per_member)} sequences for {k} models")
    for cbs in per_member:
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks[k] must hold Callback instances, got {cb!r}")
            if _defines_hook(cb, "penalty"):
                raise ConfigError(f"{type(cb).__name__} adds a penalty; train with fit instead")
    if bundle.task not in ("classification", "regression"):
        raise ConfigError(f"unknown task {bundle.task!r} in dataset {bundle.name!r}")
    if bundle.train[0].shape[0] < 2 or bundle.val[0].shape[0] == 0:
        raise ConfigError(f"dataset {bundle.name!r} needs 2 training and 1 validation examples")
    shapes = [member_shape(i, m, bundle) for i, m in enumerate(models)]

    dev = resolve_device(device)
    members = []
    for i, model in enumerate(models):
        assert isinstance(model, Net)  # member_shape refuses anything else
        model.to(dev)
        history = History(task=bundle.task, metric=metric_name(bundle.task), device=str(dev))
        state = TrainState(
            model=model,
            optimizer=make_optimizer(
                optimizer,
                model.parameters(),
                lr=lrs[i],
                weight_decay=float(weight_decay),
            ),
            bundle=bundle,
            device=dev,
            history=history,
            epoch=0,
            batch_size=batch_size,
            lr=lrs[i],
            weight_decay=float(weight_decay),
            optimizer_name=optimizer,
            seed=seeds[i],
        )
        members.append(Member(i, model, shapes[i], state.seed, state, per_member[i]))
    groups = [
        make_group([members[i] for i in rows], optimizer)
        for rows in plan_for(shapes, dev, batch_size)
    ]
    loop = Loop(
        bundle, dev, batch_size, amp, restore_best, epochs, max_seconds,
        optimizer, float(weight_decay),
    )  # fmt: skip
    with _float32_precision(dev, allow_tf32), gc_paused() as loop.collect_per_epoch:
        loop.run(groups, members)
    done = [m.state.history for m in members]
    logger.info(
        "fit_population %s: %d models in %d stacks; %s",
        bundle.name,
        k,
        len(groups),
        ", ".join(f"{h.stopped} after {len(h)}" for h in done),
    )
    return done
