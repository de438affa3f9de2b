"""The population training loop: the epochs of :func:`~autosize.population.fit_population`,
``fit`` for K networks at once."""

from __future__ import annotations

import gc
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from autosize.data.bundle import DataBundle
from autosize.evaluation import (
    EVAL_BATCH_SIZE,
    _acc_dtype,
    _autocast,
    _evaluate_tensors,
    _split_result,
)
from autosize.history import EpochRecord, StopCause
from autosize.optim import (
    OptimizerName,
)
from autosize.population.losses import member_losses, member_losses_and_grad
from autosize.population.member import (
    Group,
    Layers,
    Member,
    write_layers,
)
from autosize.population.optimizer import PopulationOptimizer
from autosize.train import _CHECK_EVERY_CUDA

__all__ = ["Loop", "gc_paused"]

logger = logging.getLogger(__name__)

# At most this many bytes of training examples are gathered ahead for the stacks
# (Loop._gather): a few batches' index_select in one call, not one call per batch.
_GATHER_BYTES = 1 << 25


@contextmanager
def gc_paused() -> Iterator[bool]:
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


@dataclass(eq=False)
class Loop:
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
    collect_per_epoch: bool = field(init=False, default=False)  # see gc_paused

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
                            loss, grad = member_losses_and_grad(g.head(out), yg, task)
                            if g.scale is not None:
                                grad = grad * g.scale
                            g.stack.backward(grad, kept)
                            losses.append(loss)
                else:
                    with self.autocast:
                        for g in self.groups:
                            xg, yg = self._batch(g, at, shared_block)
                            losses.append(member_losses(g.forward(xg), yg, task).mean(1))
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
                    loss_sum += member_losses(pred, yb.expand(k, -1), task).sum(1)
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
