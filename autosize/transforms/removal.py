"""Physical removal of dead units: a compressed network's units whose gates reached zero
are cut out of every tensor they own (:func:`remove_dead_units`), the optimizer's state
sliced with them, so training goes on with the smaller network."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autosize.models import ArchSpec, Net
from autosize.train import OptimizerName, make_optimizer
from autosize.transforms.gates import (
    _blocks,
    _column_index,
    _gate,
)

__all__ = ["Removal", "remove_dead_units"]

logger = logging.getLogger(__name__)

_OPTIMIZER_NAMES: dict[type[torch.optim.Optimizer], OptimizerName] = {
    torch.optim.SGD: "sgd",
    torch.optim.Adam: "adam",
    torch.optim.AdamW: "adamw",
}


@dataclass(frozen=True)
class Removal:
    """What :func:`remove_dead_units` did.

    ``removed[i]`` units were cut from hidden layer ``i``; ``kept_one`` lists the
    layers whose units were all dead, where the unit with the largest ``f`` was
    kept so the network stays connected. ``optimizer`` is the rebuilt optimizer
    (the one passed in when nothing was removed; None when none was passed).
    """

    spec: ArchSpec
    optimizer: torch.optim.Optimizer | None
    removed: tuple[int, ...]
    kept_one: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return any(self.removed)


_Ops = list[tuple[int, torch.Tensor]]  # (dim, indices to keep) applied in order


class _Slicer:
    """Replaces parameters and buffers by sliced copies, remembering old -> new for the optimizer."""

    def __init__(self) -> None:
        self.replaced: dict[nn.Parameter, tuple[nn.Parameter, _Ops]] = {}

    def __call__(self, module: nn.Module, name: str, ops: _Ops) -> None:
        old = getattr(module, name, None)
        if old is None or not ops:
            return
        new = _apply(old.detach(), ops)
        if isinstance(old, nn.Parameter):
            param = nn.Parameter(new, requires_grad=old.requires_grad)
            setattr(module, name, param)
            self.replaced[old] = (param, ops)
        else:
            setattr(module, name, new)


def _apply(t: torch.Tensor, ops: _Ops) -> torch.Tensor:
    for dim, idx in ops:
        t = t.index_select(dim, idx)
    return t.contiguous()


def remove_dead_units(
    model: Net, spec: ArchSpec, *, optimizer: torch.optim.Optimizer | None = None
) -> Removal:
    """Cut the units whose gate is exactly 0 (``f <= 0``) out of ``model``, in place.

    Slices each layer's weight rows, bias, BatchNorm weight/bias/running
    statistics and gate, and the next layer's (or the head's) input columns,
    ``S`` columns per channel across the flatten (``spec.flatten_size``).
    The eval-mode outputs do not change. A layer whose units are all dead keeps
    the one with the largest ``f`` (listed in ``Removal.kept_one``).

    With ``optimizer`` (SGD, Adam or AdamW, as ``fit`` builds them), a new one
    is built with :func:`autosize.train.make_optimizer` with the same param
    groups (each sliced parameter replaced by its new tensor), each group's
    hyperparameters (lr, betas, momentum, weight decay...) are copied over, and
    the per-parameter state is
    carried across: every state tensor shaped like its parameter (Adam's
    ``exp_avg``/``exp_avg_sq``, SGD's ``momentum_buffer``) is sliced exactly
    like the parameter; others (Adam's ``step``) are kept. So the surviving
    units continue exactly as if the dead ones had never existed. Another
    optimizer type is rebuilt as ``type(optimizer)(groups, **defaults)`` with
    the same state slicing. When nothing is removed the optimizer is returned as is.
    """
    blocks = _blocks(model, spec, gated=True)
    keeps: list[torch.Tensor] = []
    kept_one: list[int] = []
    for i, block in enumerate(blocks):
        f = _gate(block).f.detach()
        keep = (f > 0).nonzero().flatten()
        if keep.numel() == 0:
            keep = torch.argmax(torch.nan_to_num(f, nan=-math.inf)).reshape(1)
            kept_one.append(i)
        keeps.append(keep)
    removed = tuple(w - int(k.numel()) for w, k in zip(spec.widths, keeps, strict=True))
    if kept_one:
        logger.info("layers %s lost every unit; kept the one with the largest gate", kept_one)
    if not any(removed):
        return Removal(spec, optimizer, removed, tuple(kept_one))

    slicer = _Slicer()
    for i, block in enumerate(blocks):
        core = block.core
        rows: _Ops = [(0, keeps[i])] if removed[i] else []
        cols: _Ops = []
        if i > 0 and removed[i - 1]:
            prev = keeps[i - 1]
            cols = [
                (
                    1,
                    prev
                    if isinstance(core, nn.Conv2d)
                    else _column_index(prev, spec.flatten_size(i)),
                )
            ]
        slicer(core, "weight", rows + cols)
        if rows:
            slicer(core, "bias", rows)
            if isinstance(block.norm, nn.modules.batchnorm._BatchNorm):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    slicer(block.norm, name, rows)
                block.norm.num_features = int(keeps[i].numel())
            slicer(_gate(block), "f", rows)
        if isinstance(core, nn.Conv2d):
            core.out_channels, core.in_channels = core.weight.shape[0], core.weight.shape[1]
        else:
            core.out_features, core.in_features = core.weight.shape
    if removed[-1]:
        head = model.head
        slicer(head, "weight", [(1, _column_index(keeps[-1], spec.flatten_size(spec.depth)))])
        head.in_features = head.weight.shape[1]

    new_spec = spec.with_widths([int(k.numel()) for k in keeps])
    logger.debug("removed %s dead units; widths now %s", removed, new_spec.widths)
    new_opt = None if optimizer is None else _rebuild_optimizer(optimizer, model, slicer.replaced)
    return Removal(new_spec, new_opt, removed, tuple(kept_one))


def _rebuild_optimizer(
    old: torch.optim.Optimizer,
    model: nn.Module,
    replaced: dict[nn.Parameter, tuple[nn.Parameter, _Ops]],
) -> torch.optim.Optimizer:
    """A new optimizer with ``old``'s param groups and hyperparameters and its sliced state."""
    forward = {old_p: new_p for old_p, (new_p, _) in replaced.items()}
    # The same param groups as before, each holding its parameters' replacements.
    groups: list[dict[str, Any]] = [
        {"params": [forward.get(p, p) for p in g["params"]]} for g in old.param_groups
    ]
    grouped = {id(p) for g in groups for p in g["params"]}
    orphans = [p for p in model.parameters() if id(p) not in grouped]
    if orphans:  # parameters the old optimizer did not know: they join the first group
        groups[0]["params"].extend(orphans)
    group0 = old.param_groups[0]
    name = _OPTIMIZER_NAMES.get(type(old))
    if name is not None:
        new = make_optimizer(
            name, groups, lr=float(group0["lr"]), weight_decay=float(group0["weight_decay"])
        )
    else:
        new = type(old)(groups, **old.defaults)
    for g_new, g_old in zip(new.param_groups, old.param_groups, strict=True):
        g_new.update({k: v for k, v in g_old.items() if k != "params"})
    origin = {new_p: (old_p, ops) for old_p, (new_p, ops) in replaced.items()}
    for group in new.param_groups:
        for p in group["params"]:
            old_p, ops = origin.get(p, (p, []))
            state = old.state.get(old_p)
            if not state:
                continue
            new.state[p] = {
                key: _apply(v, ops)
                if isinstance(v, torch.Tensor) and ops and v.shape == old_p.shape
                else v
                for key, v in state.items()
            }
    return new
