"""The gates of sparsifier training (see :mod:`autosize.transforms.compress`): one
``g = relu(f)`` per hidden unit or channel, their L1 penalty, and folding them
into the next layer when training ends."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from autosize.errors import ConfigError, SpecError
from autosize.models import ArchSpec, Block, ConvBlock, ConvLayer, DenseBlock, Net

__all__ = ["Gate", "add_gates", "fold_gates", "gate_penalty"]


# --------------------------------------------------------------------------- gate


class Gate(nn.Module):
    """``x * relu(f)`` per unit; broadcast over the spatial dimensions of a conv output."""

    def __init__(
        self, n: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.f = nn.Parameter(torch.ones(n, device=device, dtype=dtype))

    @property
    def n(self) -> int:
        return self.f.shape[0]

    def values(self) -> torch.Tensor:
        """The gates ``g = relu(f)`` (with gradient)."""
        return torch.relu(self.f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.relu(self.f)
        if x.dim() > 2:
            g = g.view(-1, *([1] * (x.dim() - 2)))
        return x * g

    def extra_repr(self) -> str:
        return f"n={self.n}"


# --------------------------------------------------------------------------- checks


def _net(model: nn.Module) -> Net:
    """``model`` as a Net (a training callback sees it as any ``nn.Module``)."""
    if not isinstance(model, Net):
        raise SpecError(f"expected an autosize Net (blocks + head), got {type(model).__name__}")
    return model


def _blocks(model: nn.Module, spec: ArchSpec, *, gated: bool = False) -> list[Block]:
    """The model's hidden blocks, checked against ``spec`` (SpecError naming the mismatch)."""
    if spec.depth == 0:
        raise SpecError(
            f"compress needs at least one hidden layer; spec {spec.summary()!r} has none"
        )
    blocks = _net(model).blocks
    if len(blocks) != spec.depth:
        raise SpecError(
            f"model has {len(blocks)} hidden blocks but spec {spec.summary()!r} has {spec.depth}"
        )
    for i, (block, layer) in enumerate(zip(blocks, spec.layers, strict=True)):
        kind = ConvBlock if isinstance(layer, ConvLayer) else DenseBlock
        if not isinstance(block, kind):
            raise SpecError(
                f"layers[{i}]: spec says {layer.type} but the model has {type(block).__name__}"
            )
        size = block.core.weight.shape[0]
        if size != layer.size:
            raise SpecError(f"layers[{i}]: spec says {layer.size} units but the model has {size}")
        if gated and not (isinstance(block.gate, Gate) and block.gate.n == size):
            raise SpecError(f"layers[{i}]: no gate of size {size}; call add_gates first")
    return list(blocks)


def _gate(block: Block) -> Gate:
    """The gate of a block that ``_blocks(..., gated=True)`` has checked."""
    gate = block.gate
    assert isinstance(gate, Gate)
    return gate


def _number(
    name: str, value: object, *, minimum: float, strict: bool, expected: str | None = None
) -> float:
    """``value`` as a float, refused (ConfigError naming it) unless finite and above ``minimum``."""
    if (
        not isinstance(value, numbers.Real)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or (value <= minimum if strict else value < minimum)
    ):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"{name} must be {expected or 'a finite number ' + bound}, got {value!r}")
    return float(value)


def _check_lam(lam: object, decay: object, remove_every: object) -> tuple[float, float, int]:
    if (
        not isinstance(remove_every, numbers.Integral)
        or isinstance(remove_every, bool)
        or remove_every < 1
    ):
        raise ConfigError(f"remove_every must be an integer >= 1, got {remove_every!r}")
    lam_ = _number("lam", lam, minimum=0.0, strict=False)
    return lam_, _number("decay", decay, minimum=0.0, strict=True), int(remove_every)


def _area(layer: ConvLayer | object) -> int:
    return layer.kernel**2 if isinstance(layer, ConvLayer) else 1


# --------------------------------------------------------------------------- gates


def add_gates(model: Net, spec: ArchSpec) -> Net:
    """Put a :class:`Gate` (all ``f = 1``, so outputs are unchanged) in every block's gate slot.

    In place; returns ``model``. A block that already has a gate of the right size keeps it.
    """
    for i, block in enumerate(_blocks(model, spec)):
        weight = block.core.weight
        if isinstance(block.gate, Gate) and block.gate.n == weight.shape[0]:
            continue
        if not isinstance(block.gate, nn.Identity):
            raise SpecError(
                f"layers[{i}]: gate slot holds {type(block.gate).__name__}, expected Identity or Gate"
            )
        block.gate = Gate(weight.shape[0], device=weight.device, dtype=weight.dtype)
    return model


def gate_penalty(model: Net, spec: ArchSpec) -> torch.Tensor:
    """``sum over layers of (kernel area) * sum(g)`` (no ``lam``); a differentiable scalar."""
    gates = [_gate(block) for block in _blocks(model, spec, gated=True)]
    return _weighted_gate_sum(gates, [_area(layer) for layer in spec.layers])


def _weighted_gate_sum(gates: Sequence[Gate], areas: Sequence[int]) -> torch.Tensor:
    # The one formula for the penalty: gate_penalty checks the model, Sparsifier.penalty
    # (every training batch) reuses the gates it found at the start of training.
    return torch.stack([a * g.values().sum() for a, g in zip(areas, gates, strict=True)]).sum()


def _column_index(keep: torch.Tensor, s: int) -> torch.Tensor:
    """Input columns of the next layer owned by channels ``keep`` (``S = s`` columns each)."""
    if s == 1:
        return keep
    return (keep[:, None] * s + torch.arange(s, device=keep.device)).flatten()


def _next_core(model: Net, i: int) -> nn.Linear | nn.Conv2d:
    return model.blocks[i + 1].core if i + 1 < len(model.blocks) else model.head


def fold_gates(model: Net, spec: ArchSpec) -> Net:
    """Multiply each gate into the next layer's input columns and put ``nn.Identity`` back.

    In place; returns ``model``, whose outputs are unchanged (``g >= 0`` passes
    through max-pooling, dropout in eval mode and the flatten) and whose
    state_dict has the keys and shapes of ``build_model(spec)``. Blocks without
    a gate are left alone.
    """
    blocks = _blocks(model, spec)
    with torch.no_grad():
        for i, block in enumerate(blocks):
            if not isinstance(block.gate, Gate):
                continue
            g = block.gate.values().detach()
            nxt = _next_core(model, i)
            if isinstance(nxt, nn.Conv2d):
                nxt.weight.mul_(g.view(1, -1, 1, 1).to(nxt.weight.dtype))
            else:
                s = spec.flatten_size(i + 1)
                nxt.weight.mul_(g.repeat_interleave(s).view(1, -1).to(nxt.weight.dtype))
            block.gate = nn.Identity()
    return model
