"""The training engine: :func:`fit` a model on a :class:`DataBundle`, :func:`evaluate` it.

The hot path is deliberately plain (measured in ``reports/throughput.md``):

- each split is moved to the device once per ``fit``; no Dataset/DataLoader;
- one permutation per epoch from a ``torch.Generator`` seeded with ``seed``
  (drawn on the CPU, so CPU and CUDA runs see the same order), one gather into
  a permuted copy, then contiguous slices of that copy as batches (indexing
  every batch with random indices was ~10x slower);
- the epoch's training loss is accumulated on the device and read once per
  epoch (plus one read for the validation sums); on CUDA the early divergence
  check reads a scalar every ``_CHECK_EVERY_CUDA`` batches, on the CPU every
  batch (a CPU ``.item()`` costs about a microsecond);
- the time budget is checked with ``time.perf_counter()`` (no device sync)
  after every batch and every epoch.

Last partial batch: kept, so every example is seen every epoch, except a tail
of exactly one example after full batches, which is always dropped (BatchNorm in train mode
cannot normalise a single example; whether a model has BatchNorm can change
during training, so the rule does not depend on it). The permutation changes
every epoch, so no example is systematically left out. With ``batch_size=1`` every
batch is a single example and every one trains (a model with BatchNorm cannot).

``torch.compile`` is not used: on this project's CPU sizes it did not pay
(see the report); it stays an option for callers, who may pass a compiled model.

Argument checks, devices and optimizers are in :mod:`autosize.optim`, the loss and
:func:`evaluate` in :mod:`autosize.evaluation` (both re-exported here).

This module never imports optuna: the search layer bridges the two with a callback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.data.bundle import DataBundle
from autosize.errors import ConfigError
from autosize.evaluation import (
    EVAL_BATCH_SIZE,
    _acc_dtype,
    _autocast,
    _evaluate_tensors,
    _task_loss,
    evaluate,
    metric_name,
)
from autosize.history import EpochRecord, History
from autosize.optim import (
    OPTIMIZERS,
    PRECISIONS,
    FusedStep,
    OptimizerName,
    Precision,
    _check_batch_size,
    _check_optimizer_args,
    _check_positive,
    _is_int,
    make_optimizer,
    precision_flags,
    resolve_device,
)

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "OptimizerName",
    "Precision",
    "evaluate",
    "fit",
    "make_optimizer",
    "precision_flags",
    "resolve_device",
]

logger = logging.getLogger(__name__)

# Batches between divergence checks on CUDA: each check drains the queue once (one scalar read).
_CHECK_EVERY_CUDA = 50


# ---------------------------------------------------------------- fit


@contextlib.contextmanager
def _float32_precision(device: torch.device, allow_tf32: bool) -> Iterator[None]:
    """TF32 off on CUDA (exact float32) unless asked for; the previous setting is restored."""
    if device.type != "cuda":
        yield
        return
    # torch.backends.cudnn is replaced at import by a CudnnModule that has ``conv``; the
    # annotations torch leaves in the module for type checkers list other attributes only.
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    matmul = torch.backends.cuda.matmul
    before = (matmul.fp32_precision, conv.fp32_precision)
    mode = "tf32" if allow_tf32 else "ieee"
    matmul.fp32_precision = mode
    conv.fp32_precision = mode
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def _defines_hook(cb: Callback, hook: str) -> bool:
    return getattr(type(cb), hook) is not getattr(Callback, hook)


def _check_dtype(model: nn.Module, bundle: DataBundle, where: str) -> None:
    """A model whose floating-point parameters are not of the features' dtype is refused."""
    features = bundle.train[0].dtype
    if not features.is_floating_point:
        return
    for p in model.parameters():
        if p.is_floating_point() and p.dtype != features:
            raise ConfigError(
                f"{where} has {str(p.dtype).removeprefix('torch.')} parameters but dataset "
                f"{bundle.name!r} has {str(features).removeprefix('torch.')} features; "
                f"cast one to the other (e.g. model.to({features}))"
            )


