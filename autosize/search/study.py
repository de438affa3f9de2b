"""Run a study: train (or reuse) the seed, run the baselines, then warm-started trials.

The order inside one study:

1. **Check everything first.** Config, sampler, pruner, data and every
   architecture are validated before the storage is touched, so a bad config
   writes nothing.
2. **The seed** is trained once per (dataset, seed architecture, budget, seed)
   and stored as a study artifact; its key and metrics are in the study's user
   attribute ``seed``. A resumed run downloads it instead of retraining.
3. **Baselines** (``role = "baseline"``): the seed architecture and the
   configured ladder, trained from random initialisation for the trial budget,
   as trials of the same study. Only missing ones run on resume.
4. **Warm-started trials** (``role = "warmstart"``): parent, operations,
   training with pruning, then user attributes and the trained network as an
   artifact. ``n_trials`` is the study's target count of warm-started trials:
   running again resumes towards it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
import torch
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from autosize.callbacks import Callback, CosineSchedule
from autosize.data import DATASETS, DataBundle, load_dataset
from autosize.errors import ConfigError, DataError
from autosize.history import History
from autosize.models import ArchSpec, build_model
from autosize.search.bridge import TrialReporter
from autosize.search.clock import Deadline
from autosize.search.config import StudyConfig, TrainConfig, load_config
from autosize.search.operations import CompressPlan, Infeasible, Plan, plan_and_grow
from autosize.search.policy import PopulationSampler, ranked_parents
from autosize.search.pruner import baseline_curves, make_pruner, pick_baseline
from autosize.search.results import TrialResult
from autosize.search.storage import artifact_store, download_network, make_storage, upload_network
from autosize.train import evaluate, fit
from autosize.transforms import compress

__all__ = ["TrialFailed", "prepare", "run_study"]

logger = logging.getLogger(__name__)

METRIC_KEY = {"val_accuracy": "accuracy", "val_loss": "loss", "val_rmse": "rmse"}


# Seconds kept free at the deadline for the last trial's validation, test and upload, at
# least; run_study adds a multiple of what evaluating the seed took (a CNN's test pass is slow).
_RESERVE_SECONDS = 0.5
_RESERVE_EVALS = 3.0
# Seconds between two reports of a trial to the storage (see TrialReporter).
_REPORT_INTERVAL = 0.2


class TrialFailed(Exception):
    """A trial that cannot produce a result (diverged, out of memory): it ends as FAIL."""


# --------------------------------------------------------------------------- preparation


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated config with everything built that can be built without writing."""

    config: StudyConfig
    bundle: DataBundle
    seed_spec: ArchSpec
    baseline_specs: tuple[ArchSpec, ...]

    @property
    def maximize(self) -> bool:
        return self.config.direction == "maximize"

    @property
    def multi_objective(self) -> bool:
        return self.config.minimize_params

    def sampler(self) -> BaseSampler:
        return make_sampler(self.config)

    def pruner(self) -> optuna.pruners.BasePruner:
        kwargs = dict(self.config.pruner.kwargs)
        if self.config.pruner.name == "baseline":
            kwargs.setdefault("reference", self.config.baselines.reference)
        return make_pruner(self.config.pruner.name, kwargs, where=f"{self.config.path}: [pruner]")


def make_sampler(config: StudyConfig) -> BaseSampler:
    from optuna import samplers

    factories: dict[str, type[BaseSampler]] = {
        "tpe": samplers.TPESampler,
        "random": samplers.RandomSampler,
        "gp": samplers.GPSampler,
        "cmaes": samplers.CmaEsSampler,
        "qmc": samplers.QMCSampler,
        "nsga2": samplers.NSGAIISampler,
        "nsga3": samplers.NSGAIIISampler,
        "population": PopulationSampler,
    }
    kwargs = {"seed": config.seed, **config.sampler.kwargs}
    try:
        return factories[config.sampler.name](**kwargs)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"{config.path}: [sampler] {config.sampler.name}: {exc}") from None


def load_bundle(config: StudyConfig) -> DataBundle:
    d = config.data
    try:  # the data layer's message names the dataset or option; add the file and the table
        bundle = load_dataset(d.name, data_dir=d.data_dir, seed=config.seed, **dict(d.options))
    except DataError as exc:
        key = "data" if d.name in DATASETS else "data.name"
        raise DataError(f"{config.path}: {key}: {exc}") from None
    if d.max_train or d.max_val or d.max_test:
        bundle = bundle.subset(train=d.max_train, val=d.max_val, test=d.max_test)
    return bundle


