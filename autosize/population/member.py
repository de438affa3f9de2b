"""The members of a population: each model's :class:`Member` record, the checks that it
can be stacked, and a :class:`Group` (a stack with its members and their per-epoch sums)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.data.bundle import DataBundle
from autosize.errors import ConfigError
from autosize.evaluation import _acc_dtype
from autosize.models.net import DenseBlock, Net
from autosize.optim import OptimizerName
from autosize.population.stack import MemberShape, Stack
from autosize.train import _check_dtype

__all__ = [
    "Group",
    "Layers",
    "Member",
    "build_stack",
    "can_stack",
    "make_group",
    "member_shape",
    "net_embed",
    "net_layers",
    "write_layers",
]

# A member's row of every slab of its stack, padded (Stack.member): what write_layers
# puts back into its modules.
Layers = list[torch.Tensor]


@dataclass(eq=False)
class Member:
    """One model of the population: its shape, seed, per-model TrainState and callbacks."""

    index: int
    model: Net
    shape: MemberShape
    seed: int
    state: TrainState
    callbacks: list[Callback]
    best_metric: float | None = None
    best_epoch: int | None = None
    best: Layers | None = None

    @property
    def lr(self) -> float:
        return float(self.state.optimizer.param_groups[0]["lr"])


@dataclass(eq=False)
class Group:
    """A stack and the members in its rows, with their per-epoch sums."""

    stack: Stack
    members: list[Member]
    scale: torch.Tensor | None  # [K, 1, 1] target_scale / target_shift, None when all trivial
    shift: torch.Tensor | None
    loss_sum: torch.Tensor = field(init=False)
    rows: torch.Tensor | None = None  # each member's batch row (its seed's); None: one seed
    # the members' own inputs and targets for a run of batches, [K, n, ...] (Loop._gather)
    block: tuple[torch.Tensor, torch.Tensor] | None = None

    def keep(self, rows: list[int]) -> None:
        self.stack.keep(rows)
        idx = torch.tensor(rows, dtype=torch.long, device=self.loss_sum.device)
        self.members = [self.members[r] for r in rows]
        self.loss_sum = self.loss_sum.index_select(0, idx)
        if self.scale is not None and self.shift is not None:
            self.scale, self.shift = self.scale[idx], self.shift[idx]
        if self.rows is not None:
            self.rows = self.rows[idx]
        if self.block is not None:
            self.block = (self.block[0][idx], self.block[1][idx])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stack.forward(x))

    def head(self, out: torch.Tensor) -> torch.Tensor:
        """The stack's raw outputs in the targets' units (each member's target scaling)."""
        if self.scale is not None and self.shift is not None:
            out = out * self.scale + self.shift
        return out


def member_shape(i: int, model: nn.Module, bundle: DataBundle) -> MemberShape:
    """What a stack needs of member ``i``; refuses what population training cannot do."""
    where = f"fit_population: model {i}"
    if not isinstance(model, Net):
        raise ConfigError(f"{where} is a {type(model).__name__}; expected a build_model network")
    for j, block in enumerate(model.blocks):
        if not isinstance(block, DenseBlock):
            raise ConfigError(f"{where}: layer {j} is not dense (train conv networks with fit)")
        for part, what in (("norm", "batchnorm"), ("gate", "a compress gate"), ("drop", "dropout")):
            if not isinstance(getattr(block, part), nn.Identity):
                raise ConfigError(f"{where}: layer {j} has {what}; train it with fit")
    if len({repr(b.act) for b in model.blocks}) > 1:
        raise ConfigError(f"{where}: its layers have different activations")
    if len(bundle.input_shape) != 1:
        raise ConfigError(f"fit_population: {bundle.name!r} is not a table of features")
    linears = _linears(model)
    embed = None
    width = bundle.input_shape[0]  # what the first weight layer takes
    if model.embed is not None:
        n, k2, d = model.embed.weight.shape
        embed = (n, k2 // 2, d)
        if n > width:
            raise ConfigError(f"{where} embeds {n} columns; {bundle.name!r} has {width}")
        width += n * (d - 1)
    if linears[0].in_features != width:
        raise ConfigError(f"{where} takes {linears[0].in_features} inputs, not {width}")
    if linears[-1].out_features != bundle.n_outputs:
        raise ConfigError(
            f"{where} has {linears[-1].out_features} outputs; {bundle.name!r} needs {bundle.n_outputs}"
        )
    dtypes = {p.dtype for p in model.parameters()}
    if len(dtypes) != 1 or not all(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"{where}: parameters must all be trainable and of one dtype")
    _check_dtype(model, bundle, where)
    return MemberShape(
        sizes=(linears[0].in_features, *(lin.out_features for lin in linears)),
        bias=tuple(lin.bias is not None for lin in linears),
        act=model.blocks[0].act if len(model.blocks) else nn.Identity(),
        dtype=dtypes.pop(),
        embed=embed,
    )


def _linears(model: Net) -> list[nn.Linear]:
    """The member's weight layers in order: its blocks' linears, then the head."""
    out = []
    for block in model.blocks:
        # member_shape refuses a net with any other block, so a member's blocks are dense.
        assert isinstance(block, DenseBlock)
        out.append(block.linear)
    return [*out, model.head]


def net_layers(model: Net) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    return [(lin.weight, lin.bias) for lin in _linears(model)]


def net_embed(model: Net) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    e = model.embed
    return None if e is None else (e.frequency, e.weight, e.bias)


@torch.no_grad()
def write_layers(model: Net, layers: Layers) -> None:
    """A member's rows of its stack's slabs (:meth:`Stack.member`) back into its modules:
    the embedding's as they are, each padded weight ``[in, out]`` and bias ``[1, out]`` cut
    to the layer's size."""
    rows = iter(layers)
    for p in net_embed(model) or ():
        p.copy_(next(rows))
    for lin in _linears(model):
        lin.weight.copy_(next(rows)[: lin.in_features, : lin.out_features].T)
        if lin.bias is not None:
            lin.bias.copy_(next(rows)[0, : lin.out_features])
    assert next(rows, None) is None, "write_layers: more slabs than the model has"


def build_stack(
    models: Sequence[Net], shapes: Sequence[MemberShape], optimizer: OptimizerName
) -> Stack:
    """One :class:`Stack` of ``models`` (their weights copied in; ``shapes`` from
    :func:`member_shape`), as ``fit_population`` builds each of its stacks."""
    embeds = [net_embed(m) for m in models]
    return Stack(
        [net_layers(m) for m in models],
        shapes,
        optimizer=optimizer,
        embeds=[e for e in embeds if e is not None],
    )


def make_group(members: list[Member], optimizer: OptimizerName) -> Group:
    stack = build_stack([m.model for m in members], [m.shape for m in members], optimizer)
    nets = [m.model for m in members]
    scale = shift = None
    if any(n.target_scale != 1.0 or n.target_shift != 0.0 for n in nets):
        as_tensor = lambda v: torch.tensor(v, dtype=stack.dtype, device=stack.device).view(-1, 1, 1)  # noqa: E731
        scale, shift = (
            as_tensor([n.target_scale for n in nets]),
            as_tensor([n.target_shift for n in nets]),
        )
    group = Group(stack, members, scale, shift)
    group.loss_sum = torch.zeros(len(members), dtype=_acc_dtype(stack.device), device=stack.device)
    return group


def can_stack(model: nn.Module, bundle: DataBundle) -> bool:
    """Whether :func:`~autosize.population.fit_population` can train ``model`` on ``bundle``."""
    try:
        member_shape(0, model, bundle)
    except ConfigError:
        return False
    return True
