"""K dense networks of one depth as one batched computation: :class:`Stack`.

Every member's layer ``l`` is padded to the stack's widest ``l`` and stored as one slab
``[K, in, out]`` (weights) and ``[K, 1, out]`` (biases); a forward pass is one
``baddbmm`` per layer. The padding is exact, not approximate:

- padded weights and biases start at zero;
- a padded unit's pre-activation is then exactly 0; where ``act(0) != 0`` (sigmoid) a
  0/1 mask after the activation zeroes it, so the next layer sees exact zeros either way;
- so a padded weight's gradient is a sum of products with an exact zero (its unit's
  output, or the gradient arriving through a zero weight or the mask): exactly 0;
- Adam with a zero gradient from zero moments moves nothing (``0 / (0 + eps)``), and
  weight decay of a zero weight is zero: padded entries stay zero for ever.

A member may carry a periodic embedding of its first numeric columns
(:class:`~autosize.models.net.PeriodicFeatures`) in front of its first layer; the
members of one stack then have the same embedding shape (it is part of
:attr:`MemberShape.key`: a study's networks all carry its seed's embedding), so its
three slabs (frequencies ``[K, n, k]``, weights ``[K, n, 2k, d]``, biases ``[K, n, d]``)
need no padding, and a forward pass adds one ``baddbmm`` over ``K x n`` columns.

All slabs live in one flat buffer, each slab a contiguous piece of it, with a flat
gradient buffer of the same layout (each slab's ``.grad`` is a view of it) that
:meth:`Stack.backward` writes, or autograd accumulates into under autocast, and so do
the optimizer's moments. In a population those buffers are pieces of the population's
own (:meth:`Stack.adopt`), which :mod:`autosize.population.optimizer` steps once per
batch for every stack.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from autosize.optim import OptimizerName
from autosize.population.plan import MemberShape, padded, plan_stacks

__all__ = ["MemberShape", "Stack", "act_backward", "plan_stacks"]


# grad, pre-activation z, activation output a -> the gradient at z: autograd's own backward
# kernel for each activation build_model makes, so the hand-written backward pass of
# Stack.backward runs the kernels autograd would (tests/test_population.py compares them).
ActBackward = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_aten = torch.ops.aten


def act_backward(act: nn.Module) -> ActBackward | None:
    """The backward of ``act`` as a function of (grad, z, act(z)); None for an unknown one."""
    kind = type(act)
    if kind is nn.Identity:
        return lambda g, z, a: g
    if kind is nn.ReLU:
        return lambda g, z, a: _aten.threshold_backward(g, a, 0)
    if kind in (nn.Hardtanh, nn.ReLU6):
        lo, hi = act.min_val, act.max_val
        return lambda g, z, a: _aten.hardtanh_backward(g, z, lo, hi)
    if kind is nn.LeakyReLU:
        slope = act.negative_slope
        return lambda g, z, a: _aten.leaky_relu_backward(g, z, slope, False)
    if kind is nn.Tanh:
        return lambda g, z, a: _aten.tanh_backward(g, a)
    if kind is nn.Sigmoid:
        return lambda g, z, a: _aten.sigmoid_backward(g, a)
    if kind is nn.SiLU:
        return lambda g, z, a: _aten.silu_backward(g, z)
    if kind is nn.GELU:
        approximate = act.approximate
        return lambda g, z, a: _aten.gelu_backward(g, z, approximate=approximate)
    return None


# What Stack.forward_saving keeps for Stack.backward: each layer's input, each hidden
# layer's pre-activation and activation output, and the embedding's (numeric columns
# [K or 1, n, B, 1], cosines and sines [K * n, B, 2k], output after its relu [K * n, B, d]).
Saved = tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]


def _input_grad(g: torch.Tensor, w: torch.Tensor, single: bool) -> torch.Tensor:
    """A layer's input gradient from its output's, ``g @ w^T`` per member (a one-output
    head's ``w`` is ``[K, n, 1]``: a broadcast product, as in :func:`_affine`)."""
    return g * w.transpose(1, 2) if single else torch.bmm(g, w.transpose(1, 2))


def _affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """``h @ w + b`` per member: ``[K, B, in] x [K, in, out] (+ [K, 1, out])``.

    A one-output layer (a regression head) is a multiply and a sum over ``in``: ``bmm``
    with one output column costs as much as a 48-column one on a CPU (measured: 23 against
    11 us for 6 x 128 x 48), and so do its two backward products (Stack.backward).
    """
    if w.shape[2] == 1:
        out = (h * w.transpose(1, 2)).sum(-1, keepdim=True)
        return out if b is None else out + b
    return torch.baddbmm(b, h, w) if b is not None else torch.bmm(h, w)


class Stack:
    """Members of one depth and activation, padded to the widest, trained as one batch."""

    def __init__(
        self,
        weights: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor | None]]],
        shapes: Sequence[MemberShape],
        *,
        optimizer: OptimizerName,
        embeds: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = (),
    ) -> None:
        """``weights[k][l]`` is member k's layer l as ``(weight [out, in], bias [out] or None)``;
        ``embeds[k]`` its embedding's ``(frequency, weight, bias)`` where the members have one
        (``shapes[k].embed``).

        ``optimizer`` says which moments the stack keeps (SGD one buffer, Adam(W) two).
        """
        self.sizes = padded(shapes)
        self.bias = shapes[0].bias
        self.embed = shapes[0].embed
        if (self.embed is None) != (len(embeds) == 0) or (embeds and len(embeds) != len(weights)):
            raise ValueError("Stack: one embedding per member where the shapes have one")
        self.act = shapes[0].act
        self.act_backward = act_backward(self.act)
        self.optimizer = optimizer
        w0 = weights[0][0][0]
        self.device, self.dtype = w0.device, w0.dtype
        k = len(weights)
        act0 = self.act(torch.zeros(1, dtype=self.dtype, device=self.device))
        masked = bool(act0.abs().item() != 0.0)
        slabs: list[torch.Tensor] = []
        if embeds:  # the same shape for every member (MemberShape.key): stacked, not padded
            slabs.extend(torch.stack([e[j].detach() for e in embeds]) for j in range(3))
        for i, (a, b) in enumerate(itertools.pairwise(self.sizes)):
            w = torch.zeros(k, a, b, dtype=self.dtype, device=self.device)
            for m, layers in enumerate(weights):
                wt = layers[i][0]
                w[m, : wt.shape[1], : wt.shape[0]] = wt.detach().T
            slabs.append(w)
            if self.bias[i]:
                bias = torch.zeros(k, 1, b, dtype=self.dtype, device=self.device)
                for m, layers in enumerate(weights):
                    bt = layers[i][1]
                    # self.bias is shapes[0].bias; a stack's members share it (MemberShape.key)
                    assert bt is not None
                    bias[m, 0, : bt.shape[0]] = bt.detach()
                slabs.append(bias)
        self.masks: list[torch.Tensor] | None = None
        if masked:
            self.masks = [
                torch.stack(
                    [(torch.arange(h, device=self.device) < s.sizes[i + 1]) for s in shapes]
                )
                .to(self.dtype)
                .unsqueeze(1)
                for i, h in enumerate(self.sizes[1:-1])
            ]
        self.lrs: tuple[float, ...] = (0.0,) * k
        self._load(slabs)

    # -- layout ------------------------------------------------------------------

    def _load(self, slabs: Sequence[torch.Tensor], state: Sequence[Sequence[torch.Tensor]] = ()):
        """Lay ``slabs`` (and optimizer ``state``, same layout) out in fresh flat buffers."""
        self.k = slabs[0].shape[0]
        self.shapes = [tuple(s.shape) for s in slabs]
        self.flat = torch.cat([s.reshape(-1) for s in slabs])
        self.grad = torch.zeros_like(self.flat)
        self.state = [torch.cat([s.reshape(-1) for s in buf]) for buf in state] or [
            torch.zeros_like(self.flat) for _ in range(1 if self.optimizer == "sgd" else 2)
        ]
        self._bind_views()

    def adopt(self, flat: torch.Tensor, grad: torch.Tensor, state: Sequence[torch.Tensor]) -> None:
        """Move the parameters, gradients and moments into these buffers (same layout).

        The population's optimizer hands each stack its piece of one shared buffer
        (:class:`~autosize.population.optimizer.PopulationOptimizer`).
        """
        assert flat.shape == self.flat.shape and len(state) == len(self.state)
        with torch.no_grad():
            flat.copy_(self.flat)
            grad.copy_(self.grad)
            for new, old in zip(state, self.state, strict=True):
                new.copy_(old)
        self.flat, self.grad, self.state = flat, grad, list(state)
        self._bind_views()

    def _bind_views(self) -> None:
        """The slabs, their gradients and every member's rows as views of the flat buffers."""
        self.slabs, self._grads = self._views(self.flat), self._views(self.grad)
        for p, g in zip(self.slabs, self._grads, strict=True):
            p.requires_grad_(True)
            p.grad = g
        e = 0 if self.embed is None else 3  # the embedding's slabs come first
        self._embed, self._embed_grads = self.slabs[:e], self._grads[:e]
        self._weights = self._per_layer(self.slabs[e:])
        self._layer_grads = self._per_layer(self._grads[e:])
        bufs = [self._views(b) for b in (self.flat, self.grad, *self.state)]
        # member r's [params, grads, *moments], each a list of its rows of every slab
        self.row_views = [[[v[r] for v in views] for views in bufs] for r in range(self.k)]

    def _views(self, buf: torch.Tensor) -> list[torch.Tensor]:
        views, at = [], 0
        for shape in self.shapes:
            n = math.prod(shape)
            views.append(buf[at : at + n].view(shape))
            at += n
        return views

    def _per_layer(
        self, views: Sequence[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Slab views as ``(weight, bias or None)`` per layer."""
        out, it = [], iter(views)
        for has_bias in self.bias:
            w = next(it)
            out.append((w, next(it) if has_bias else None))
        return out

    def keep(self, rows: Sequence[int]) -> None:
        """Keep only these members (rows), in this order; the rest stop costing compute."""
        idx = torch.tensor(list(rows), dtype=torch.long, device=self.device)

        def pick(buf: torch.Tensor) -> list[torch.Tensor]:
            return [v.detach().index_select(0, idx) for v in self._views(buf)]

        if self.masks is not None:
            self.masks = [m.index_select(0, idx) for m in self.masks]
        self.lrs = tuple(self.lrs[r] for r in rows)
        self._load(pick(self.flat), [pick(s) for s in self.state])

    def set_lr(self, lrs: Sequence[float]) -> None:
        """One learning rate per member (row)."""
        self.lrs = tuple(float(lr) for lr in lrs)

    def lr_elements(self) -> torch.Tensor:
        """The learning rates spread over every member's elements of every slab (flat path)."""
        rates = torch.tensor(self.lrs, dtype=self.dtype, device=self.device)
        return torch.cat(
            [rates.view(-1, *[1] * (len(s) - 1)).expand(s).reshape(-1) for s in self.shapes]
        )

    def member(self, row: int) -> list[torch.Tensor]:
        """Member ``row``'s row of every slab (views): its embedding's frequencies, weights
        and biases where it has one, then per layer a padded weight ``[in, out]`` and, where
        the layer has one, a padded bias ``[1, out]``."""
        return [s[row].detach() for s in self.slabs]

    # -- compute -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` is ``[K, B, in]`` (or ``[B, in]``, shared by all); the output ``[K, B, out]``."""
        return self._forward(x, None)

    @torch.no_grad()
    def forward_saving(self, x: torch.Tensor) -> tuple[torch.Tensor, Saved]:
        """:meth:`forward` without autograd, keeping what :meth:`backward` needs.

        Only for a stack whose activation has a known backward (``self.act_backward``).
        """
        saved: Saved = ([], [], [], [])
        return self._forward(x, saved), saved

    def _forward(self, x: torch.Tensor, saved: Saved | None) -> torch.Tensor:
        if self._embed:
            h = self._embed_forward(x, None if saved is None else saved[3])
        else:
            h = x if x.dim() == 3 else x.expand(self.k, *x.shape)
        last = len(self._weights) - 1
        for i, (w, b) in enumerate(self._weights):
            if saved is not None:
                saved[0].append(h)  # the layer's input
            h = _affine(h, w, b)
            if i < last:
                if saved is not None:
                    saved[1].append(h)  # pre-activation
                h = self.act(h)
                if saved is not None:
                    saved[2].append(h)  # activation, before the padding mask
                if self.masks is not None:
                    h = h * self.masks[i]
        return h

    def _embed_forward(self, x: torch.Tensor, saved: list[torch.Tensor] | None) -> torch.Tensor:
        """:class:`~autosize.models.net.PeriodicFeatures` per member: the first ``n`` columns
        of ``x`` (``[K, B, cols]`` or ``[B, cols]``) become ``n * d`` values, the rest pass."""
        freq, weight, bias = self._embed
        n, k2, d = weight.shape[1:]
        kk, b = self.k, x.shape[-2]
        num = x[..., :n].transpose(-1, -2).unsqueeze(-1)  # [K or 1, n, B, 1]
        if num.dim() == 3:
            num = num.unsqueeze(0)
        # (2 pi f) x, in fit's order of operations (PeriodicFeatures.forward)
        angle = ((2 * math.pi) * freq).unsqueeze(2) * num  # [K, n, B, k]
        waves = torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1).view(kk * n, b, k2)
        out = torch.relu(
            torch.baddbmm(bias.reshape(kk * n, 1, d), waves, weight.reshape(kk * n, k2, d))
        )  # [K * n, B, d]
        if saved is not None:
            saved.extend((num, waves, out))
        rest = x[..., n:] if x.dim() == 3 else x[:, n:].expand(kk, b, -1)
        return torch.cat([out.view(kk, n, b, d).transpose(1, 2).reshape(kk, b, n * d), rest], -1)

    def _embed_backward(self, g: torch.Tensor, saved: list[torch.Tensor]) -> None:
        """The embedding's gradients from ``g`` ``[K, B, n * d]``, the gradient at its
        output (the first layer's input columns it fills)."""
        num, waves, out = saved
        weight = self._embed[1]
        g_freq, g_weight, g_bias = self._embed_grads
        kk, b = self.k, g.shape[1]
        n, k2, d = weight.shape[1:]
        g = g.reshape(kk, b, n, d).transpose(1, 2).reshape(kk * n, b, d)
        g = _aten.threshold_backward(g, out, 0)
        torch.sum(g, dim=1, keepdim=True, out=g_bias.view(kk * n, 1, d))
        torch.bmm(waves.transpose(1, 2), g, out=g_weight.view(kk * n, k2, d))
        g_waves = torch.bmm(g, weight.reshape(kk * n, k2, d).transpose(1, 2))
        g_waves = g_waves.view(kk, n, b, k2)
        cos, sin = waves.view(kk, n, b, k2).chunk(2, dim=-1)
        g_cos, g_sin = g_waves.chunk(2, dim=-1)
        g_angle = g_sin * cos - g_cos * sin  # d cos = -sin, d sin = cos
        torch.sum(g_angle * num, dim=2, out=g_freq)
        g_freq.mul_(2 * math.pi)

    @torch.no_grad()
    def backward(self, grad_out: torch.Tensor, saved: Saved) -> None:
        """Write every slab's gradient into ``self.grad`` from the output's gradient.

        The same kernels autograd's backward of :meth:`forward` runs (``bmm`` against the
        transposed operand, a sum over the batch for a bias, the activation's own backward)
        without building a graph, and straight into the gradient buffer (no zeroing, no
        accumulation): on the small networks of a tabular search the autograd engine's
        bookkeeping, not the arithmetic, was most of a population step.
        """
        assert self.act_backward is not None
        inputs, pre, post, embedded = saved
        g = grad_out
        for i in range(len(self._weights) - 1, -1, -1):
            w, w_grad, b_grad = self._weights[i][0], *self._layer_grads[i]
            single = w.shape[2] == 1  # a regression head: see _affine
            if single:
                torch.sum(inputs[i] * g, dim=1, keepdim=True, out=w_grad.view(self.k, 1, -1))
            else:
                torch.bmm(inputs[i].transpose(1, 2), g, out=w_grad)
            if b_grad is not None:
                torch.sum(g, dim=1, keepdim=True, out=b_grad)
            if i == 0:
                if embedded:  # the input's gradient, for its embedded columns only (n * d
                    # of them, the embedding's bias size); the rest of the input is data
                    w = w[:, : self._embed[2][0].numel()]
                    self._embed_backward(_input_grad(g, w, single), embedded)
                break
            # (no mask here: a padded unit's gradient is exactly 0 already, through its
            # zero outgoing weights; the forward's mask keeps its weights' gradients 0)
            g = self.act_backward(_input_grad(g, w, single), pre[i - 1], post[i - 1])

    def zero_grad(self) -> None:
        self.grad.zero_()