def prepare(config: StudyConfig) -> Prepared:
    """Validate what can only be checked with the data at hand; writes nothing."""
    make_sampler(config)  # refuse bad sampler arguments before loading anything
    bundle = load_bundle(config)
    if config.objective == "val_accuracy" and bundle.task != "classification":
        raise ConfigError(
            f"{config.path}: study.objective: 'val_accuracy' needs a classification dataset; {bundle.name} is regression (use 'val_rmse' or 'val_loss')"
        )
    if config.objective == "val_rmse" and bundle.task != "regression":
        raise ConfigError(
            f"{config.path}: study.objective: 'val_rmse' needs a regression dataset; {bundle.name} is classification (use 'val_accuracy' or 'val_loss')"
        )
    target = (
        {"target_shift": bundle.target_mean, "target_scale": bundle.target_std}
        if bundle.task == "regression"
        else {}
    )
    seed_spec = config.seed_spec(bundle.input_shape, bundle.n_outputs, **target)
    specs: list[ArchSpec] = [seed_spec] if config.baselines.include_seed else []
    for scale in config.baselines.scales:
        specs.append(seed_spec.with_widths([max(1, round(w * scale)) for w in seed_spec.widths]))
    for i, layers in enumerate(config.baselines.architectures):
        where = f"baselines.architectures[{i}]"
        specs.append(
            config.arch(layers, bundle.input_shape, bundle.n_outputs, where=where, **target)
        )
    unique: dict[str, ArchSpec] = {}
    for spec in specs:
        unique.setdefault(spec.to_json(indent=None), spec)
    prepared = Prepared(config, bundle, seed_spec, tuple(unique.values()))
    prepared.pruner()  # refuse bad pruner arguments before anything is written
    return prepared


# --------------------------------------------------------------------------- training helpers


def _train(
    model: nn.Module,
    spec: ArchSpec,
    p: Prepared,
    budget: TrainConfig,
    *,
    seed: int,
    deadline: Deadline,
    lr: float | None = None,
    callbacks: list[TrialReporter] | None = None,
    compress_plan: CompressPlan | None = None,
) -> tuple[nn.Module, ArchSpec, History, float]:
    """Train for ``budget``, cut at the study's ``deadline`` (the network keeps what it has)."""
    start = time.perf_counter()
    # Keep a moment after the cut for validation, test and the artifact upload.
    max_seconds = deadline.clip(budget.max_seconds)
    every: list[Callback] = list(callbacks or [])
    if budget.schedule == "cosine":
        every.append(CosineSchedule(epochs=budget.epochs, max_seconds=max_seconds))
    common = {
        "epochs": budget.epochs,
        "max_seconds": max_seconds,
        "optimizer": budget.optimizer,
        "lr": lr if lr is not None else budget.lr,
        "weight_decay": budget.weight_decay,
        "batch_size": budget.batch_size,
        "device": p.config.device,
        "callbacks": every,
        "seed": seed,
    }
    if compress_plan is not None:
        model, spec, history = compress(
            model,
            spec,
            p.bundle,
            lam=compress_plan.lam,
            decay=compress_plan.decay,
            gate_lr=compress_plan.gate_lr,
            **common,
        )
    else:
        history = fit(model, p.bundle, restore_best=budget.restore_best, **common)
    return model, spec, history, time.perf_counter() - start


def _metrics(model: nn.Module, p: Prepared, split: str) -> dict[str, float]:
    return evaluate(model, p.bundle, split, device=p.config.device)  # type: ignore[arg-type]


def _objective_values(p: Prepared, value: float, spec: ArchSpec) -> float | tuple[float, float]:
    return (value, float(spec.param_count())) if p.multi_objective else value


def _describe(spec: ArchSpec) -> dict[str, object]:
    return {
        "architecture": spec.summary(),
        "spec": spec.to_dict(),
        "params": spec.param_count(),
        "flops": spec.flops(),
    }


def _set_attrs(trial: optuna.Trial, attrs: dict[str, object]) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


# --------------------------------------------------------------------------- the seed


