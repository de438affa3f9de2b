"""Argument checks, devices and the optimizers :func:`autosize.train.fit` builds."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Literal, cast

import torch

from autosize.errors import ConfigError

__all__ = ["OPTIMIZERS", "OptimizerName", "make_optimizer", "optimizer_name", "resolve_device"]

OptimizerName = Literal["sgd", "adam", "adamw"]
OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "adam", "adamw")
SGD_MOMENTUM = 0.9


# ---------------------------------------------------------------- argument checks


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_positive(name: str, value: object) -> float:
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def optimizer_name(name: object) -> OptimizerName:
    """``name`` (e.g. read from a record) as an optimizer name, else ConfigError."""
    for known in OPTIMIZERS:
        if name == known:
            return known
    raise ConfigError(
        f"unknown optimizer {name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}"
    )


def _check_optimizer_args(name: object, lr: object, weight_decay: object) -> None:
    optimizer_name(name)
    _check_positive("lr", lr)
    if (
        not isinstance(weight_decay, numbers.Real)
        or isinstance(weight_decay, bool)
        or not math.isfinite(weight_decay)
        or weight_decay < 0
    ):
        raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay!r}")


def _check_batch_size(batch_size: object) -> int:
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


# ---------------------------------------------------------------- public helpers


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else CPU; anything else is checked and returned."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


def make_optimizer(
    name: OptimizerName,
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    *,
    lr: float,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """The optimizer ``fit`` uses: SGD with momentum 0.9, Adam or AdamW.

    Uses the fused single-kernel implementation when every parameter is a
    floating-point tensor on CPU or CUDA (faster than ``foreach`` on both,
    measured on CPU here), else PyTorch's default. Callbacks that change
    parameter shapes rebuild the optimizer with this (moment estimates restart).
    """
    _check_optimizer_args(name, lr, weight_decay)
    # Param groups (dicts) are copied with their "params" as a list: a generator would be spent
    # here. The cast: the copy is all tensors or all groups, as ``params`` is; mypy would type
    # it a list mixing both, which torch's optimizers do not accept.
    copied = cast(
        list[torch.Tensor] | list[dict[str, Any]],
        [
            {**item, "params": list(item["params"])} if isinstance(item, dict) else item
            for item in params
        ],
    )
    tensors: list[torch.Tensor] = [
        p for item in copied for p in (item["params"] if isinstance(item, dict) else [item])
    ]
    if not tensors:
        raise ConfigError("make_optimizer got no parameters to optimise")
    fused = all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors) or None
    if name == "sgd":
        return torch.optim.SGD(
            copied, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay, fused=fused
        )
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(copied, lr=lr, weight_decay=weight_decay, fused=fused)
