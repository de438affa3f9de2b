"""Net2Net: grow a trained network without changing what it computes.

Chen, Goodfellow & Shlens, "Net2Net: Accelerating Learning via Knowledge
Transfer" (ICLR 2016). Both transforms take a network built by
:func:`autosize.models.build_model` and its :class:`ArchSpec`, and return a
new network and a new spec; the teacher is deep-copied and never modified.

:func:`widen` (Net2WiderNet) gives hidden layer ``layer`` more units. Each new
unit is a copy of a randomly chosen existing unit (incoming weights, bias and
BatchNorm parameters and running statistics), and the next layer's incoming
columns of every replica, the original included, are divided by the number
of copies, so the widened network computes exactly the same function::

    h' = [h, h[g(n)], ..., h[g(width-1)]]      g: new unit -> unit it copies
    W2'[:, j] = W2[:, g(j)] / count(g(j))

Under a conv layer feeding a dense layer (or the head) through the flatten,
channel ``c`` owns ``spec.flatten_size`` consecutive columns and all of them
are copied and divided together.

:func:`deepen` (Net2DeeperNet) inserts an identity layer after hidden layer
``after``: an identity matrix for a dense layer, a centred-delta kernel for a
conv layer, and a BatchNorm that is the identity in eval mode. This preserves
the function only when ``phi(phi(x)) == phi(x)``
(:data:`autosize.models.IDEMPOTENT_ACTIVATIONS`).

``init="random"`` gives the baselines the paper compares against: random
padding for :func:`widen` (new incoming *and* outgoing weights drawn like
PyTorch's default init, originals kept) and a default-initialised new layer
for :func:`deepen`. Neither preserves the function.
"""

from __future__ import annotations

import copy
import logging
import math

import torch
from torch import nn

from autosize.errors import SpecError
from autosize.models import (
    IDEMPOTENT_ACTIVATIONS,
    ArchSpec,
    ConvBlock,
    ConvLayer,
    DenseBlock,
    DenseLayer,
    Net,
)
from autosize.transforms.gates import Gate
from autosize.transforms.surgery import (
    Core,
    Init,
    check_index,
    check_init,
    check_model,
    detached,
    is_int,
    rebuilt,
    set_core,
    take,
    uniform,
)

__all__ = ["Init", "deepen", "widen"]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- widen


def widen(
    model: Net,
    spec: ArchSpec,
    *,
    layer: int,
    width: int,
    noise: float = 0.0,
    init: Init = "net2net",
    seed: int = 0,
) -> tuple[Net, ArchSpec]:
    """Net2WiderNet: hidden layer ``layer`` (0-based) gets ``width`` units.

    ``width`` equal to the current width returns a copy; a smaller one is an
    error. ``noise`` (relative, e.g. ``0.05`` as in the paper's Keras example)
    adds Gaussian noise of ``noise * std`` to the replicas' outgoing weights to
    break the symmetry between a unit and its copies; without it (the
    default) the transform is exact, and copies trained without dropout stay
    identical. ``seed`` fixes which units are copied and the noise (a private
    ``torch.Generator``: the global RNG is not touched).
    """
    check_model(model, spec)
    check_index(layer, spec.depth, "layer")
    check_init(init)
    if not (isinstance(noise, int | float) and not isinstance(noise, bool)) or not (
        math.isfinite(noise) and noise >= 0
    ):
        raise SpecError(f"noise: must be a non-negative number, got {noise!r}")
    old_layer = spec.layers[layer]
    n = old_layer.size
    if not is_int(width) or width < n:
        raise SpecError(
            f"width: must be an integer >= {n} (the width of layers[{layer}]), got {width!r}"
        )
    student = copy.deepcopy(model)
    if width == n:
        return student, spec
    block = student.blocks[layer]
    if not isinstance(block.gate, nn.Identity):
        raise SpecError(
            f"layer: layers[{layer}] carries a {type(block.gate).__name__} gate; "
            "fold it (compress.fold_gates) before widening"
        )

    gen = torch.Generator().manual_seed(seed)
    is_last = layer + 1 == spec.depth
    consumer: Core = student.head if is_last else student.blocks[layer + 1].core
    # Columns per unit in the consumer's weight: S after a flatten, else 1 (conv: its kernel).
    per_unit = spec.flatten_size(layer + 1) if isinstance(consumer, nn.Linear) else 1
    core = block.core
    device = core.weight.device
    extra = width - n

    if init == "net2net":
        mapping = torch.cat([torch.arange(n), torch.randint(n, (extra,), generator=gen)])
        counts = torch.bincount(mapping, minlength=n)
        idx = mapping.to(device)
        new_core = rebuilt(core, weight=core.weight.detach()[idx], bias=take(core.bias, idx))
        block.norm = _widened_norm(block.norm, idx)
        cols = _unit_columns(consumer.weight, n, per_unit)[:, idx]
        cols = cols / counts[mapping].to(device=device, dtype=cols.dtype).view(
            1, width, *([1] * (cols.dim() - 2))
        )
        if noise > 0:
            cols = _add_noise(cols, n, noise, gen)
    else:
        fan_in = core.weight[0].numel()
        new_rows = uniform((extra, *core.weight.shape[1:]), fan_in, gen, core.weight)
        new_bias = None
        if core.bias is not None:
            new_bias = torch.cat([core.bias.detach(), uniform((extra,), fan_in, gen, core.bias)])
        new_core = rebuilt(core, weight=torch.cat([core.weight.detach(), new_rows]), bias=new_bias)
        block.norm = _padded_norm(block.norm, extra)
        old_cols = _unit_columns(consumer.weight, n, per_unit)
        fan_in_after = consumer.weight[0].numel() // n * width
        new_cols = uniform(
            (old_cols.shape[0], extra, *old_cols.shape[2:]), fan_in_after, gen, old_cols
        )
        cols = torch.cat([old_cols, new_cols], dim=1)

    set_core(block, new_core)
    weight = cols.flatten(1, 2) if isinstance(consumer, nn.Linear) else cols
    new_consumer = rebuilt(consumer, weight=weight, bias=detached(consumer.bias))
    if is_last:
        assert isinstance(new_consumer, nn.Linear)  # rebuilt from the head, a Linear
        student.head = new_consumer
    else:
        set_core(student.blocks[layer + 1], new_consumer)
    log.debug("widen: layers[%d] %d -> %d units (%s)", layer, n, width, init)
    return student, spec.with_layer(layer, old_layer.resized(width))


