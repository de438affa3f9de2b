"""The population training loop: :func:`fit_population`, ``fit`` for K networks at once."""

from __future__ import annotations

import gc
import logging
import math
import numbers
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from autosize.callbacks import Callback, TrainState
from autosize.data.bundle import DataBundle, Task
from autosize.errors import ConfigError
from autosize.evaluation import (
    EVAL_BATCH_SIZE,
    _acc_dtype,
    _at_least_float32,
    _autocast,
    _evaluate_tensors,
    _split_result,
    _task_loss,
    metric_name,
)
from autosize.history import EpochRecord, History, StopCause
from autosize.models.net import Net
from autosize.optim import (
    OptimizerName,
    _check_batch_size,
    _check_optimizer_args,
    _check_positive,
    _is_int,
    make_optimizer,
    resolve_device,
)
from autosize.population.member import (
    Group,
    Layers,
    Member,
    make_group,
    member_shape,
    write_layers,
)
from autosize.population.optimizer import PopulationOptimizer
from autosize.population.stack import MemberShape, plan_stacks
from autosize.train import _CHECK_EVERY_CUDA, _defines_hook, _float32_precision

__all__ = ["fit_population"]

logger = logging.getLogger(__name__)

# What one more stack costs per step, in parameter x example units (a stack's fixed
# per-step work, measured on this project's CPU, against its per-weight arithmetic):
# plan_stacks splits members into several stacks only where padding would cost more.
_STACK_OVERHEAD = {"cpu": 1.0e6, "cuda": 1.0e9}
# At most this many bytes of training examples are gathered ahead for the stacks
# (_Loop._gather): a few batches' index_select in one call, not one call per batch.
_GATHER_BYTES = 1 << 25


def plan_for(shapes: Sequence[MemberShape], dev: torch.device, batch_size: int) -> list[list[int]]:
    """``fit_population``'s grouping of members into stacks on ``dev``: :func:`plan_stacks`
    with the device's per-stack overhead, in parameter-equivalents per example."""
    overhead = _STACK_OVERHEAD.get(dev.type, _STACK_OVERHEAD["cuda"]) / batch_size
    return plan_stacks(shapes, overhead)


def _per_member(name: str, value: object, k: int) -> list[object]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != k:
            raise ConfigError(f"{name}: got {len(value)} values for {k} models")
        return list(value)
    return [value] * k


