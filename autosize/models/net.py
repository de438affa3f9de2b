"""The networks an :class:`~autosize.models.ArchSpec` builds, one module per spec layer
(see :mod:`autosize.models` for the mapping model surgery relies on)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol, cast

import torch
from torch import nn

from autosize.errors import SpecError
from autosize.models.layers import ConvLayer, DenseLayer, PeriodicEmbedding
from autosize.models.spec import ArchSpec

__all__ = [
    "Block",
    "BlockList",
    "ConvBlock",
    "DenseBlock",
    "Net",
    "PeriodicFeatures",
    "build_model",
    "make_activation",
]


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


class PeriodicFeatures(nn.Module):
    """:class:`~autosize.models.PeriodicEmbedding` as a module: the first ``features`` columns
    of a ``(batch, columns)`` input become ``features * width`` values, the rest pass through.

    ``frequency`` is ``(features, frequencies)``; ``weight`` ``(features, 2 * frequencies,
    width)`` and ``bias`` ``(features, width)`` are each column's own linear map, initialised
    as ``nn.Linear(2 * frequencies, width)`` would be.
    """

    def __init__(self, emb: PeriodicEmbedding) -> None:
        super().__init__()
        self.features = emb.features
        n, k, d = emb.features, emb.frequencies, emb.width
        self.frequency = nn.Parameter(torch.randn(n, k) * emb.sigma)
        bound = 1.0 / math.sqrt(2 * k)
        self.weight = nn.Parameter(torch.empty(n, 2 * k, d).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num, rest = x[:, : self.features], x[:, self.features :]
        angle = (2 * math.pi) * self.frequency * num.unsqueeze(-1)  # (batch, n, k)
        waves = torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)  # (batch, n, 2k)
        # One small matmul per column: (n, batch, 2k) @ (n, 2k, d) -> (n, batch, d).
        out = torch.baddbmm(self.bias.unsqueeze(1), waves.transpose(0, 1), self.weight)
        return torch.cat([torch.relu(out).transpose(0, 1).flatten(1), rest], dim=1)


Block = DenseBlock | ConvBlock


class BlockList(Protocol):
    """``Net.blocks`` as the code uses it: an ``nn.ModuleList`` that holds only blocks."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Block]: ...
    def __getitem__(self, idx: int, /) -> Block: ...
    def insert(self, index: int, module: Block) -> None: ...


class Net(nn.Module):
    """An optional embedding of numeric columns, hidden blocks, a flatten where the first
    dense layer (or the head) needs it, a linear head."""

    embed: PeriodicFeatures | None

    def __init__(self, spec: ArchSpec) -> None:
        super().__init__()
        # Built first, so that a seeded build_model draws its weights before the blocks'. A
        # network without one has no ``embed`` entry in its state_dict (older exports load).
        self.embed = None if spec.embedding is None else PeriodicFeatures(spec.embedding)
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
        if self.embed is not None:
            x = self.embed(x)
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