def fit(
    model: nn.Module,
    bundle: DataBundle,
    *,
    epochs: int | None = None,
    max_seconds: float | None = None,
    optimizer: OptimizerName = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    device: str | torch.device = "auto",
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    amp: bool = False,
    allow_tf32: bool = False,
    restore_best: bool = False,
) -> History:
    """Train ``model`` on ``bundle.train``, validating on ``bundle.val`` after every epoch.

    Stops at ``epochs`` or ``max_seconds`` (whichever comes first; at least one
    is required), when a callback asks, or when the loss becomes non-finite
    (``History.stopped == "diverged"``, no exception). The model is moved to the
    device in place and left there in eval mode. ``amp`` enables bfloat16
    autocast on CUDA (ignored on CPU). With ``restore_best`` the weights of the
    best-validation epoch are loaded back at the end, unless parameter shapes
    changed since (then a warning is logged and the last weights stay). The
    same ``seed`` on the CPU gives the same history except for timings; the
    global RNG is forked, so the caller's random state is untouched.
    """
    if epochs is None and max_seconds is None:
        raise ConfigError("fit needs a budget: pass epochs=..., max_seconds=... or both")
    if epochs is not None and (not _is_int(epochs) or epochs < 1):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if max_seconds is not None:
        max_seconds = _check_positive("max_seconds", max_seconds)
    _check_optimizer_args(optimizer, lr, weight_decay)
    batch_size = _check_batch_size(batch_size)
    if not _is_int(seed):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise ConfigError(
                f"callbacks must be autosize.callbacks.Callback instances, got {cb!r}"
            )
    if bundle.task not in ("classification", "regression"):
        raise ConfigError(f"unknown task {bundle.task!r} in dataset {bundle.name!r}")
    _check_dtype(model, bundle, "fit: the model")

    dev = resolve_device(device)
    if amp and dev.type != "cuda":
        logger.info("amp=True is ignored on %s (bfloat16 autocast is used on CUDA only)", dev)
    if bundle.train[0].shape[0] < 2:
        raise ConfigError(f"dataset {bundle.name!r} needs at least 2 training examples")
    if bundle.val[0].shape[0] == 0:
        raise ConfigError(
            f"dataset {bundle.name!r} has an empty val split; fit validates every epoch"
        )

    model.to(dev)
    history = History(task=bundle.task, metric=metric_name(bundle.task), device=str(dev))
    state = TrainState(
        model=model,
        optimizer=make_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay),
        bundle=bundle,
        device=dev,
        history=history,
        epoch=0,
        batch_size=batch_size,
        lr=float(lr),
        weight_decay=float(weight_decay),
        optimizer_name=optimizer,
        seed=int(seed),
    )
    rng_devices = [dev] if dev.type == "cuda" else []
    with (
        _float32_precision(dev, allow_tf32),
        torch.random.fork_rng(devices=rng_devices, device_type=dev.type if rng_devices else "cuda"),
    ):
        # Dropout and other in-model randomness: the CPU's generator and the one of the
        # device it trains on, the ones forked above (torch.manual_seed would reseed every
        # GPU of the machine for good).
        torch.random.default_generator.manual_seed(seed)
        if dev.type == "cuda":
            with torch.cuda.device(dev):
                torch.cuda.manual_seed(seed)
        elif dev.type == "mps":  # one device, nothing else to spare
            torch.mps.manual_seed(seed)
        _loop(
            state,
            callbacks,
            epochs=epochs,
            max_seconds=max_seconds,
            amp=amp,
            restore_best=restore_best,
        )
    state.model.eval()
    best = history.best
    logger.info(
        "fit %s: %d epochs, stopped by %s (%s); best %s %.4g at epoch %s",
        bundle.name,
        len(history),
        history.stopped,
        history.stop_reason,
        history.metric,
        math.nan if best is None else best.val_metric,
        None if best is None else best.epoch,
    )
    return history


