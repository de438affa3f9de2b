"""The loss :func:`autosize.train.fit` minimises and :func:`evaluate` (loss and metric of a split)."""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from autosize.data.bundle import DataBundle, Task
from autosize.errors import ConfigError
from autosize.history import Metric
from autosize.optim import _check_batch_size, resolve_device

__all__ = ["EVAL_BATCH_SIZE", "evaluate", "metric_name"]

EVAL_BATCH_SIZE = 4096


def metric_name(task: Task) -> Metric:
    """The validation metric reported for ``task``: accuracy or RMSE."""
    return "accuracy" if task == "classification" else "rmse"


# ---------------------------------------------------------------- loss and evaluation


def _task_loss(
    out: torch.Tensor, y: torch.Tensor, task: Task, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy for classification, MSE for regression (model output (n,) or (n, 1))."""
    if task == "classification":
        return F.cross_entropy(out, y, reduction=reduction)
    if out.dim() == 2 and out.shape[1] == 1:
        out = out.squeeze(1)
    if out.shape != y.shape:
        raise ConfigError(
            f"regression model output has shape {tuple(out.shape)}; expected (n,) or (n, 1) for {len(y)} targets"
        )
    return F.mse_loss(_at_least_float32(out), y, reduction=reduction)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (autocast's) in float32 for the loss; float64 stays float64."""
    return t.float() if t.dtype.itemsize < 4 else t


def _acc_dtype(device: torch.device) -> torch.dtype:
    return torch.float64 if device.type in ("cpu", "cuda") else torch.float32


def _autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[object]:
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _evaluate_tensors(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    task: Task,
    *,
    batch_size: int,
    autocast: contextlib.AbstractContextManager[object],
) -> dict[str, float]:
    """Loss and metric over device-resident ``x, y``; one host sync at the end."""
    n = x.shape[0]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            loss_sum = torch.zeros((), device=x.device, dtype=_acc_dtype(x.device))
            correct = torch.zeros((), device=x.device, dtype=torch.int64)
            for start in range(0, n, batch_size):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                with autocast:
                    out = model(xb)
                loss_sum += _task_loss(out, yb, task, reduction="sum")
                if task == "classification":
                    correct += (out.argmax(dim=1) == yb).sum()
            total, hits = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    finally:
        model.train(was_training)
    return _split_result(total, hits, n, task)


def _split_result(total: float, hits: float, n: int, task: Task) -> dict[str, float]:
    """The metrics of a split from its summed loss and (classification) correct count."""
    loss = total / n
    if task == "classification":
        return {"loss": loss, "accuracy": hits / n}
    return {"loss": loss, "mse": loss, "rmse": math.sqrt(loss) if loss >= 0 else math.nan}


def evaluate(
    model: nn.Module,
    bundle: DataBundle,
    split: Literal["train", "val", "test"],
    *,
    device: str | torch.device = "auto",
    batch_size: int = EVAL_BATCH_SIZE,
) -> dict[str, float]:
    """Loss and metric of ``model`` on one split of ``bundle``.

    Classification: ``{"loss", "accuracy"}``; regression: ``{"loss", "mse",
    "rmse"}`` with loss == mse. Runs under ``torch.inference_mode`` in eval mode
    (the model's previous train/eval mode is restored). The model is moved to
    ``device`` in place, as ``fit`` does.
    """
    if split not in ("train", "val", "test"):
        raise ConfigError(f"unknown split {split!r}; expected 'train', 'val' or 'test'")
    batch_size = _check_batch_size(batch_size)
    dev = resolve_device(device)
    x, y = (t.to(dev) for t in bundle.split(split))
    if x.shape[0] == 0:
        raise ConfigError(f"dataset {bundle.name!r} has an empty {split} split")
    model.to(dev)
    return _evaluate_tensors(
        model, x, y, bundle.task, batch_size=batch_size, autocast=contextlib.nullcontext()
    )
