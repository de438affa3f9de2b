"""What a warm-started trial does to its parent: suggest an operation, then apply it.

Parameter names are stable and hierarchical, so samplers and the dashboard
see the same search space in every trial::

    parent                     0 = the seed, r = the r-th best warm-started trial (parents = "best")
    n_ops                      how many operations (only when max_ops > 1)
    op0, op1, ...              "widen" | "deepen" | "compress" | "train" (train on, same size)
                               | "regularize" (train on with a new dropout rate)
    op0/widen/layer            position of the layer to widen, in [0, 1) of the depth
    op0/widen/factor           new width = old width * factor (capped at max_width), in
                               [min_widen_factor, max_widen_factor]
    op0/deepen/after           position of the layer after which an identity layer goes
    op0/compress/lam           L1 strength on the gates (log scale)
    op0/compress/decay         lam is divided by this after every epoch
    op0/compress/gate_lr       the gates' learning rate (when [search] gate_lr is set)
    op0/compress/start_factor  widen every layer by this before compressing
    op0/regularize/dropout     the dense layers' new dropout rate, in [search] dropout
    train/lr                   learning rate (when [search] lr is set)

Positions in [0, 1) rather than layer indices keep one distribution per name
while the parent's depth varies. An operation that cannot apply to the parent
(deepen at max_depth, widen at max_width) raises :class:`Infeasible`. Compress trains the network, so it ends a
sequence: operations drawn after it are not suggested.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna

from autosize.models import ArchSpec, DenseLayer, Net
from autosize.search.config import SearchSpace
from autosize.seeds import derive_seed
from autosize.transforms import deepen, set_dropout, widen

__all__ = ["CompressPlan", "Infeasible", "Plan", "plan_and_grow"]


class Infeasible(Exception):
    """The suggested operation cannot apply to this parent (e.g. deepen at max_depth).

    The objective prunes such a trial at once, before training: the sampler learns
    that the region is bad, and no budget is spent re-training the parent unchanged.
    """


@dataclass(frozen=True)
class CompressPlan:
    lam: float
    decay: float
    gate_lr: float | None = None


@dataclass(frozen=True)
class Plan:
    """The operations applied (human-readable) and, if drawn, the compress step still to run."""

    steps: tuple[str, ...]
    compress: CompressPlan | None

    @property
    def kind(self) -> str:
        """The operation names, e.g. ``widen+compress``."""
        return "+".join(s.split("(")[0] for s in self.steps) or "none"

    @property
    def grows(self) -> bool:
        """Whether the network ends larger than its parent (a widen or a deepen)."""
        return any(k in ("widen", "deepen") for k in self.kind.split("+"))

    def describe(self) -> str:
        return " + ".join(self.steps) or "none"


def _position(trial: optuna.Trial, name: str, depth: int) -> int:
    return min(int(trial.suggest_float(name, 0.0, 1.0) * depth), depth - 1)


def _suggest_range(
    trial: optuna.Trial, name: str, bounds: tuple[float, float], *, log: bool
) -> float:
    lo, hi = bounds
    return lo if lo == hi else trial.suggest_float(name, lo, hi, log=log)


def _widen_by(
    model: Net, spec: ArchSpec, layer: int, factor: float, space: SearchSpace, *, seed: int
) -> tuple[Net, ArchSpec, int]:
    """Widen ``layer`` by ``factor`` (rounded up, capped at max_width); unchanged if already there."""
    old = spec.layers[layer].size
    new = min(space.max_width, max(old, math.ceil(old * factor)))
    if new != old:
        model, spec = widen(model, spec, layer=layer, width=new, noise=space.noise, seed=seed)
    return model, spec, new


def plan_and_grow(
    trial: optuna.Trial, model: Net, spec: ArchSpec, space: SearchSpace, *, seed: int
) -> tuple[Net, ArchSpec, Plan]:
    """Suggest this trial's operations and apply the growing ones (widen, deepen) now.

    Returns the grown network and spec, and the plan (with the compress step, if any,
    for the caller to run as the trial's training).
    """
    n_ops = trial.suggest_int("n_ops", 1, space.max_ops) if space.max_ops > 1 else 1
    steps: list[str] = []
    for i in range(n_ops):
        p = f"op{i}"
        kind = trial.suggest_categorical(p, list(space.operations))
        if kind == "widen":
            layer = _position(trial, f"{p}/widen/layer", spec.depth)
            factor = trial.suggest_float(
                f"{p}/widen/factor", space.min_widen_factor, space.max_widen_factor, log=True
            )
            old = spec.layers[layer].size
            model, spec, new = _widen_by(
                model, spec, layer, factor, space, seed=derive_seed(seed, "widen", i)
            )
            if new == old:
                raise Infeasible(f"widen: layer {layer} already has max_width {old} units")
            steps.append(f"widen(L{layer}:{old}->{new})")
        elif kind == "deepen":
            after = _position(trial, f"{p}/deepen/after", spec.depth)
            if spec.depth >= space.max_depth:
                raise Infeasible(f"deepen: the parent's depth {spec.depth} is already max_depth")
            model, spec = deepen(model, spec, after=after, seed=derive_seed(seed, "deepen", i))
            steps.append(f"deepen(after L{after})")
        elif kind == "train":
            steps.append("train on")
        elif kind == "regularize":
            dense = [lay for lay in spec.layers if isinstance(lay, DenseLayer)]
            if not dense:
                raise Infeasible("regularize: the parent has no dense layer")
            old_p = max(lay.dropout for lay in dense)
            rate = _suggest_range(trial, f"{p}/regularize/dropout", space.dropout, log=False)
            model, spec = set_dropout(model, spec, p=rate)
            steps.append(f"regularize(dropout {old_p:.2f}->{rate:.2f})")
        else:
            lam = trial.suggest_float(f"{p}/compress/lam", *space.lam, log=True)
            decay = _suggest_range(trial, f"{p}/compress/decay", space.decay, log=False)
            gate_lr = (
                _suggest_range(trial, f"{p}/compress/gate_lr", space.gate_lr, log=True)
                if space.gate_lr
                else None
            )
            start = _suggest_range(
                trial, f"{p}/compress/start_factor", space.compress_start_factor, log=True
            )
            if start > 1.0:
                for layer in range(spec.depth):
                    model, spec, _ = _widen_by(
                        model,
                        spec,
                        layer,
                        start,
                        space,
                        seed=derive_seed(seed, "start-widen", layer),
                    )
                steps.append(f"widen(all x{start:.2f})")
            extra = "" if gate_lr is None else f", gate_lr={gate_lr:.3g}"
            steps.append(f"compress(lam={lam:.3g}, decay={decay:.3g}{extra})")
            return model, spec, Plan(tuple(steps), CompressPlan(lam, decay, gate_lr))
    return model, spec, Plan(tuple(steps), None)