def fit_population(
    models: Sequence[nn.Module],
    bundle: DataBundle,
    *,
    epochs: int | None = None,
    max_seconds: float | None = None,
    optimizer: OptimizerName = "adam",
    lr: float | Sequence[float] = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 128,
    device: str | torch.device = "auto",
    callbacks: Sequence[Sequence[Callback]] = (),
    seed: int | Sequence[int] = 0,
    amp: bool = False,
    allow_tf32: bool = False,
    restore_best: bool = False,
) -> list[History]:
    """Train ``models`` together on ``bundle``, each as :func:`autosize.train.fit` would alone.

    Member ``k`` with ``seed[k]`` and ``lr[k]`` (``seed`` and ``lr``: one value for all, or
    one per model) sees the batches ``fit(..., seed=seed[k])`` sees, in the same order,
    and gets the same update, so its History and final weights match ``fit``'s up to float
    rounding. Members sharing a seed share each batch. The models are trained in place,
    moved to the device and left in eval mode; one History per model is returned, in order.

    Per member, as in ``fit``: a non-finite loss ends that member only
    (``stopped == "diverged"``), ``restore_best`` loads its best epoch back, and
    ``callbacks[k]`` (one sequence per model, or none) get ``on_train_begin``,
    ``on_epoch_begin``, ``on_epoch_end`` (True stops that member, e.g. pruned; a
    stopped member costs no more compute) and ``on_train_end``. The budget
    (``epochs``, ``max_seconds``) is the population's.

    Differences from ``fit``: each member's ``TrainState.optimizer`` only carries its
    learning rate (a callback may set ``param_groups[0]["lr"]``, read at every epoch's
    start; it is never stepped), ``state.model`` gets the trained weights when that
    member stops, not during training, and callbacks may not reshape the model, replace
    the optimizer or add a ``penalty``. Networks with conv layers, batchnorm, dropout or
    compress gates are refused (train those with ``fit``), as are other modules than
    :func:`~autosize.models.build_model`'s. The layout is in :mod:`autosize.population.stack`.
    """
    if epochs is None and max_seconds is None:
        raise ConfigError("fit_population needs a budget: pass epochs=..., max_seconds=... or both")
    if epochs is not None and (not _is_int(epochs) or epochs < 1):
        raise ConfigError(f"epochs must be a positive integer, got {epochs!r}")
    if max_seconds is not None:
        max_seconds = _check_positive("max_seconds", max_seconds)
    k = len(models)
    if k == 0:
        raise ConfigError("fit_population needs at least one model")
    lr_values, seed_values = _per_member("lr", lr, k), _per_member("seed", seed, k)
    lrs: list[float] = []
    for rate in lr_values:
        _check_optimizer_args(optimizer, rate, weight_decay)
        assert isinstance(rate, numbers.Real)  # _check_optimizer_args refuses anything else
        lrs.append(float(rate))
    if not all(_is_int(s) for s in seed_values):
        raise ConfigError(f"seed must be an integer or one per model, got {seed!r}")
    seeds = [int(s) for s in seed_values if isinstance(s, numbers.Integral)]  # all are (_is_int)
    batch_size = _check_batch_size(batch_size)
    if len({id(m) for m in models}) != k:
        raise ConfigError("fit_population: the same model object appears more than once")
    if any(isinstance(c, Callback) for c in callbacks):
        raise ConfigError("callbacks: one sequence of Callback instances per model, e.g. [[cb]]")
    per_member = [list(c) for c in callbacks] if callbacks else [[] for _ in models]
    if len(per_member) != k:
        raise ConfigError(f"callbacks: got {len(per_member)} sequences for {k} models")
    for cbs in per_member:
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks[k] must hold Callback instances, got {cb!r}")
            if _defines_hook(cb, "penalty"):
                raise ConfigError(f"{type(cb).__name__} adds a penalty; train with fit instead")
    if bundle.task not in ("classification", "regression"):
        raise ConfigError(f"unknown task {bundle.task!r} in dataset {bundle.name!r}")
    if bundle.train[0].shape[0] < 2 or bundle.val[0].shape[0] == 0:
        raise ConfigError(f"dataset {bundle.name!r} needs 2 training and 1 validation examples")
    shapes = [member_shape(i, m, bundle) for i, m in enumerate(models)]

    dev = resolve_device(device)
    members = []
    for i, model in enumerate(models):
        assert isinstance(model, Net)  # member_shape refuses anything else
        model.to(dev)
        history = History(task=bundle.task, metric=metric_name(bundle.task), device=str(dev))
        state = TrainState(
            model=model,
            optimizer=make_optimizer(
                optimizer,
                model.parameters(),
                lr=lrs[i],
                weight_decay=float(weight_decay),
            ),
            bundle=bundle,
            device=dev,
            history=history,
            epoch=0,
            batch_size=batch_size,
            lr=lrs[i],
            weight_decay=float(weight_decay),
            optimizer_name=optimizer,
            seed=seeds[i],
        )
        members.append(Member(i, model, shapes[i], state.seed, state, per_member[i]))
    groups = [
        make_group([members[i] for i in rows], optimizer)
        for rows in plan_for(shapes, dev, batch_size)
    ]
    loop = _Loop(
        bundle, dev, batch_size, amp, restore_best, epochs, max_seconds,
        optimizer, float(weight_decay),
    )  # fmt: skip
    with _float32_precision(dev, allow_tf32), _gc_paused() as loop.collect_per_epoch:
        loop.run(groups, members)
    done = [m.state.history for m in members]
    logger.info(
        "fit_population %s: %d models in %d stacks; %s",
        bundle.name,
        k,
        len(groups),
        ", ".join(f"{h.stopped} after {len(h)}" for h in done),
    )
    return done


