"""The networks an :class:`~autosize.models.ArchSpec` builds, one module per spec layer
(see :mod:`autosize.models` for the mapping model surgery relies on)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, cast

import torch
from torch import nn

from autosize.errors import SpecError
from autosize.models.spec import ArchSpec, ConvLayer, DenseLayer

__all__ = ["Block", "BlockList", "ConvBlock", "DenseBlock", "Net", "build_model", "make_activation"]


def make_activation(name: str) -> nn.Module:
    factories: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardtanh": nn.Hardtanh,
        "identity": nn.Identity,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "leaky_relu": nn.LeakyReLU,
    }
    if name not in factories:
        raise SpecError(f"activation: unknown {name!r}; expected one of {', '.join(factories)}")
    return factories[name]()


class DenseBlock(nn.Module):
    """linear -> norm -> act -> gate -> drop"""

    def __init__(self, in_features: int, layer: DenseLayer, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, layer.width, bias=layer.bias)
        self.norm: nn.Module = nn.BatchNorm1d(layer.width) if layer.batchnorm else nn.Identity()
        self.act = make_activation(activation)
        self.gate: nn.Module = nn.Identity()
        self.drop: nn.Module = nn.Dropout(layer.dropout) if layer.dropout else nn.Identity()

    @property
    def core(self) -> nn.Linear:
        """The weight layer whose output rows are this block's units."""
        return self.linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.gate(self.act(self.norm(self.linear(x)))))


class ConvBlock(nn.Module):
    """conv -> norm -> act -> gate -> pool -> drop"""

    def __init__(self, in_channels: int, layer: ConvLayer, activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            layer.channels,
            layer.kernel,
            stride=layer.stride,
            padding=layer.pad,
            bias=layer.bias,
        )
        self.norm: nn.Module = nn.BatchNorm2d(layer.channels) if layer.batchnorm else nn.Identity()
        self.act = make_activation(activation)
        self.gate: nn.Module = nn.Identity()
        self.pool: nn.Module = nn.MaxPool2d(layer.pool) if layer.pool > 1 else nn.Identity()
        self.drop: nn.Module = nn.Dropout(layer.dropout) if layer.dropout else nn.Identity()

    @property
    def core(self) -> nn.Conv2d:
        return self.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.gate(self.act(self.norm(self.conv(x))))))


Block = DenseBlock | ConvBlock


class BlockList(Protocol):
    """``Net.blocks`` as the code uses it: an ``nn.ModuleList`` that holds only blocks."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Block]: ...
    def __getitem__(self, idx: int, /) -> Block: ...
    def insert(self, index: int, module: Block) -> None: ...


class Net(nn.Module):
    """Hidden blocks, a flatten where the first dense layer (or the head) needs it, a linear head."""

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        blocks: list[Block] = []
        for i, layer in enumerate(spec.layers):
            if isinstance(layer, ConvLayer):
                blocks.append(ConvBlock(spec.in_shape(i)[0], layer, spec.activation))
            else:
                blocks.append(DenseBlock(spec.in_features(i), layer, spec.activation))
        # nn.ModuleList types its items as Module; this one is built from blocks, and the
        # transforms (deepen's insert, compress's in-place slicing) only ever put blocks in it.
        self.blocks = cast(BlockList, nn.ModuleList(blocks))
        self.head = nn.Linear(spec.in_features(spec.depth), spec.n_outputs)
        self.target_shift = float(spec.target_shift)
        self.target_scale = float(spec.target_scale)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The flattened output of the last hidden block (what the head sees)."""
        for block in self.blocks:
            if isinstance(block, DenseBlock) and x.dim() > 2:
                x = x.flatten(1)
            x = block(x)
        return x.flatten(1) if x.dim() > 2 else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(x))
        if self.target_scale != 1.0 or self.target_shift != 0.0:
            # In float32 at least: under bf16 autocast the head's output is bfloat16, whose
            # 8-bit mantissa cannot hold a target mean of 1e4 to better than about 64.
            if out.dtype in (torch.bfloat16, torch.float16):
                out = out.float()
            out = out * self.target_scale + self.target_shift
        return out


def build_model(spec: ArchSpec, *, seed: int | None = None) -> Net:
    """A freshly initialised network for ``spec`` (PyTorch's default initialisation).

    With ``seed`` the initial weights are reproducible without touching the global RNG.
    """
    if seed is None:
        return Net(spec)
    with torch.random.fork_rng(devices=[]):
        # Net is built on the CPU: its generator only (torch.manual_seed would reseed every
        # GPU too, and fork_rng(devices=[]) does not restore those).
        torch.random.default_generator.manual_seed(seed)
        return Net(spec)
