"""Sparsifier training: shrink a network while it trains (:func:`compress`).

Every hidden unit (dense) or channel (conv) gets a gate ``g = relu(f)``, ``f``
a learnable parameter initialised at 1, multiplied into the unit's activation
(a :class:`Gate` in the block's ``gate`` slot, right after the activation).
Training minimises::

    task loss + lam * sum over hidden layers of (kernel area) * sum(g)

so a conv channel, which costs ``kernel**2`` weights per input channel, pays
that much more than a dense unit. A unit whose ``f`` reaches 0 outputs exactly
0 and gets no gradient through ``relu``: it is dead. After every
``remove_every`` epochs the dead units are cut out of the network for real
(:func:`remove_dead_units`): their weight rows, bias, BatchNorm parameters and
running statistics, their gate entry, and the next layer's input columns
(``S`` columns per channel across the flatten). Removal never changes the
outputs: the removed units contributed exactly 0.

When training ends the gates are folded into the next layer's input columns
(:func:`fold_gates`; exact because ``g >= 0`` commutes with max-pooling and
the flatten, and the gate sits after the activation) and the gate slots go
back to ``nn.Identity``: the result is a plain :class:`~autosize.models.Net`
with the same outputs and the structure of ``build_model(new_spec)``.

The gates themselves (:class:`Gate`, :func:`add_gates`, :func:`gate_penalty`,
:func:`fold_gates`) are in :mod:`autosize.transforms.gates` and re-exported here.

This module never imports optuna; a pruning callback can ride along through
``compress(..., callbacks=...)``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.errors import SpecError
from autosize.models import ArchSpec, Net
from autosize.train import OptimizerName, fit, make_optimizer
from autosize.transforms.gates import (
    Gate,
    _area,
    _blocks,
    _check_lam,
    _column_index,
    _gate,
    _net,
    _number,
    _weighted_gate_sum,
    add_gates,
    fold_gates,
    gate_penalty,
)

if TYPE_CHECKING:
    from autosize.data.bundle import DataBundle
    from autosize.history import EpochRecord, History

__all__ = [
    "Gate",
    "Removal",
    "Sparsifier",
    "add_gates",
    "compress",
    "fold_gates",
    "gate_penalty",
    "remove_dead_units",
]

logger = logging.getLogger(__name__)

_OPTIMIZER_NAMES: dict[type[torch.optim.Optimizer], OptimizerName] = {
    torch.optim.SGD: "sgd",
    torch.optim.Adam: "adam",
    torch.optim.AdamW: "adamw",
}


# --------------------------------------------------------------------------- removal


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


# --------------------------------------------------------------------------- training


class Sparsifier(Callback):
    """The :func:`fit` callback behind :func:`compress`: gate penalty, lam schedule, removal.

    ``lam`` is in force in epoch 1 and divided by ``decay`` after every epoch.
    Every ``remove_every`` epochs the dead units are removed and
    ``state.optimizer`` is replaced (see :func:`remove_dead_units`); ``spec``
    follows the model. Each epoch's ``record.extra`` gets ``lam`` (in force
    during the epoch), ``alive`` (units with ``g > 0`` per layer), ``widths``
    (per layer, after this epoch's removal), and on removal epochs
    ``removed`` (per layer) and, if any, ``kept_one`` (layers that lost every unit).
    The model must already carry gates (:func:`add_gates`). With ``gate_lr``
    the optimizer is rebuilt at the start of training with the gates' ``f`` in
    a second param group at that learning rate (Adam moves ``f`` by about the
    learning rate per step, so at ``lr=1e-3`` no gate can close in fewer than
    ~1000 steps; a larger ``gate_lr`` lets short budgets compress).
    """

    def __init__(
        self,
        spec: ArchSpec,
        *,
        lam: float,
        decay: float = 1.0,
        remove_every: int = 1,
        gate_lr: float | None = None,
    ) -> None:
        self.lam, self.decay, self.remove_every = _check_lam(lam, decay, remove_every)
        self.gate_lr = (
            None
            if gate_lr is None
            else _number(
                "gate_lr", gate_lr, minimum=0.0, strict=True, expected="a positive number or None"
            )
        )
        if spec.depth == 0:
            raise SpecError(
                f"compress needs at least one hidden layer; spec {spec.summary()!r} has none"
            )
        self.spec = spec
        self.lam_now = self.lam
        self._gates: list[Gate] = []
        self._areas: list[int] = [_area(layer) for layer in spec.layers]

    def on_train_begin(self, state: TrainState) -> None:
        blocks = _blocks(state.model, self.spec, gated=True)
        self._gates = [_gate(block) for block in blocks]
        if self.gate_lr is not None:
            gate_ids = {id(gate.f) for gate in self._gates}
            others = [p for p in state.model.parameters() if id(p) not in gate_ids]
            groups: list[dict[str, Any]] = [
                {"params": others},
                {"params": [g.f for g in self._gates], "lr": self.gate_lr},
            ]
            state.optimizer = make_optimizer(
                state.optimizer_name, groups, lr=state.lr, weight_decay=state.weight_decay
            )

    def on_epoch_begin(self, state: TrainState) -> None:
        self.lam_now = self.lam / self.decay**state.epoch

    def penalty(self, state: TrainState) -> torch.Tensor | None:
        if self.lam_now == 0.0:
            return None
        return self.lam_now * _weighted_gate_sum(self._gates, self._areas)

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> bool | None:
        extra = record.extra
        extra["lam"] = self.lam_now
        alive = torch.stack([(gate.f.detach() > 0).sum() for gate in self._gates]).tolist()
        extra["alive"] = [int(a) for a in alive]
        if record.epoch % self.remove_every == 0:
            model = _net(state.model)
            result = remove_dead_units(model, self.spec, optimizer=state.optimizer)
            self.spec = result.spec
            if result.optimizer is not None:
                state.optimizer = result.optimizer
            extra["removed"] = list(result.removed)
            if result.kept_one:
                extra["kept_one"] = list(result.kept_one)
        extra["widths"] = list(self.spec.widths)
        return None


def compress(
    model: Net,
    spec: ArchSpec,
    bundle: DataBundle,
    *,
    lam: float,
    decay: float = 1.0,
    epochs: int | None = None,
    max_seconds: float | None = None,
    remove_every: int = 1,
    optimizer: OptimizerName = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    device: str | torch.device = "auto",
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    gate_lr: float | None = None,
    amp: bool = False,
    allow_tf32: bool = False,
) -> tuple[Net, ArchSpec, History]:
    """Train a deep copy of ``model`` with gates and the size penalty; return it shrunk.

    Start large and let it shrink: units whose gate reaches 0 are removed every
    ``remove_every`` epochs and once more at the end; then the gates are folded
    into the weights. Returns ``(net, new_spec, history)``: ``net`` is a plain
    :class:`Net` (no gates) structured like ``build_model(new_spec)``, on the
    training device, in eval mode; ``history.epochs[i].extra`` holds the widths
    and lam of each epoch (see :class:`Sparsifier`). ``callbacks`` run after
    the sparsifier (e.g. a pruning bridge). The caller's ``model`` is untouched.
    Budget and optimizer options are :func:`autosize.train.fit`'s; weight decay
    also acts on the gates' ``f``. ``gate_lr`` (default: ``lr``) is the gates'
    own learning rate (see :class:`Sparsifier`).
    """
    sparsifier = Sparsifier(spec, lam=lam, decay=decay, remove_every=remove_every, gate_lr=gate_lr)
    _blocks(model, spec)
    net = copy.deepcopy(model)
    add_gates(net, spec)
    history = fit(
        net,
        bundle,
        epochs=epochs,
        max_seconds=max_seconds,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        device=device,
        callbacks=(sparsifier, *callbacks),
        seed=seed,
        amp=amp,
        allow_tf32=allow_tf32,
    )
    final = remove_dead_units(net, sparsifier.spec)
    if final.changed and history.epochs:
        extra = history.epochs[-1].extra
        extra["removed_at_end"] = list(final.removed)
        extra["widths"] = list(final.spec.widths)
        if final.kept_one:
            extra["kept_one"] = list(final.kept_one)
    fold_gates(net, final.spec)
    logger.info(
        "compress %s: %s -> %s (lam=%g, decay=%g, %d epochs)",
        bundle.name,
        spec.summary(),
        final.spec.summary(),
        lam,
        decay,
        len(history),
    )
    return net, final.spec, history
