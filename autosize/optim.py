"""Argument checks, devices and the optimizers :func:`autosize.train.fit` builds."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, Literal, cast

import torch

from autosize.errors import ConfigError

__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "FusedStep",
    "OptimizerName",
    "Precision",
    "fused_update",
    "make_optimizer",
    "optimizer_name",
    "precision_flags",
    "resolve_device",
]

OptimizerName = Literal["sgd", "adam", "adamw"]
OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "adam", "adamw")
SGD_MOMENTUM = 0.9

# A run's matmul precision on a GPU, one name for fit's ``amp`` and ``allow_tf32``: fp32,
# TF32 matmuls (float32 storage, 10-bit mantissa products) or bf16 autocast. A CPU
# always trains in fp32 (both flags are ignored there).
Precision = Literal["fp32", "tf32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "tf32", "bf16")


def precision_flags(precision: str) -> dict[str, bool]:
    """``fit``'s (and ``fit_population``'s) ``amp`` and ``allow_tf32`` for ``precision``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return {"amp": precision == "bf16", "allow_tf32": precision == "tf32"}


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


def fused_update(
    name: OptimizerName,
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    state: list[list[torch.Tensor]],
    steps: list[torch.Tensor],
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    momentum: float = SGD_MOMENTUM,
    first_step: bool = False,
) -> None:
    """One update of torch's fused kernel for ``name``, the one its fused optimizers run.

    ``state`` is SGD's ``[momentum buffers]`` or Adam(W)'s ``[exp_avgs, exp_avg_sqs]``;
    ``steps`` are Adam's step-count tensors, already counting this step (the caller
    increments them; SGD takes none). The one place that knows these private kernels'
    signatures (``fit``'s FusedStep and population stacks both step through it).
    """
    if name == "sgd":
        torch._fused_sgd_(
            params,
            grads,
            state[0],
            weight_decay=weight_decay,
            momentum=momentum,
            lr=lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=first_step,
        )
        return
    kernel = torch._fused_adamw_ if name == "adamw" else torch._fused_adam_
    exp_avgs, exp_avg_sqs = state
    kernel(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        [],
        steps,
        lr=lr,
        beta1=betas[0],
        beta2=betas[1],
        weight_decay=weight_decay,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


class FusedStep:
    """``opt.step()`` for :func:`make_optimizer`'s fused optimizers, without torch.optim's
    per-step Python around the kernel.

    On a tiny net that Python is most of the optimizer's cost: measured on this project's
    CPU, a 10-16-16-1 network's AdamW step took 66 of a training step's 175 us through
    ``opt.step()``, around a fused kernel of a few microseconds. The first call goes through
    ``opt.step()`` (torch builds the state); later calls run the same kernel on the same
    state tensors (``opt.state`` stays the record, so ``state_dict`` and a callback reading
    the moments see what torch would have left), so the result is bit for bit
    ``opt.step()``'s. Whenever anything is not the plain case (another optimizer class,
    ``amsgrad``, ``maximize``, a tensor learning rate, parameters on several devices or of
    several dtypes, a parameter without a gradient this step), it calls ``opt.step()``.
    Learning rates and weight decay are read from ``param_groups`` at every call.
    """

    def __init__(self, opt: torch.optim.Optimizer) -> None:
        self.opt = opt
        self._plan: list[tuple[dict[str, Any], list[list[torch.Tensor]]]] | None = None
        self._first = True

    def step(self) -> None:
        if self._first:  # torch builds the state; then the plan, or None for opt.step() always
            self._first = False
            self.opt.step()
            self._plan = self._make_plan()
            return
        plan = self._plan
        if plan is None:
            self.opt.step()
            return
        grads = [[p.grad for p in tensors[0]] for _, tensors in plan]
        if any(g is None for gs in grads for g in gs) or any(
            isinstance(group["lr"], torch.Tensor) for group, _ in plan
        ):
            self.opt.step()
            return
        for (group, tensors), group_grads in zip(plan, grads, strict=True):
            if isinstance(self.opt, torch.optim.SGD):
                params, buffers = tensors
                fused_update(
                    "sgd",
                    params,
                    group_grads,  # type: ignore[arg-type]
                    [buffers],
                    [],
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                    momentum=group["momentum"],
                )
                continue
            params, exp_avgs, exp_avg_sqs, steps = tensors
            torch._foreach_add_(steps, 1)
            fused_update(
                "adamw" if group["decoupled_weight_decay"] else "adam",
                params,
                group_grads,  # type: ignore[arg-type]
                [exp_avgs, exp_avg_sqs],
                steps,
                lr=group["lr"],
                weight_decay=group["weight_decay"],
                betas=group["betas"],
                eps=group["eps"],
            )

    def _make_plan(self) -> list[tuple[dict[str, Any], list[list[torch.Tensor]]]] | None:
        """Each group's tensors for the kernel, or None where only ``opt.step()`` will do."""
        opt = self.opt
        kind = type(opt)
        if kind not in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
            return None
        params = [p for g in opt.param_groups for p in g["params"]]
        if len({(p.device, p.dtype) for p in params}) != 1:
            return None
        plan = []
        for group in opt.param_groups:
            if not group.get("fused") or group.get("maximize") or group.get("differentiable"):
                return None
            if isinstance(group["lr"], torch.Tensor):
                return None
            states = [opt.state.get(p, {}) for p in group["params"]]
            if kind is torch.optim.SGD:
                if group["momentum"] == 0 or group["nesterov"] or group["dampening"]:
                    return None
                buffers = [s.get("momentum_buffer") for s in states]
                if any(b is None for b in buffers):
                    return None
                plan.append((group, [list(group["params"]), buffers]))
                continue
            if group.get("amsgrad") or group.get("capturable"):
                return None
            if not all({"exp_avg", "exp_avg_sq", "step"} <= s.keys() for s in states):
                return None
            plan.append(
                (
                    group,
                    [
                        list(group["params"]),
                        [s["exp_avg"] for s in states],
                        [s["exp_avg_sq"] for s in states],
                        [s["step"] for s in states],
                    ],
                )
            )
        return plan
