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
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from autosize.callbacks import Callback, TrainState
from autosize.errors import SpecError
from autosize.models import ArchSpec, Net
from autosize.train import OptimizerName, fit, make_optimizer
from autosize.transforms.gates import (
    Gate,
    _area,
    _blocks,
    _check_lam,
    _gate,
    _net,
    _number,
    _weighted_gate_sum,
    add_gates,
    fold_gates,
    gate_penalty,
)
from autosize.transforms.removal import Removal, remove_dead_units

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
