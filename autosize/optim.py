"""Argument checks, devices and the optimizers :func:`autosize.train.fit` builds."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Literal

import torch

from autosize.errors import ConfigError

__all__ = ["OPTIMIZERS", "OptimizerName", "make_optimizer", "resolve_device"]

OptimizerName = Literal["sgd", "adam", "adamw"]
OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "adam", "adamw")
SGD_MOMENTUM = 0.9


# ---------------------------------------------------------------- argument checks


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive(name: str, value: object) -> float:
    if not _is_real(value) or not math.isfinite(value) or value <= 0:  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_optimizer_args(name: object, lr: object, weight_decay: object) -> None:
    if name not in OPTIMIZERS:
        raise ConfigError(
            f"unknown optimizer {name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}"
        )
    _check_positive("lr", lr)
    if not _is_real(weight_decay) or not math.isfinite(weight_decay) or weight_decay < 0:  # type: ignore[arg-type]
        raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay!r}")


def _check_batch_size(batch_size: object) -> int:
    if not _is_int(batch_size) or batch_size < 1:  # type: ignore[operator]
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)  # type: ignore[call-overload]


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
    params: Iterable[torch.Tensor] | Iterable[dict[str, object]],
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
    # Param groups (dicts) are copied with their "params" as a list: a generator would be spent here.
    params = [
        {**item, "params": list(item["params"])} if isinstance(item, dict) else item  # type: ignore[index]
        for item in params
    ]
    tensors = [
        p
        for item in params
        for p in (item["params"] if isinstance(item, dict) else [item])  # type: ignore[index]
    ]
    if not tensors:
        raise ConfigError("make_optimizer got no parameters to optimise")
    fused = all(t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors) or None
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=weight_decay, fused=fused
        )
    cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, weight_decay=weight_decay, fused=fused)