def seed_key(p: Prepared) -> str:
    c = p.config
    payload = {
        "data": {
            "name": c.data.name,
            "options": dict(c.data.options),
            "subset": [c.data.max_train, c.data.max_val, c.data.max_test],
        },
        "spec": p.seed_spec.to_dict(),
        "train": asdict(c.seed_net.train),
        "seed": c.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def ensure_seed(
    study: optuna.Study, p: Prepared, deadline: Deadline | None = None
) -> tuple[nn.Module, ArchSpec]:
    """The trained seed network: from the study's artifacts if present, else trained now."""
    store = artifact_store(p.config.artifacts)
    key = seed_key(p)
    info = study.user_attrs.get("seed")
    if isinstance(info, dict) and info.get("key") == key:
        logger.info("reusing the seed network (key %s, artifact %s)", key, info["artifact_id"])
        return download_network(store, str(info["artifact_id"]))
    budget = p.config.seed_net.train
    logger.info("training the seed %s on %s", p.seed_spec.summary(), p.bundle.name)
    model = build_model(p.seed_spec, seed=p.config.seed)
    model, spec, history, seconds = _train(
        model, p.seed_spec, p, budget, seed=p.config.seed, deadline=deadline or Deadline.after(None)
    )
    if history.stopped == "diverged":
        raise ConfigError(
            f"{p.config.path}: [seed]: the seed network diverged while training ({history.stop_reason}); lower seed.lr"
        )
    val, test = _metrics(model, p, "val"), _metrics(model, p, "test")
    artifact_id = upload_network(study, store, model, spec, filename="seed.safetensors")
    study.set_user_attr(
        "seed",
        {
            "key": key,
            "artifact_id": artifact_id,
            **_describe(spec),
            "epochs": len(history.epochs),
            "seconds": round(seconds, 3),
            "val": val,
            "test": test,
        },
    )
    return model.cpu(), spec


# --------------------------------------------------------------------------- baselines


def run_baselines(
    study: optuna.Study,
    p: Prepared,
    *,
    on_trial: Callable[[TrialResult], None] | None,
    deadline: Deadline | None = None,
) -> None:
    """Train every configured baseline that the study does not have yet (while time is left)."""
    deadline = deadline or Deadline.after(None)
    done = {
        t.user_attrs.get("baseline_key")
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("role") == "baseline"
    }
    for i, spec in enumerate(p.baseline_specs):
        key = spec.to_json(indent=None)
        if key in done:
            continue
        if deadline.training_left() <= 0:
            logger.info("no time left for the remaining baselines; a resumed run trains them")
            return
        with warnings.catch_warnings():
            # Baselines run through ask/tell, before the heartbeat-guarded optimize loop.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        try:
            value = _baseline_trial(
                trial, p, spec, key, seed=p.config.seed + 1000 + i, deadline=deadline
            )
        except BaseException as exc:
            # As in warm-started trials: diverged or out of memory -> FAIL and go on.
            oom = isinstance(exc, torch.OutOfMemoryError)
            reason = (
                "interrupted"
                if isinstance(exc, KeyboardInterrupt)
                else "out of memory"
                if oom
                else str(exc)
                if isinstance(exc, TrialFailed)
                else repr(exc)
            )
            trial.set_user_attr("fail_reason", reason)
            study.tell(trial, state=TrialState.FAIL)
            if not (oom or isinstance(exc, TrialFailed)):
                raise
        else:
            study.tell(trial, value)
        if on_trial is not None:
            on_trial(TrialResult.from_trial(study._storage.get_trial(trial._trial_id)))


def _baseline_trial(
    trial: optuna.Trial, p: Prepared, spec: ArchSpec, key: str, *, seed: int, deadline: Deadline
) -> float | tuple[float, float]:
    _set_attrs(
        trial,
        {
            "role": "baseline",
            "baseline_key": key,
            "operation": "from scratch",
            "parent": None,
            "lineage": [f"{spec.summary()} from random initialisation"],
            **_describe(spec),
        },
    )
    reporter = TrialReporter(
        trial,
        p.config.objective,
        maximize=p.maximize,
        prune=False,
        report=not p.multi_objective,
        min_interval=_REPORT_INTERVAL,
    )
    model = build_model(spec, seed=seed)
    model, spec, history, seconds = _train(
        model, spec, p, p.config.train, seed=seed, deadline=deadline, callbacks=[reporter]
    )
    return _finish(trial, p, model, spec, history, seconds, reporter)


def _finish(
    trial: optuna.Trial,
    p: Prepared,
    model: nn.Module,
    spec: ArchSpec,
    history: History,
    seconds: float,
    reporter: TrialReporter,
) -> float | tuple[float, float]:
    """Common ending: failure checks, metrics, attributes, the network artifact."""
    _set_attrs(
        trial,
        {
            "epochs": len(history.epochs),
            # All the training behind this network: baselines start from nothing,
            # warm-started trials inherit the seed's and their ancestors' epochs.
            "lineage_epochs": int(trial.user_attrs.get("inherited_epochs", 0))
            + len(history.epochs),
            "stopped": history.stopped,
            "seconds": round(seconds, 3),
            "curve": [_finite(v) for v in reporter.values],
        },
    )
    if reporter.widths:
        trial.set_user_attr("widths", reporter.widths)
    if reporter.gains:
        trial.set_user_attr("gain_curve", reporter.gains)
    if history.stopped == "diverged":
        trial.set_user_attr("fail_reason", f"diverged: {history.stop_reason}")
        raise TrialFailed(f"diverged: {history.stop_reason}")
    if reporter.pruned_at is not None:
        trial.set_user_attr("pruned_at", reporter.pruned_at)
        raise optuna.TrialPruned(f"worse than the baselines at step {reporter.pruned_at}")
    val, test = _metrics(model, p, "val"), _metrics(model, p, "test")
    key = METRIC_KEY[p.config.objective]
    _set_attrs(trial, {**_describe(spec), "val": val, "test": test, "test_metric": test[key]})
    if reporter.gains:
        trial.set_user_attr("gain", reporter.gains[-1])
    if not math.isfinite(val[key]):
        trial.set_user_attr("fail_reason", f"non-finite validation {key}")
        raise TrialFailed(f"non-finite validation {key}")
    artifact_id = upload_network(trial, artifact_store(p.config.artifacts), model, spec)
    trial.set_user_attr("network_artifact", artifact_id)
    _dashboard_note(trial, spec, trial.user_attrs)
    return _objective_values(p, val[key], spec)


def _dashboard_note(trial: optuna.Trial, spec: ArchSpec, attrs: dict[str, object]) -> None:
    """A markdown note for optuna-dashboard (when installed) with the architecture."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    lines = [
        f"**{attrs.get('role', '')}** `{spec.summary()}` — {spec.param_count():,} parameters, {spec.flops():,} FLOPs",
        "",
        f"operation: {attrs.get('operation', '')}",
        f"parent: {attrs.get('parent', '')}",
    ]
    try:
        save_note(trial, "\n".join(lines))
    except Exception as exc:  # a note is a nicety; never fail a trial for it
        logger.debug("could not save the dashboard note: %s", exc)


# --------------------------------------------------------------------------- warm-started trials


@dataclass(frozen=True, eq=False)
class Parent:
    """Where a warm-started trial starts: the seed (``number=None``) or an earlier trial."""

    model: nn.Module
    spec: ArchSpec
    number: int | None
    lineage: tuple[str, ...]
    # Epochs of training already behind this network (the seed's plus every ancestor's).
    epochs: int


class Objective:
    """The objective of warm-started trials (one instance per process)."""

    def __init__(
        self,
        study: optuna.Study,
        p: Prepared,
        seed_model: nn.Module,
        seed_spec: ArchSpec,
        deadline: Deadline | None = None,
    ) -> None:
        self.study = study
        self.deadline = deadline or Deadline.after(None)
        self.p = p
        self.seed_model = seed_model.cpu()
        self.seed_spec = seed_spec
        self.store = artifact_store(p.config.artifacts)

    def _seed(self) -> Parent:
        epochs = int(self.study.user_attrs.get("seed", {}).get("epochs", 0))
        lineage = (f"seed {self.seed_spec.summary()} trained {epochs} epochs",)
        return Parent(copy.deepcopy(self.seed_model), self.seed_spec, None, lineage, epochs)

    def _parent(self, trial: optuna.Trial) -> Parent:
        space = self.p.config.search
        if space.parents == "seed":
            return self._seed()
        rank = trial.suggest_int("parent", 0, space.top_k)
        if rank == 0:
            return self._seed()
        done = ranked_parents(self.study, maximize=self.p.maximize)
        if len(done) < rank:
            return self._seed()
        t = done[rank - 1]
        model, spec = download_network(self.store, str(t.user_attrs["network_artifact"]))
        lineage = tuple(t.user_attrs.get("lineage", []))
        return Parent(model, spec, t.number, lineage, int(t.user_attrs.get("lineage_epochs", 0)))

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        p, space = self.p, self.p.config.search
        trial.set_user_attr("role", "warmstart")
        try:
            parent = self._parent(trial)
            try:
                model, spec, plan = plan_and_grow(
                    trial, parent.model, parent.spec, space, seed=p.config.seed + trial.number
                )
            except Infeasible as exc:
                trial.set_user_attr("operation", f"none ({exc})")
                trial.set_user_attr("pruned_reason", str(exc))
                raise optuna.TrialPruned(str(exc)) from None
            lr = trial.suggest_float("train/lr", *space.lr, log=True) if space.lr else None
            curves = baseline_curves(
                self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            )
            baseline = pick_baseline(
                curves,
                params=spec.param_count(),
                reference=p.config.baselines.reference,
                maximize=p.maximize,
            )
            _set_attrs(
                trial,
                {
                    "operation": plan.describe(),
                    "op_kind": plan.kind,
                    "parent": "seed" if parent.number is None else parent.number,
                    "lineage": [*parent.lineage, _lineage_step(plan, parent.number)],
                    "inherited_epochs": parent.epochs,
                    "baseline_trial": None if baseline is None else baseline.number,
                    **_describe(spec),
                },
            )
            reporter = TrialReporter(
                trial,
                p.config.objective,
                maximize=p.maximize,
                prune=True,
                report=not p.multi_objective,
                min_interval=_REPORT_INTERVAL,
                baseline=baseline,
            )
            model, spec, history, seconds = _train(
                model,
                spec,
                p,
                p.config.train,
                seed=p.config.seed + trial.number,
                deadline=self.deadline,
                lr=lr,
                callbacks=[reporter],
                compress_plan=plan.compress,
            )
            return _finish(trial, p, model, spec, history, seconds, reporter)
        except torch.OutOfMemoryError as exc:
            trial.set_user_attr("fail_reason", "out of memory")
            raise TrialFailed(f"out of memory: {exc}") from None
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted")
            raise


def _lineage_step(plan: Plan, parent: int | None) -> str:
    return f"{plan.describe()} (from {'the seed' if parent is None else f'trial {parent}'})"


# --------------------------------------------------------------------------- running


def _counted(study: optuna.Study) -> int:
    """Warm-started trials that count towards n_trials (interrupted ones are redone)."""
    return sum(
        1
        for t in study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        if t.user_attrs.get("role") == "warmstart"
        and t.user_attrs.get("fail_reason") != "interrupted"
    )


class _StopAtTarget:
    def __init__(self, target: int | None) -> None:
        self.target = target

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.target is not None and _counted(study) >= self.target:
            study.stop()


def open_study(p: Prepared) -> optuna.Study:
    storage = make_storage(p.config.storage)
    study = optuna.create_study(
        storage=storage,
        study_name=p.config.name,
        sampler=p.sampler(),
        pruner=p.pruner(),
        directions=p.config.directions,
        load_if_exists=True,
    )
    if study.directions != [
        optuna.study.StudyDirection.MAXIMIZE
        if d == "maximize"
        else optuna.study.StudyDirection.MINIMIZE
        for d in p.config.directions
    ]:
        raise ConfigError(
            f"{p.config.path}: study {p.config.name!r} exists with other directions; change study.name or the objective"
        )
    return study


# What must not change while a study resumes: its trials would stop being comparable.
_IDENTITY = {
    "data": "[data]",
    "objective": "study.objective",
    "trial_budget": "[train]",
    "seed_key": "[seed] (architecture, budget) or study.seed",
}


def _study_record(p: Prepared) -> dict[str, object]:
    config = p.config
    return {
        "config": str(config.path),
        "dataset": p.bundle.name,
        "task": p.bundle.task,
        "data": {
            "name": config.data.name,
            "data_dir": config.data.data_dir,
            "options": dict(config.data.options),
            "max_train": config.data.max_train,
            "max_val": config.data.max_val,
            "max_test": config.data.max_test,
        },
        "data_notes": dict(p.bundle.notes),
        "preprocessing": p.bundle.preprocessing.to_dict(),
        "seed": config.seed,
        "seed_key": seed_key(p),
        "objective": config.objective,
        "direction": config.direction,
        "trial_budget": asdict(config.train),
        "artifacts": str(config.artifacts),
    }


def _check_same_study(p: Prepared, existing: object, record: dict[str, object]) -> None:
    """Refuse to resume a study with a config that would mix incomparable trials."""
    if not isinstance(existing, dict):
        return
    for key, where in _IDENTITY.items():
        before, now = existing.get(key), json.loads(json.dumps(record[key]))
        if key in existing and before != now:
            raise ConfigError(
                f"{p.config.path}: {where} differs from what study {p.config.name!r} was started "
                f"with ({before!r} then, {now!r} now); restore it or set a new study.name"
            )


def run_study(
    config: StudyConfig,
    *,
    workers: int = 1,
    timeout: float | None = None,
    started: float | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> optuna.Study:
    """Run (or resume) the study described by ``config`` and return it.

    ``timeout`` (default: the config's) is the study's wall budget in seconds from
    ``started`` (a ``time.time()`` value; default: now; the CLI passes the moment its
    process started). Everything counts against it, the seed and the baselines too; the
    trial running at the deadline is cut there and keeps what it has.
    """
    if workers < 1:
        raise ConfigError(f"--workers: must be at least 1, got {workers}")
    seconds = timeout if timeout is not None else config.timeout
    deadline = replace(Deadline.after(seconds, start=started), reserve=_RESERVE_SECONDS)
    p = prepare(config)
    study = open_study(p)
    record = _study_record(p)
    existing = study.user_attrs.get("autosize")
    if not existing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(
                [config.objective, "params"] if p.multi_objective else [config.objective]
            )
        study.set_user_attr("autosize", record)
    else:
        _check_same_study(p, existing, record)
    seed_model, seed_spec = ensure_seed(study, p, deadline)
    if deadline.seconds is not None:
        deadline = replace(deadline, reserve=_reserve(seed_model, p))
    run_baselines(study, p, on_trial=on_trial, deadline=deadline)
    target = config.n_trials
    remaining = None if target is None else max(0, target - _counted(study))
    if remaining == 0:
        logger.info("study %r already has its %s warm-started trials", config.name, target)
        return study
    if deadline.training_left() <= 0:
        logger.info("study %r: the wall budget is spent", config.name)
        return study
    if workers == 1:
        _optimize(
            study,
            p,
            seed_model,
            seed_spec,
            n_trials=remaining,
            target=target,
            deadline=deadline,
            on_trial=on_trial,
        )
    else:
        ctx = multiprocessing.get_context("spawn")
        share = None if remaining is None else math.ceil(remaining / workers)
        procs = [
            ctx.Process(
                target=_worker,
                args=(str(config.path), _overrides(config), share, target, deadline),
                daemon=False,
            )
            for _ in range(workers)
        ]
        for proc in procs:
            proc.start()
        try:
            for proc in procs:
                proc.join()
        except KeyboardInterrupt:
            for proc in procs:
                proc.join(timeout=30)
            raise
    return study


def _reserve(model: nn.Module, p: Prepared) -> float:
    """Seconds to keep free at the deadline: a multiple of one validation and test pass."""
    start = time.perf_counter()
    _metrics(model, p, "val")
    _metrics(model, p, "test")
    return _RESERVE_SECONDS + _RESERVE_EVALS * (time.perf_counter() - start)


def _optimize(
    study: optuna.Study,
    p: Prepared,
    seed_model: nn.Module,
    seed_spec: ArchSpec,
    *,
    n_trials: int | None,
    target: int | None,
    deadline: Deadline,
    on_trial: Callable[[TrialResult], None] | None,
) -> None:
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [_StopAtTarget(target)]
    if on_trial is not None:
        callbacks.append(lambda _study, trial: on_trial(TrialResult.from_trial(trial)))
    left = deadline.training_left()
    if left <= 0:
        return
    study.optimize(
        Objective(study, p, seed_model, seed_spec, deadline),
        n_trials=n_trials,
        timeout=None if math.isinf(left) else left,
        catch=(TrialFailed,),
        callbacks=callbacks,
        gc_after_trial=False,
    )


def _overrides(config: StudyConfig) -> dict[str, object]:
    return {"name": config.name, "storage": config.storage, "n_trials": config.n_trials}


def _worker(
    config_path: str,
    overrides: dict[str, object],
    n_trials: int | None,
    target: int | None,
    deadline: Deadline,
) -> None:
    """One worker process of ``--workers K``: same storage, its share of the trials."""
    torch.set_num_threads(1)
    config = load_config(Path(config_path), overrides=overrides)
    p = prepare(config)
    study = open_study(p)
    seed_model, seed_spec = ensure_seed(study, p, deadline)
    _optimize(
        study,
        p,
        seed_model,
        seed_spec,
        n_trials=n_trials,
        target=target,
        deadline=deadline,
        on_trial=lambda result: print(result.line(), flush=True),
    )