def _unit_columns(weight: torch.Tensor, n: int, per_unit: int) -> torch.Tensor:
    """The consumer's weight with the producer's units on dim 1.

    Linear ``(out, n*S)`` becomes ``(out, n, S)``; a conv's ``(out, n, kh, kw)`` already is.
    """
    w = weight.detach()
    return w.unflatten(1, (n, per_unit)) if w.dim() == 2 else w


def _add_noise(cols: torch.Tensor, n: int, scale: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian noise on the replicas' columns (dim 1 from ``n`` on), ``scale`` times their std."""
    replicas = cols[:, n:]
    spread = replicas.std(correction=0) if replicas.numel() > 1 else cols.std(correction=0)
    noise = torch.randn(replicas.shape, generator=gen, dtype=torch.float64)
    noise = noise.to(device=cols.device, dtype=cols.dtype) * (scale * spread)
    return torch.cat([cols[:, :n], replicas + noise], dim=1)


def _widened_norm(norm: nn.Module, idx: torch.Tensor) -> nn.Module:
    """A BatchNorm whose unit ``j`` is a copy of unit ``idx[j]`` (parameters and running stats)."""
    if not isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
        return norm
    new = _empty_like_norm(norm, len(idx))
    for name, p in norm.named_parameters(recurse=False):
        setattr(new, name, nn.Parameter(p.detach()[idx].clone(), requires_grad=p.requires_grad))
    for name, b in norm.named_buffers(recurse=False):
        setattr(new, name, b.clone() if b.dim() == 0 else b[idx].clone())
    return new


def _padded_norm(norm: nn.Module, extra: int) -> nn.Module:
    """A BatchNorm with ``extra`` freshly initialised units (weight 1, bias 0, mean 0, var 1)."""
    if not isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
        return norm
    new = _empty_like_norm(norm, norm.num_features + extra)
    fresh = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    for name, p in norm.named_parameters(recurse=False):
        pad = torch.full((extra,), fresh[name], device=p.device, dtype=p.dtype)
        setattr(
            new,
            name,
            nn.Parameter(torch.cat([p.detach(), pad]), requires_grad=p.requires_grad),
        )
    for name, b in norm.named_buffers(recurse=False):
        if b.dim() == 0:
            setattr(new, name, b.clone())
        else:
            setattr(
                new,
                name,
                torch.cat([b, torch.full((extra,), fresh[name], device=b.device, dtype=b.dtype)]),
            )
    return new


def _empty_like_norm(norm: nn.BatchNorm1d | nn.BatchNorm2d, features: int) -> nn.Module:
    new = type(norm)(
        features,
        eps=norm.eps,
        momentum=norm.momentum,
        affine=norm.affine,
        track_running_stats=norm.track_running_stats,
        device="meta",
    )
    new.train(norm.training)
    return new


# --------------------------------------------------------------------------- deepen


def deepen(
    model: Net,
    spec: ArchSpec,
    *,
    after: int,
    init: Init = "net2net",
    kernel: int = 3,
    batchnorm: bool | None = None,
    seed: int = 0,
) -> tuple[Net, ArchSpec]:
    """Net2DeeperNet: insert an identity layer right after hidden layer ``after``.

    ``after`` is 0-based, ``0 .. depth-1``; the new layer becomes
    ``layers[after + 1]`` and has as many units as ``layers[after]``. After a
    dense layer it is a dense layer; after a conv layer (also the last one) it
    is a conv with an odd ``kernel``, stride 1, same padding and no pooling
    (it follows the pooling of ``layers[after]``). ``batchnorm`` defaults to
    that of ``layers[after]``; the BatchNorm is the identity in eval mode
    (mean 0, var 1, weight ``sqrt(1 + eps)``, bias 0). The new layer keeps
    ``layers[after]``'s bias setting and has no dropout. There is no
    "before the first layer": the raw input is not an activation output, so an
    identity layer there would not preserve the function.

    With ``init="net2net"`` the activation must satisfy ``phi(phi(x)) == phi(x)``;
    ``init="random"`` (the baseline) initialises the layer like PyTorch's default,
    seeded by ``seed``, and works with any activation.
    """
    check_model(model, spec)
    if spec.depth == 0:
        raise SpecError("layers: a network without hidden layers has nothing to deepen after")
    check_index(after, spec.depth, "after")
    check_init(init)
    if init == "net2net" and spec.activation not in IDEMPOTENT_ACTIVATIONS:
        raise SpecError(
            f"activation: net2net deepen needs phi(phi(x)) == phi(x) "
            f"({', '.join(sorted(IDEMPOTENT_ACTIVATIONS))}); {spec.activation!r} is not"
        )
    if batchnorm is not None and not isinstance(batchnorm, bool):
        raise SpecError(f"batchnorm: must be true, false or None, got {batchnorm!r}")
    gate = model.blocks[after].gate
    # The identity layer passes phi(x) on: exact while what it gets stays in phi's range. A
    # compress gate scales phi(x) by g = relu(f) >= 0, which relu's and identity's range
    # keeps (phi(g * phi(x)) == g * phi(x)); relu6's and hardtanh's it does not (g > 1), and
    # another module there is anyone's guess.
    exact = isinstance(gate, nn.Identity) or (
        isinstance(gate, Gate) and spec.activation in ("relu", "identity")
    )
    if init == "net2net" and not exact:
        raise SpecError(
            f"after: layers[{after}] carries a {type(gate).__name__} gate; "
            "fold it (compress.fold_gates) before deepening"
        )
    prev = spec.layers[after]
    bn = prev.batchnorm if batchnorm is None else batchnorm
    new_layer: ConvLayer | DenseLayer
    if isinstance(prev, ConvLayer):
        if not is_int(kernel) or kernel < 1 or kernel % 2 == 0:
            raise SpecError(f"kernel: must be a positive odd integer, got {kernel!r}")
        new_layer = ConvLayer(channels=prev.channels, kernel=kernel, batchnorm=bn, bias=prev.bias)
    else:
        new_layer = DenseLayer(width=prev.width, batchnorm=bn, bias=prev.bias)
    new_spec = spec.inserted(after + 1, new_layer)

    student = copy.deepcopy(model)
    like = student.blocks[after].core.weight
    device, dtype = like.device, like.dtype
    n = prev.size
    with torch.device("meta"):
        block: ConvBlock | DenseBlock = (
            ConvBlock(n, new_layer, spec.activation)
            if isinstance(new_layer, ConvLayer)
            else DenseBlock(n, new_layer, spec.activation)
        )
    core = block.core
    if init == "net2net":
        weight = torch.zeros(core.weight.shape, device=device, dtype=dtype)
        centre: tuple[slice | int, ...] = (
            slice(None),
            slice(None),
            *(k // 2 for k in core.weight.shape[2:]),
        )
        weight[centre] = torch.eye(n, device=device, dtype=dtype)
        bias = torch.zeros(n, device=device, dtype=dtype) if new_layer.bias else None
    else:
        gen = torch.Generator().manual_seed(seed)
        fan_in = core.weight[0].numel()
        weight = uniform(tuple(core.weight.shape), fan_in, gen, like)
        bias = uniform((n,), fan_in, gen, like) if new_layer.bias else None
    set_core(block, rebuilt(core, weight=weight, bias=bias))
    if isinstance(block.norm, nn.BatchNorm1d | nn.BatchNorm2d):
        norm = block.norm
        gain = math.sqrt(1.0 + norm.eps) if init == "net2net" else 1.0
        norm.weight = nn.Parameter(torch.full((n,), gain, device=device, dtype=dtype))
        norm.bias = nn.Parameter(torch.zeros(n, device=device, dtype=dtype))
        norm.running_mean = torch.zeros(n, device=device, dtype=dtype)
        norm.running_var = torch.ones(n, device=device, dtype=dtype)
        norm.num_batches_tracked = torch.zeros((), device=device, dtype=torch.long)
    block.train(student.blocks[after].training)
    student.blocks.insert(after + 1, block)
    log.debug("deepen: new %s after layers[%d] (%s)", new_layer.tag(), after, init)
    return student, new_spec
