"""The search layer's one training path and the common ending of every trial.

:func:`train_step` trains the seed, each baseline and each warm-started step
(cut at the study's deadline); :func:`finish_trial` checks the result, records
the metrics and attributes and uploads the network."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from typing import Any, Literal

import optuna
import torch
from torch import nn

from autosize.errors import ArtifactWriteError
from autosize.history import History
from autosize.models import ArchSpec, Net
from autosize.search.config import METRIC_KEY, TrainConfig
from autosize.search.deadline import Deadline
from autosize.search.policy.operations import CompressPlan
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.networks import upload_network
from autosize.search.trials.reporter import TrialReporter
from autosize.train import evaluate, fit
from autosize.transforms import compress

__all__ = ["METRIC_KEY", "TrialFailed", "finish_trial", "recorded_failures", "train_step"]

logger = logging.getLogger(__name__)


# Seconds kept free at the deadline for the last trial's validation, test and upload, at
# least; run_study adds a multiple of what evaluating the seed took (a CNN's test pass is slow).
RESERVE_SECONDS = 0.5
RESERVE_EVALS = 3.0


class TrialFailed(Exception):
    """A trial that cannot produce a result (diverged, out of memory): it ends as FAIL."""


def redone_reason(exc: BaseException) -> str | None:
    """The ``fail_reason`` of a trial stopped by ``exc`` through no fault of its own, which
    a resumed study redoes (``TrialRecord.redone``); None for any other failure."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, ArtifactWriteError):  # the store's fault, not the trial's
        return f"{record.NOT_STORED}{exc}"
    return None


