"""Warm-started steps (``role = "warmstart"``): a parent, the operations on it,
training with reports and pruning, then attributes and the network artifact."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, replace

import optuna
from optuna.trial import TrialState

from autosize.models import ArchSpec, Net
from autosize.search.config.schema import TrainConfig
from autosize.search.deadline import Deadline
from autosize.search.policy.operations import Infeasible, Plan, plan_and_grow
from autosize.search.policy.population import children_operations, ranked_parents
from autosize.search.policy.pruner import baseline_curves, pick_baseline
from autosize.search.prepare import Prepared
from autosize.search.store import record
from autosize.search.store.networks import artifact_store, download_network
from autosize.search.trials import training
from autosize.search.trials.reporter import TrialReporter
from autosize.search.trials.training import (
    describe,
    finish_trial,
)
from autosize.seeds import derive_seed

__all__ = ["Parent", "Step", "StepObjective", "step_budget"]

logger = logging.getLogger(__name__)


def step_budget(train: TrainConfig, plan: Plan, grow_budget: float) -> TrainConfig:
    """The budget a step trains for: ``[train]``'s, times ``grow_budget`` when it grows.

    A widened or deepened network keeps its parent's function but restarts the schedule
    with new units to fit; after one short step it usually trails the parent it came from,
    so a population that picks its best networks as parents would never train it again.
    A longer budget for the growing step itself lets it catch up before it is judged
    (tried on MNIST at 600 s: no gain there, reports/search_vs_scratch.md)."""
    if grow_budget == 1.0 or not plan.grows:
        return train
    return replace(
        train,
        epochs=None if train.epochs is None else max(1, math.ceil(train.epochs * grow_budget)),
        max_seconds=None if train.max_seconds is None else train.max_seconds * grow_budget,
    )


@dataclass(frozen=True, eq=False)
class Parent:
    """Where a warm-started trial starts: the seed (``number=None``) or an earlier trial."""

    model: Net
    spec: ArchSpec
    number: int | None
    lineage: tuple[str, ...]
    # Epochs of training already behind this network (the seed's plus every ancestor's).
    epochs: int

    @property
    def key(self) -> int | str:
        """As trials record their parent: "seed" or the trial number."""
        return "seed" if self.number is None else self.number


@dataclass(eq=False)
class Step:
    """A warm-started trial ready to train: its grown network, plan, lr, reporter and seed."""

    trial: optuna.Trial
    model: Net
    spec: ArchSpec
    plan: Plan
    lr: float | None  # None: [train] lr
    reporter: TrialReporter
    seed: int
    budget: TrainConfig  # [train], or longer for a step that grows (step_budget)


class StepObjective:
    """The objective of warm-started trials (one instance per process)."""

    def __init__(
        self,
        study: optuna.Study,
        p: Prepared,
        seed_model: Net,
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
        epochs = int(record.seed_info(self.study).get("epochs", 0))
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
        rec = record.read(t)
        model, spec = download_network(
            self.store, str(rec.network_artifact), owner=f"trial {t.number}"
        )
        return Parent(model, spec, t.number, rec.lineage, int(rec.lineage_epochs or 0))

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        # worker before role (one attribute each): a kill between them never leaves a role without it
        record.write(trial, **record.worker_attrs(), role=record.WARMSTART)
        with training.recorded_failures(trial):
            return self.train(self.step(trial))

    def train(self, step: Step) -> float | tuple[float, float]:
        """Train a prepared step on its own for its budget and record the trial's result."""
        model, spec, history, seconds, cut = training.train_step(
            step.model,
            step.spec,
            self.p,
            step.budget,
            seed=step.seed,
            deadline=self.deadline,
            lr=step.lr,
            callbacks=[step.reporter],
            compress_plan=step.plan.compress,
        )
        return finish_trial(
            step.trial, self.p, model, spec, history, seconds, step.reporter, cut=cut
        )

    def step(self, trial: optuna.Trial) -> Step:
        """Everything before training: the parent, the operations, lr, baseline, reporter.

        Raises ``TrialPruned`` when the operation cannot apply (e.g. deepen at max_depth).
        """
        p, space = self.p, self.p.config.search
        parent = self._parent(trial)
        try:
            model, spec, plan = plan_and_grow(
                trial,
                parent.model,
                parent.spec,
                space,
                seed=derive_seed(p.config.seed, "grow", trial.number),
            )
        except Infeasible as exc:
            record.write(
                trial, operation=f"none ({exc})", pruned_reason=str(exc), parent=parent.key
            )
            raise optuna.TrialPruned(str(exc)) from None
        lr = trial.suggest_float("train/lr", *space.lr, log=True) if space.lr else None
        if lr is None:  # a step with its own lr is new; one without it may repeat one
            tried = children_operations(self.study, parent.key, exclude=trial.number)
            if (same := tried.get(plan.describe())) is not None:
                reason = f"repeats trial {same} ({plan.describe()} from the same parent)"
                record.write(
                    trial, operation=f"none ({reason})", pruned_reason=reason, parent=parent.key
                )
                raise optuna.TrialPruned(reason)
        curves = baseline_curves(
            self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        )
        baseline = pick_baseline(
            curves,
            params=spec.param_count(),
            reference=p.config.baselines.reference,
            maximize=p.maximize,
        )
        record.write(
            trial,
            operation=plan.describe(),
            op_kind=plan.kind,
            parent=parent.key,
            lineage=[*parent.lineage, _lineage_step(plan, parent.number)],
            inherited_epochs=parent.epochs,
            baseline_trial=None if baseline is None else baseline.number,
            **describe(spec),
        )
        reporter = TrialReporter(
            trial,
            p.config.objective,
            maximize=p.maximize,
            prune=True,
            report=not p.multi_objective,
            baseline=baseline,
        )
        seed = derive_seed(p.config.seed, "trial", trial.number)
        budget = step_budget(p.config.train, plan, space.grow_budget)
        return Step(trial, model, spec, plan, lr, reporter, seed, budget)


def _lineage_step(plan: Plan, parent: int | None) -> str:
    return f"{plan.describe()} (from {'the seed' if parent is None else f'trial {parent}'})"
