"""A study config made ready to run: data loaded, sampler, pruner and
every architecture built and checked, before anything is written."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import optuna
from optuna.samplers import BaseSampler

from autosize.data import DATASETS, DataBundle, load_dataset
from autosize.data.loader import FILE_LOADERS
from autosize.errors import ConfigError, DataError
from autosize.models import ArchSpec, Layer
from autosize.search.config import StudyConfig
from autosize.search.config.components import SAMPLER_CLASSES, component_class
from autosize.search.policy.population import PopulationSampler
from autosize.search.policy.pruner import make_pruner
from autosize.search.policy.sampling import TrialSeeded

__all__ = ["Prepared", "load_bundle", "make_sampler", "prepare"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated config with everything built that can be built without writing."""

    config: StudyConfig
    bundle: DataBundle
    seed_spec: ArchSpec
    baseline_specs: tuple[ArchSpec, ...]
    # What was chosen from the data for the parts the config left out, one line each.
    chosen: tuple[str, ...] = ()

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
            # One setting: the baseline a trial is judged against also gives its recorded gain.
            if "reference" in kwargs:
                raise ConfigError(
                    f"{self.config.path}: [pruner] reference: set [baselines] reference instead "
                    "(it picks the baseline for both pruning and the recorded gain)"
                )
            kwargs["reference"] = self.config.baselines.reference
        return make_pruner(self.config.pruner.name, kwargs, where=f"{self.config.path}: [pruner]")


def make_sampler(config: StudyConfig) -> BaseSampler:
    kwargs = {"seed": config.seed, **config.sampler.kwargs}
    try:
        sampler = component_class(SAMPLER_CLASSES, config.sampler.name)(**kwargs)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"{config.path}: [sampler] {config.sampler.name}: {exc}") from None
    if isinstance(sampler, PopulationSampler):
        sampler.bind(config.search)  # no step that cannot be built or was tried already
    seed = kwargs["seed"]
    if config.sampler.name == "population" or not isinstance(seed, int):
        return sampler  # population draws per (seed, trial number); unseeded: no lockstep
    # Optuna's samplers: one stream per trial number, so workers do not draw in lockstep.
    return TrialSeeded(sampler, seed)


def load_bundle(config: StudyConfig) -> DataBundle:
    d = config.data
    try:  # the data layer's message names the dataset or option; add the file and the table
        bundle = load_dataset(d.name, data_dir=d.data_dir, seed=config.seed, **dict(d.options))
    except DataError as exc:
        key = "data" if d.name in DATASETS or d.name in FILE_LOADERS else "data.name"
        raise DataError(f"{config.path}: {key}: {exc}") from None
    if d.max_train or d.max_val or d.max_test:
        bundle = bundle.subset(train=d.max_train, val=d.max_val, test=d.max_test)
    return bundle


def prepare(config: StudyConfig) -> Prepared:
    """Validate what can only be checked with the data at hand; writes nothing."""
    make_sampler(config)  # refuse bad sampler arguments before loading anything
    bundle = load_bundle(config)
    from autosize.search.config.defaults import choose_defaults

    config, chosen = choose_defaults(config, bundle)
    if config.objective == "val_accuracy" and bundle.task != "classification":
        raise ConfigError(
            f"{config.path}: study.objective: 'val_accuracy' needs a classification dataset; {bundle.name} is regression (use 'val_rmse' or 'val_loss')"
        )
    if config.objective == "val_rmse" and bundle.task != "regression":
        raise ConfigError(
            f"{config.path}: study.objective: 'val_rmse' needs a regression dataset; {bundle.name} is classification (use 'val_accuracy' or 'val_loss')"
        )
    regression = bundle.task == "regression"
    target_shift, target_scale = (
        (bundle.target_mean, bundle.target_std) if regression else (0.0, 1.0)
    )

    def arch(layers: tuple[Layer, ...], where: str) -> ArchSpec:
        return config.arch(
            layers,
            bundle.input_shape,
            bundle.n_outputs,
            where=where,
            numeric_features=bundle.numeric_features,
            target_shift=target_shift,
            target_scale=target_scale,
        )

    seed_spec = arch(config.seed_net.layers, "seed.layers")
    specs: list[ArchSpec] = [seed_spec] if config.baselines.include_seed else []
    for scale in config.baselines.scales:
        specs.append(seed_spec.with_widths([max(1, round(w * scale)) for w in seed_spec.widths]))
    for i, layers in enumerate(config.baselines.architectures):
        where = f"baselines.architectures[{i}]"
        specs.append(arch(layers, where))
    unique: dict[str, ArchSpec] = {}
    for spec in specs:
        unique.setdefault(spec.to_json(indent=None), spec)
    prepared = Prepared(config, bundle, seed_spec, tuple(unique.values()), chosen)
    prepared.pruner()  # refuse bad pruner arguments before anything is written
    return prepared