@contextlib.contextmanager
def recorded_failures(trial: optuna.Trial) -> Iterator[None]:
    """Write why a trial fails before Optuna marks it FAIL: out of memory (then
    :class:`TrialFailed`, so the study goes on), interrupted, or the error itself.
    A FAIL without a reason is then one the heartbeat marked: its worker stopped."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        record.write(trial, fail_reason="out of memory")
        raise TrialFailed(f"out of memory: {exc}") from None
    except (KeyboardInterrupt, ArtifactWriteError) as exc:  # redone when the study resumes
        record.write(trial, fail_reason=redone_reason(exc))
        raise
    except optuna.TrialPruned:
        raise
    except Exception as exc:  # TrialFailed included: finish_trial may have written it already
        if record.read(trial).fail_reason is None:
            record.write(trial, fail_reason=str(exc) if isinstance(exc, TrialFailed) else repr(exc))
        raise


def train_step(
    model: Net,
    spec: ArchSpec,
    p: Prepared,
    budget: TrainConfig,
    *,
    seed: int,
    deadline: Deadline,
    lr: float | None = None,
    callbacks: list[TrialReporter] | None = None,
    compress_plan: CompressPlan | None = None,
) -> tuple[Net, ArchSpec, History, float, bool]:
    """Train for ``budget``, cut at the study's ``deadline`` (the network keeps what it has).

    Returns the network and its spec (compress changes both), the history, the seconds it
    took and whether the deadline cut it short of ``budget`` (:func:`cut_short`)."""
    start = time.perf_counter()
    # Keep a moment after the cut for validation, test and the artifact upload.
    max_seconds = deadline.clip(budget.max_seconds)
    kwargs = budget.training_kwargs(max_seconds=max_seconds, lr=lr)
    every = [*(callbacks or []), *budget.schedule_callbacks(max_seconds)]
    common: dict[str, Any] = {"device": p.config.device, "callbacks": every, "seed": seed}
    if compress_plan is not None:
        del kwargs["restore_best"]  # compress keeps its last epoch: units were removed
        model, spec, history = compress(
            model,
            spec,
            p.bundle,
            lam=compress_plan.lam,
            decay=compress_plan.decay,
            gate_lr=compress_plan.gate_lr,
            **kwargs,
            **common,
        )
    else:
        history = fit(model, p.bundle, **kwargs, **common)
    seconds = time.perf_counter() - start
    return model, spec, history, seconds, cut_short(history, budget, max_seconds)


def cut_short(history: History, budget: TrainConfig, max_seconds: float | None) -> bool:
    """Whether training that ran for ``max_seconds`` (a deadline's clip of the budget) was
    stopped by the study's deadline rather than by ``budget``'s own limits."""
    if history.stopped != "time" or max_seconds is None:
        return False
    return budget.max_seconds is None or max_seconds < budget.max_seconds


def metrics(
    model: nn.Module, p: Prepared, split: Literal["train", "val", "test"]
) -> dict[str, float]:
    return evaluate(model, p.bundle, split, device=p.config.device)


def objective_values(p: Prepared, value: float, spec: ArchSpec) -> float | tuple[float, float]:
    return (value, float(spec.param_count())) if p.multi_objective else value


def describe(spec: ArchSpec) -> dict[str, object]:
    return {
        "architecture": spec.summary(),
        "spec": spec.to_dict(),
        "params": spec.param_count(),
        "flops": spec.flops(),
    }


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def finish_trial(
    trial: optuna.Trial,
    p: Prepared,
    model: nn.Module,
    spec: ArchSpec,
    history: History,
    seconds: float,
    reporter: TrialReporter,
    *,
    cut: bool = False,
) -> float | tuple[float, float]:
    """Common ending: failure checks, metrics, attributes, the network artifact.

    ``cut``: the study's deadline stopped the training short of its budget (recorded)."""
    if cut:
        record.write(trial, cut=True)
    record.write(
        trial,
        epochs=len(history.epochs),
        # All the training behind this network: baselines start from nothing,
        # warm-started trials inherit the seed's and their ancestors' epochs.
        lineage_epochs=record.read(trial).inherited_epochs + len(history.epochs),
        stopped=history.stopped,
        seconds=round(seconds, 3),
        device=history.device,
        curve=[finite_or_none(v) for v in reporter.values],
    )
    if reporter.widths:
        record.write(trial, widths=reporter.widths)
    if reporter.gains:
        record.write(trial, gain_curve=reporter.gains)
    if history.stopped == "diverged":
        record.write(trial, fail_reason=f"diverged: {history.stop_reason}")
        raise TrialFailed(f"diverged: {history.stop_reason}")
    if reporter.pruned_at is not None:
        record.write(trial, pruned_at=reporter.pruned_at)
        raise optuna.TrialPruned(f"worse than the baselines at step {reporter.pruned_at}")
    val, test = metrics(model, p, "val"), metrics(model, p, "test")
    key = METRIC_KEY[p.config.objective]
    record.write(trial, **describe(spec), val=val, test=test, test_metric=test[key])
    if reporter.gains:
        record.write(trial, gain=reporter.gains[-1])
    if not math.isfinite(val[key]):
        record.write(trial, fail_reason=f"non-finite validation {key}")
        raise TrialFailed(f"non-finite validation {key}")
    artifact_id = upload_network(
        trial, p.config.artifacts, model, spec, owner=f"trial {trial.number}'s network"
    )
    record.write(trial, network_artifact=artifact_id)
    dashboard_note(trial, spec, record.read(trial))
    return objective_values(p, val[key], spec)


def dashboard_note(trial: optuna.Trial, spec: ArchSpec, rec: record.TrialRecord) -> None:
    """A markdown note for optuna-dashboard (when installed) with the architecture."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    lines = [
        f"**{rec.role}** `{spec.summary()}` — {spec.param_count():,} parameters, {spec.flops():,} FLOPs",
        "",
        f"operation: {rec.operation}",
        f"parent: {'' if rec.parent is None else rec.parent}",
    ]
    try:
        save_note(trial, "\n".join(lines))
    except Exception as exc:  # a note is a nicety; never fail a trial for it
        logger.debug("could not save the dashboard note: %s", exc)
