"""Model surgery shared by Net2WiderNet and Net2DeeperNet: checks of a network against its
spec and of the arguments, and rebuilding a block's core layer with new weights."""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import nn

from autosize.errors import SpecError
from autosize.models import ArchSpec, Block, ConvBlock, DenseBlock, Net
from autosize.models.layers import is_int

__all__ = [
    "INITS",
    "Core",
    "Init",
    "check_index",
    "check_init",
    "check_model",
    "detached",
    "is_int",
    "pair",
    "rebuilt",
    "set_core",
    "take",
    "uniform",
]

Init = Literal["net2net", "random"]
INITS: tuple[str, ...] = get_args(Init)

Core = nn.Linear | nn.Conv2d


def check_model(model: Net, spec: ArchSpec) -> None:
    if not isinstance(model, Net):
        raise SpecError(f"model: expected a Net from build_model, got {type(model).__name__}")
    if (model.embed is None) != (spec.embedding is None):
        which = ("the spec", "the model") if model.embed is None else ("the model", "the spec")
        raise SpecError(f"model: {which[0]} has an embedding and {which[1]} has none")
    if len(model.blocks) != spec.depth:
        raise SpecError(
            f"model: has {len(model.blocks)} hidden blocks but the spec has {spec.depth} layers"
        )
    for i, (block, layer) in enumerate(zip(model.blocks, spec.layers, strict=True)):
        units = block.core.weight.shape[0]
        if units != layer.size:
            raise SpecError(
                f"model: blocks[{i}] has {units} units but spec layers[{i}] says {layer.size}"
            )
        if isinstance(block.core, nn.Conv2d) and block.core.groups != 1:
            raise SpecError(
                f"model: blocks[{i}] is a grouped convolution, which Net2Net cannot grow"
            )
    if model.head.in_features != spec.in_features(spec.depth):
        raise SpecError(
            f"model: head takes {model.head.in_features} features but the spec gives "
            f"{spec.in_features(spec.depth)}"
        )


def check_index(value: object, depth: int, name: str) -> None:
    if not is_int(value) or not 0 <= value < depth:
        raise SpecError(f"{name}: must be a hidden-layer index in 0..{depth - 1}, got {value!r}")


def check_init(init: object) -> None:
    if init not in INITS:
        raise SpecError(f"init: unknown {init!r}; expected one of {', '.join(INITS)}")


def detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def take(t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.detach()[idx]


def uniform(
    shape: tuple[int, ...], fan_in: int, gen: torch.Generator, like: torch.Tensor
) -> torch.Tensor:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default init of Linear/Conv weights and biases.

    Drawn on the CPU from ``gen`` (reproducible on any device), then moved to ``like``'s device/dtype.
    """
    bound = 1.0 / math.sqrt(fan_in)
    values = torch.rand(shape, generator=gen, dtype=torch.float64) * (2 * bound) - bound
    return values.to(device=like.device, dtype=like.dtype)


def rebuilt(old: Core, *, weight: torch.Tensor, bias: torch.Tensor | None) -> Core:
    """A module like ``old`` (same kind and options) sized for ``weight``, holding copies of the tensors."""
    if isinstance(old, nn.Linear):
        new: Core = nn.Linear(
            weight.shape[1], weight.shape[0], bias=bias is not None, device="meta"
        )
    else:
        new = nn.Conv2d(
            weight.shape[1] * old.groups,
            weight.shape[0],
            pair(old.kernel_size),
            stride=pair(old.stride),
            padding=old.padding if isinstance(old.padding, str) else pair(old.padding),
            dilation=pair(old.dilation),
            groups=old.groups,
            bias=bias is not None,
            padding_mode=old.padding_mode,
            device="meta",
        )
    new.weight = nn.Parameter(weight.detach().clone(), requires_grad=old.weight.requires_grad)
    if bias is not None:
        grad = old.bias.requires_grad if old.bias is not None else True
        new.bias = nn.Parameter(bias.detach().clone(), requires_grad=grad)
    new.train(old.training)
    return new


def pair(value: tuple[int, ...]) -> tuple[int, int]:
    """A Conv2d option (kernel_size, stride...): a 2-tuple, which torch types ``tuple[int, ...]``."""
    a, b = value
    return a, b


def set_core(block: Block, core: Core) -> None:
    """Put ``core`` in ``block``: a Linear in a DenseBlock, a Conv2d in a ConvBlock."""
    if isinstance(block, DenseBlock) and isinstance(core, nn.Linear):
        block.linear = core
    elif isinstance(block, ConvBlock) and isinstance(core, nn.Conv2d):
        block.conv = core
    else:
        raise TypeError(f"cannot put a {type(core).__name__} in a {type(block).__name__}")