@contextmanager
def _gc_paused() -> Iterator[bool]:
    """Python's automatic garbage collection off while the population trains.

    A step makes ~100 short-lived tensors (Python objects the collector tracks), so the
    collector ran every few steps and now and then walked every object of the process
    (~240,000 with torch imported): 12% of a K = 16 Add10 population's time (measured
    with the collector on and off; ``fit``'s time did not change). The loop collects the
    young generations itself at each epoch's end (True: it should), and the collector
    is on again when training ends, however it ends.
    """
    if not gc.isenabled():
        yield False  # the caller turned it off: leave it so
        return
    gc.disable()
    try:
        yield True
    finally:
        gc.enable()


def _member_losses(out: torch.Tensor, y: torch.Tensor, task: Task) -> torch.Tensor:
    """``fit``'s loss of each member's examples: ``[K, B]`` from outputs ``[K, B, out]``."""
    k, b = y.shape
    return _task_loss(
        out.reshape(k * b, out.shape[-1]), y.reshape(-1), task, reduction="none"
    ).view(k, b)


def _member_losses_and_grad(
    out: torch.Tensor, y: torch.Tensor, task: Task
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's mean loss ``[K]`` and its gradient with respect to ``out`` ``[K, B, out]``.

    By hand, as autograd's backward of ``fit``'s loss computes it (``fit``'s mean over its
    batch): MSE's ``(out - y) * 2 / B`` (half precision in float32, as ``_task_loss``), and
    cross-entropy's log-softmax backward of ``-1 / B`` at each target.
    """
    b = y.shape[1]
    if task == "classification":
        logp = torch.log_softmax(out, dim=-1)
        target = y.unsqueeze(-1)
        grad_logp = torch.zeros_like(logp).scatter_(-1, target, -1.0 / b)
        grad = torch.ops.aten._log_softmax_backward_data(grad_logp, logp, -1, logp.dtype)
        return -logp.gather(-1, target).squeeze(-1).mean(1), grad
    diff = _at_least_float32(out).squeeze(-1) - y
    return (diff * diff).mean(1), (diff * (2.0 / b)).to(out.dtype).unsqueeze(-1)


@dataclass(eq=False)
class _Loop:
    """One run of the population; ``fit_population`` has checked the arguments."""

    bundle: DataBundle
    dev: torch.device
    batch_size: int
    amp: bool
    restore_best: bool
    epochs: int | None
    max_seconds: float | None
    optimizer: OptimizerName
    weight_decay: float
    opt: PopulationOptimizer | None = field(init=False, default=None)
    rebind: bool = field(init=False, default=False)  # the stacks changed: _bind before a step
    collect_per_epoch: bool = field(init=False, default=False)  # see _gc_paused

    def _bind(self) -> None:
        """One optimizer over every live stack (again whenever the stacks changed).

        All members have the features' dtype (member_shape), so one buffer holds them all.
        """
        stacks = [g.stack for g in self.groups]
        if self.opt is None:
            self.opt = PopulationOptimizer(
                stacks, optimizer=self.optimizer, weight_decay=self.weight_decay
            )
        else:
            self.opt.bind(stacks)
        self.rebind = False

    def run(self, groups: list[Group], members: list[Member]) -> None:
        dev, task, bs = self.dev, self.bundle.task, self.batch_size
        x, y = (t.to(dev) for t in self.bundle.train)
        self.vx, self.vy = (t.to(dev) for t in self.bundle.val)
        n = x.shape[0]
        gens = {s: torch.Generator().manual_seed(s) for s in sorted({m.seed for m in members})}
        self.autocast = _autocast(dev, self.amp)
        check_every = 1 if dev.type == "cpu" else _CHECK_EVERY_CUDA
        # Stacks run their own backward pass (Stack.backward), unless autocast is on (whose
        # casts only autograd's backward mirrors) or an activation has no known backward.
        manual = not (self.amp and dev.type == "cuda") and all(
            g.stack.act_backward is not None for g in groups
        )
        self.groups = groups
        self._bind()
        opt = self.opt  # the same object for the whole run (_bind re-lays it out)
        assert opt is not None
        self.t_start = time.perf_counter()
        deadline = math.inf if self.max_seconds is None else self.t_start + self.max_seconds
        for m in members:
            for cb in m.callbacks:
                cb.on_train_begin(m.state)

        epoch = 0
        while self.groups:
            live = [m for g in self.groups for m in g.members]
            for m in live:
                m.state.epoch = epoch
                for cb in m.callbacks:
                    cb.on_epoch_begin(m.state)
            seeds = sorted({m.seed for m in live})
            shared = len(seeds) == 1
            lrs_changed = False
            for g in self.groups:
                if (lrs := tuple(m.lr for m in g.members)) != g.stack.lrs:
                    g.stack.set_lr(lrs)
                    lrs_changed = True
                # Each member's row of the epoch's permutations (None: one seed for all). Kept
                # even where it is 0, 1, 2, ...: Group.keep trims it when a member leaves.
                rows = [seeds.index(m.seed) for m in g.members]
                g.rows = None if shared else torch.tensor(rows, device=dev)
                g.loss_sum.zero_()
            if lrs_changed:
                opt.lrs_changed()
            self.t_epoch = time.perf_counter()
            perm = torch.stack([torch.randperm(n, generator=gens[s]) for s in seeds])
            perm = perm.to(dev, non_blocking=True)
            self.seen = 0
            cut_by_time = False
            # Inputs are gathered for `ahead` batches at a time, one index_select per stack
            # (or one for all when every member shares the seed), not one per batch.
            row_bytes = (math.prod(x.shape[1:]) * x.element_size() + y.element_size()) * bs
            rows_at_once = 1 if shared else sum(g.stack.k for g in self.groups)
            ahead = max(1, _GATHER_BYTES // (row_bytes * rows_at_once))
            shared_block: tuple[torch.Tensor, torch.Tensor] | None = None
            block_start = 0
            for batches, start in enumerate(range(0, n, bs), start=1):
                end = min(start + bs, n)
                if end - start == 1 and bs > 1:  # batch_size = 1 trains on every example
                    break  # a single-example tail, as in fit
                if (batches - 1) % ahead == 0:
                    block_start = start
                    block = perm[:, start : min(start + ahead * bs, n)]
                    shared_block = self._gather(x, y, block, shared)
                at = slice(start - block_start, end - block_start)
                losses = []
                if manual:  # each stack's own backward pass, no autograd graph
                    with torch.no_grad():
                        for g in self.groups:
                            xg, yg = self._batch(g, at, shared_block)
                            out, kept = g.stack.forward_saving(xg)
                            loss, grad = _member_losses_and_grad(g.head(out), yg, task)
                            if g.scale is not None:
                                grad = grad * g.scale
                            g.stack.backward(grad, kept)
                            losses.append(loss)
                else:
                    with self.autocast:
                        for g in self.groups:
                            xg, yg = self._batch(g, at, shared_block)
                            losses.append(_member_losses(g.forward(xg), yg, task).mean(1))
                    opt.zero_grad()
                    torch.stack([loss.sum() for loss in losses]).sum().backward()
                opt.step()
                for g, loss in zip(self.groups, losses, strict=True):
                    g.loss_sum.add_(loss.detach(), alpha=end - start)
                self.seen += end - start
                if batches % check_every == 0:
                    probe = losses if check_every == 1 else [g.loss_sum for g in self.groups]
                    if not torch.isfinite(torch.cat(probe)).all().item():
                        self._diverged_in_epoch(probe, epoch)
                        if not self.groups:
                            return
                        if self.rebind:
                            self._bind()
                if time.perf_counter() >= deadline:
                    cut_by_time = True
                    break
            for g in self.groups:
                g.block = None  # the epoch's gathered examples are not kept
            self._end_epoch(epoch)
            if self.collect_per_epoch:
                gc.collect(1)  # young objects only: cheap, and cycles do not pile up
            if self.rebind and self.groups:
                self._bind()
            epoch += 1
            cause: StopCause | None = None
            reason = ""
            if cut_by_time:
                cause, reason = (
                    "time",
                    f"max_seconds={self.max_seconds} ran out during epoch {epoch}",
                )
            elif self.epochs is not None and epoch >= self.epochs:
                cause, reason = "epochs", f"ran all {self.epochs} epochs"
            elif time.perf_counter() >= deadline:
                cause, reason = (
                    "time",
                    f"max_seconds={self.max_seconds} ran out after epoch {epoch}",
                )
            if cause is not None:
                for g in self.groups:
                    for row, m in enumerate(g.members):
                        self._finish(m, g.stack.member(row), cause, reason)
                self.groups = []

    def _gather(
        self, x: torch.Tensor, y: torch.Tensor, block: torch.Tensor, shared: bool
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The examples of a run of batches (``block``: ``[seeds, n]`` indices into x).

        Shared (every member has the same seed): one gather for everyone, returned.
        Otherwise one gather per stack, ``[K, n, ...]``, each member its own rows, kept
        in ``group.block`` (which ``Group.keep`` trims with its members).
        """
        if shared:
            return x.index_select(0, block[0]), y.index_select(0, block[0])
        for g in self.groups:
            assert g.rows is not None  # set for every epoch that is not shared
            picks = block.index_select(0, g.rows).reshape(-1)
            g.block = (
                x.index_select(0, picks).view(g.stack.k, -1, *x.shape[1:]),
                y.index_select(0, picks).view(g.stack.k, -1),
            )
        return None

    @staticmethod
    def _batch(
        g: Group, at: slice, shared: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack ``g``'s inputs and targets for this step: ``[B, ...]`` shared, or ``[K, B, ...]``."""
        if shared is not None:
            return shared[0][at], shared[1][at].expand(g.stack.k, -1)
        assert g.block is not None  # _gather filled it for this run of batches
        return g.block[0][:, at], g.block[1][:, at]

    # -- one epoch's end -----------------------------------------------------------------

    def _record(self, m: Member, train_loss: float, val: dict[str, float]) -> EpochRecord:
        t_now = time.perf_counter()
        history = m.state.history
        record = EpochRecord(
            epoch=m.state.epoch + 1,
            train_loss=train_loss,
            val_loss=val["loss"],
            val_metric=val[history.metric],
            seconds=t_now - self.t_epoch,
            elapsed=t_now - self.t_start,
            lr=m.lr,
            examples_per_second=self.seen / max(self.t_trained - self.t_epoch, 1e-9),
            train_examples=self.seen,
        )
        history.epochs.append(record)
        return record

    def _end_epoch(self, epoch: int) -> None:
        self.t_trained = time.perf_counter()
        train = [[s / max(self.seen, 1) for s in g.loss_sum.tolist()] for g in self.groups]
        vals = self._validate()
        for g, losses, group_vals in zip(list(self.groups), train, vals, strict=True):
            stay = []
            for row, (m, train_loss, val) in enumerate(
                zip(g.members, losses, group_vals, strict=True)
            ):
                record = self._record(m, train_loss, val)
                history, state = m.state.history, m.state
                if not (math.isfinite(train_loss) and math.isfinite(val["loss"])):
                    reason = (
                        f"non-finite loss in epoch {epoch + 1} (train loss {train_loss}, "
                        f"penalty 0.0, val loss {val['loss']}); lr={state.lr} may be too high"
                    )
                    self._finish(m, g.stack.member(row), "diverged", reason)
                    continue
                if history.is_better(record.val_metric, m.best_metric):
                    m.best_metric, m.best_epoch = record.val_metric, record.epoch
                    if self.restore_best:
                        m.best = [t.clone() for t in g.stack.member(row)]
                state.stop_reason = ""
                votes = [cb.on_epoch_end(state, record) for cb in m.callbacks]
                if any(v is True for v in votes):
                    asked = next(cb for cb, v in zip(m.callbacks, votes, strict=True) if v is True)
                    reason = (
                        state.stop_reason
                        or f"{type(asked).__name__} asked to stop after epoch {epoch + 1}"
                    )
                    self._finish(m, g.stack.member(row), "callback", reason)
                    continue
                stay.append(row)
            self._keep(g, stay)

    def _keep(self, g: Group, rows: list[int]) -> None:
        """Only these members of ``g`` train on (none: the stack goes); rebind after."""
        if not rows:
            self.groups.remove(g)
            self.rebind = True
        elif len(rows) < len(g.members):
            g.keep(rows)
            self.rebind = True

    def _validate(self) -> list[list[dict[str, float]]]:
        """Every live member's validation loss and metric, one batched pass per stack."""
        vx, vy, task = self.vx, self.vy, self.bundle.task
        n = vx.shape[0]
        out: list[list[dict[str, float]]] = []
        with torch.inference_mode():
            for g in self.groups:
                k = g.stack.k
                chunk = max(1, min(EVAL_BATCH_SIZE, 2**24 // (k * max(g.stack.sizes))))
                loss_sum = torch.zeros(k, dtype=_acc_dtype(vx.device), device=vx.device)
                correct = torch.zeros(k, dtype=torch.int64, device=vx.device)
                for start in range(0, n, chunk):
                    xb, yb = vx[start : start + chunk], vy[start : start + chunk]
                    with self.autocast:
                        pred = g.forward(xb)
                    loss_sum += _member_losses(pred, yb.expand(k, -1), task).sum(1)
                    if task == "classification":
                        correct += (pred.argmax(dim=-1) == yb).sum(1)
                sums = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
                out.append([_split_result(t, h, n, task) for t, h in zip(*sums, strict=True)])
        return out

    def _diverged_in_epoch(self, probe: list[torch.Tensor], epoch: int) -> None:
        """End the members whose loss is no longer finite, now, as fit would end them."""
        self.t_trained = time.perf_counter()
        for g, values in zip(list(self.groups), probe, strict=True):
            bad = (~torch.isfinite(values)).tolist()
            if not any(bad):
                continue
            sums = g.loss_sum.tolist()
            for row, m in enumerate(g.members):
                if not bad[row]:
                    continue
                layers = g.stack.member(row)
                write_layers(m.model, layers)
                val = _evaluate_tensors(
                    m.model, self.vx, self.vy, self.bundle.task,
                    batch_size=EVAL_BATCH_SIZE, autocast=self.autocast,
                )  # fmt: skip
                train_loss = sums[row] / max(self.seen, 1)
                self._record(m, train_loss, val)
                reason = (
                    f"non-finite loss in epoch {epoch + 1} (train loss {train_loss}, "
                    f"penalty 0.0, val loss {val['loss']}); lr={m.state.lr} may be too high"
                )
                self._finish(m, layers, "diverged", reason)
            self._keep(g, [r for r, b in enumerate(bad) if not b])

    def _finish(self, m: Member, layers: Layers, cause: StopCause, reason: str) -> None:
        """A member stops: its weights go back into its model, then restore_best, on_train_end."""
        history = m.state.history
        history.stopped, history.stop_reason = cause, reason
        write_layers(m.model, layers)
        if self.restore_best and m.best is not None:
            write_layers(m.model, m.best)
            history.restored_epoch = m.best_epoch
        m.model.eval()
        for cb in m.callbacks:
            cb.on_train_end(m.state)