def _loop(
    state: TrainState,
    callbacks: list[Callback],
    *,
    epochs: int | None,
    max_seconds: float | None,
    amp: bool,
    restore_best: bool,
) -> None:
    """The loop itself; ``fit`` has checked the arguments and built ``state``."""
    dev, history, task, bs = state.device, state.history, state.bundle.task, state.batch_size
    x, y = (t.to(dev) for t in state.bundle.train)  # no copy when already there
    vx, vy = (t.to(dev) for t in state.bundle.val)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(state.seed)
    autocast = _autocast(dev, amp)
    check_every = 1 if dev.type == "cpu" else _CHECK_EVERY_CUDA
    penalisers = [cb for cb in callbacks if _defines_hook(cb, "penalty")]
    acc_dtype = _acc_dtype(dev)
    best_metric: float | None = None
    best_weights: dict[str, torch.Tensor] | None = None
    best_epoch: int | None = None

    t_start = time.perf_counter()
    deadline = math.inf if max_seconds is None else t_start + max_seconds
    for cb in callbacks:
        cb.on_train_begin(state)

    epoch = 0
    while True:
        state.epoch = epoch
        for cb in callbacks:
            cb.on_epoch_begin(state)
        # Read afresh every epoch: a callback may have reshaped the model or replaced the optimizer.
        model, opt = state.model, state.optimizer
        stepper = FusedStep(opt)  # opt.step(), bit for bit, without its per-step Python
        model.train()
        t_epoch = time.perf_counter()
        perm = torch.randperm(n, generator=gen).to(dev, non_blocking=True)
        xs, ys = x[perm], y[perm]  # one gather per epoch; batches are contiguous slices
        loss_sum = torch.zeros((), device=dev, dtype=acc_dtype)
        penalty_sum = torch.zeros((), device=dev, dtype=acc_dtype)
        seen = batches = 0
        diverged = cut_by_time = False
        for b, start in enumerate(range(0, n, bs)):
            end = min(start + bs, n)
            if end - start == 1 and bs > 1:  # batch_size = 1 trains on every example
                break  # a single-example tail (see module docstring)
            state.batch = b
            with autocast:
                out = model(xs[start:end])
                loss = _task_loss(out, ys[start:end], task)
                total = loss
                for cb in penalisers:
                    extra = cb.penalty(state)
                    if extra is not None:
                        penalty_sum += extra.detach()
                        total = total + extra
            opt.zero_grad(set_to_none=True)
            total.backward()
            stepper.step()
            loss_sum.add_(loss.detach(), alpha=end - start)
            seen += end - start
            batches += 1
            if check_every == 1:
                if not math.isfinite(total.item()):
                    diverged = True
                    break
            elif batches % check_every == 0 and not torch.isfinite(loss_sum + penalty_sum).item():
                diverged = True
                break
            if time.perf_counter() >= deadline:
                cut_by_time = True
                break
        train_sum, pen_sum = torch.stack([loss_sum, penalty_sum]).tolist()  # the epoch's one sync
        t_trained = time.perf_counter()
        train_loss = train_sum / max(seen, 1)
        val = _evaluate_tensors(model, vx, vy, task, batch_size=EVAL_BATCH_SIZE, autocast=autocast)
        t_now = time.perf_counter()
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=val["loss"],
            val_metric=val[history.metric],
            seconds=t_now - t_epoch,
            elapsed=t_now - t_start,
            lr=float(opt.param_groups[0]["lr"]),
            examples_per_second=seen / max(t_trained - t_epoch, 1e-9),
            train_examples=seen,
            train_penalty=pen_sum / max(batches, 1),
        )
        history.epochs.append(record)
        logger.debug("epoch %d: %s", record.epoch, record)

        diverged = diverged or not all(map(math.isfinite, (train_loss, pen_sum, val["loss"])))
        if diverged:
            history.stopped = "diverged"
            history.stop_reason = (
                f"non-finite loss in epoch {epoch + 1} (train loss {train_loss}, "
                f"penalty {pen_sum}, val loss {val['loss']}); lr={state.lr} may be too high"
            )
            break
        if history.is_better(record.val_metric, best_metric):
            best_metric, best_epoch = record.val_metric, record.epoch
            if restore_best:  # before on_epoch_end, which may reshape the model
                best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

        state.stop_reason = ""
        votes = [cb.on_epoch_end(state, record) for cb in callbacks]
        epoch += 1
        if any(v is True for v in votes):
            asked = next(cb for cb, v in zip(callbacks, votes, strict=True) if v is True)
            history.stopped = "callback"
            history.stop_reason = (
                state.stop_reason or f"{type(asked).__name__} asked to stop after epoch {epoch}"
            )
            break
        if cut_by_time:
            history.stopped = "time"
            history.stop_reason = f"max_seconds={max_seconds} ran out during epoch {epoch}"
            break
        if epochs is not None and epoch >= epochs:
            history.stopped = "epochs"
            history.stop_reason = f"ran all {epochs} epochs"
            break
        if time.perf_counter() >= deadline:
            history.stopped = "time"
            history.stop_reason = f"max_seconds={max_seconds} ran out after epoch {epoch}"
            break

    if restore_best and best_weights is not None:
        _restore(state.model, best_weights, best_epoch, history)
    for cb in callbacks:
        cb.on_train_end(state)


def _restore(
    model: nn.Module, weights: dict[str, torch.Tensor], epoch: int | None, history: History
) -> None:
    current = model.state_dict()
    same = current.keys() == weights.keys() and all(
        current[k].shape == weights[k].shape for k in current
    )
    if not same:
        logger.warning(
            "restore_best skipped: the model's parameters changed shape after epoch %s; keeping the last weights",
            epoch,
        )
        return
    model.load_state_dict(weights)
    history.restored_epoch = epoch
