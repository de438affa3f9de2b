"""Each member's training loss in a stacked step, and its gradient by hand, as autograd
computes ``fit``'s."""

from __future__ import annotations

import torch

from autosize.data.bundle import Task
from autosize.evaluation import _at_least_float32, _task_loss

__all__ = ["member_losses", "member_losses_and_grad"]


def member_losses(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """``fit``'s loss of each member's examples: ``[K, B]`` from outputs ``[K, B, out]``."""
    k, b = y.shape
    return _task_loss(
        out.reshape(k * b, out.shape[-1]), y.reshape(-1), task, reduction="none"
    ).view(k, b)


def member_losses_and_grad(
    out: torch.Tensor, y: torch.Tensor, task: Task
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean loss ``[K]`` and its gradient with respect to ``out`` ``[K, B, out]``.

    By hand, as autograd's backward of ``fit``'s loss computes it (``fit``'s mean over its
    batch): MSE's ``(out - y) * 2 / B`` (half precision in float32, as ``_task_loss``), and
    cross-entropy's log-softmax backward of ``-1 / B`` at each target.
    """
    b = y.shape[1]
    if task == "classification":
        logp = torch.log_softmax(out, dim=-1)
        target = y.unsqueeze(-1)
        grad_logp = torch.zeros_like(logp).scatter_(-1, target, -1.0 / b)
        grad = torch.ops.aten._log_softmax_backward_data(grad_logp, logp, -1, logp.dtype)
        return -logp.gather(-1, target).squeeze(-1).mean(1), grad
    diff = _at_least_float32(out).squeeze(-1) - y
    return (diff * diff).mean(1), (diff * (2.0 / b)).to(out.dtype).unsqueeze(-1)
