"""The typed study config: the frozen dataclasses :func:`~autosize.search.config.load_config`
returns, with every optional key's default written once, here (the reader takes them from
these dataclasses). Reading and checking TOML is :mod:`autosize.search.config`'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from autosize.budget import Budget, Schedule
from autosize.errors import ConfigError, SpecError
from autosize.models import Activation, ArchSpec, Layer, PeriodicEmbedding
from autosize.optim import Precision
from autosize.search.store.artifacts import ArtifactLocation

__all__ = [
    "METRIC_KEY",
    "BaselineConfig",
    "BaselineReference",
    "Component",
    "DataConfig",
    "Direction",
    "Objective",
    "Operation",
    "ParentPolicy",
    "Precision",
    "Schedule",
    "SearchSpace",
    "SeedConfig",
    "StudyConfig",
    "TrainConfig",
]

Objective = Literal["val_accuracy", "val_loss", "val_rmse"]
Direction = Literal["maximize", "minimize"]
# The evaluate() key each objective reads (the test metric recorded for a trial).
METRIC_KEY: dict[str, str] = {"val_accuracy": "accuracy", "val_loss": "loss", "val_rmse": "rmse"}
Operation = Literal["widen", "deepen", "compress", "train", "regularize"]
ParentPolicy = Literal["seed", "best"]
BaselineReference = Literal["best", "nearest"]


@dataclass(frozen=True)
class DataConfig:
    name: str
    data_dir: str | None = None
    # Dataset-specific keyword options for load_dataset (e.g. airfoil's split; a table's
    # categorical and drop are lists of column names): load_dataset checks them.
    options: Mapping[str, object] = field(default_factory=dict)
    # Cap each split at this many rows (quick studies); None keeps the split whole.
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None


# A training budget ([seed] and [train]) is the one record every layer shares; a study
# config calls it TrainConfig.
TrainConfig = Budget


@dataclass(frozen=True)
class EmbeddingConfig:
    """``[seed] embedding``: a periodic embedding of the data's numeric columns (every network
    of the study has it; see :class:`~autosize.models.PeriodicEmbedding`). ``features`` None
    embeds the columns the dataset says are numeric."""

    frequencies: int = 16
    width: int = 16
    sigma: float = 1.0
    features: int | None = None


@dataclass(frozen=True)
class SeedConfig:
    layers: tuple[Layer, ...]
    activation: Activation
    train: TrainConfig
    embedding: EmbeddingConfig | None = None


@dataclass(frozen=True)
class SearchSpace:
    operations: tuple[Operation, ...] = ("widen", "deepen", "compress")
    # Operations applied in one trial: 1..max_ops (compress, which trains, ends a sequence).
    max_ops: int = 1
    # "seed": every trial starts from the seed; "best": the parent is the seed or one of
    # the top_k warm-started trials so far (hill climbing over network morphisms).
    parents: ParentPolicy = "seed"
    top_k: int = 3
    max_width: int = 4096
    max_widen_factor: float = 4.0
    # The smallest factor the population sampler draws for widen: growth that jumps.
    min_widen_factor: float = 1.0
    max_depth: int = 6
    noise: float = 0.0
    lam: tuple[float, float] = (1e-6, 1e-2)
    decay: tuple[float, float] = (1.0, 1.0)
    # Before compressing, widen every layer by a factor in this range ("start large, shrink").
    compress_start_factor: tuple[float, float] = (1.0, 1.0)
    # The gates' own learning rate for compress, searched on a log scale; None uses the
    # trial's lr. With Adam a gate moves about lr per step, so a short budget needs a larger
    # gate_lr before any gate can reach zero.
    gate_lr: tuple[float, float] | None = None
    # Learning rate range searched on a log scale; None keeps [train] lr.
    lr: tuple[float, float] | None = None
    # The dropout rate a "regularize" step gives every dense layer, drawn uniformly.
    dropout: tuple[float, float] = (0.0, 0.5)
    # A step that grows the network (widen or deepen) trains this many times the [train]
    # budget (its epochs and max_seconds): a grown network starts below its trained parent
    # and is judged as a parent only after it has caught up, not after one short step.
    grow_budget: float = 1.0


@dataclass(frozen=True)
class BaselineConfig:
    scales: tuple[float, ...] = ()
    architectures: tuple[tuple[Layer, ...], ...] = ()
    include_seed: bool = True
    # Which baseline a warm-started trial is compared with (gain, BaselinePruner):
    # "nearest" in parameter count, or the "best" one.
    reference: BaselineReference = "nearest"


@dataclass(frozen=True)
class Component:
    """A sampler or pruner chosen by name, with its keyword arguments."""

    name: str
    kwargs: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyConfig:
    path: Path
    name: str
    storage: str
    # Where the networks go: a folder or an S3 bucket and prefix (search.artifacts).
    artifacts: ArtifactLocation
    n_trials: int | None
    timeout: float | None
    seed: int
    objective: Objective
    # A second objective, the parameter count (minimised): the study becomes multi-objective.
    minimize_params: bool
    device: str
    data: DataConfig
    seed_net: SeedConfig
    train: TrainConfig
    search: SearchSpace
    baselines: BaselineConfig
    sampler: Component
    pruner: Component
    # Warm-started trials trained together, K at a time, in one fit_population (1: one by
    # one; "auto", the default: K from the networks, the device and n_trials, per cohort
    # on a CPU, see search.cohort.auto_size). The trials are the same either way; K of them
    # cost about one on small nets.
    cohort: int | Literal["auto"] = "auto"
    # Successive halving inside each cohort (search.cohort.Halving): the worse half of its
    # stacked members stops at each of its budget's slices, the best trains it out.
    halving: bool = False
    # The [study] keys given on the command line (what worker processes re-apply).
    overrides: Mapping[str, object] = field(default_factory=dict)
    # What the config left out, to be chosen from the data by autosize.search.config.defaults:
    # "objective", "seed", "train", "search", "baselines", "sampler", "pruner". Empty once
    # chosen.
    auto: frozenset[str] = frozenset()

    @property
    def direction(self) -> Direction:
        return "maximize" if self.objective == "val_accuracy" else "minimize"

    @property
    def directions(self) -> list[Direction]:
        return [self.direction, "minimize"] if self.minimize_params else [self.direction]

    def arch(
        self,
        layers: tuple[Layer, ...],
        input_shape: tuple[int, ...],
        n_outputs: int,
        *,
        where: str = "layers",
        numeric_features: int = 0,
        target_shift: float = 0.0,
        target_scale: float = 1.0,
    ) -> ArchSpec:
        """The spec of ``layers`` (the config key ``where``) on this data; errors name the key.

        ``numeric_features``: how many leading input columns the data says are numeric, what
        ``[seed] embedding`` embeds unless it names its own ``features``.
        """
        embedding = self._embedding(numeric_features)
        try:
            return ArchSpec(
                input_shape=input_shape,
                n_outputs=n_outputs,
                layers=layers,
                activation=self.seed_net.activation,
                embedding=embedding,
                target_shift=target_shift,
                target_scale=target_scale,
            )
        except SpecError as exc:
            message = str(exc)
            if message.startswith("embedding"):
                raise ConfigError(f"{self.path}: seed.{message}") from None
            # ArchSpec says "layers[i].width: ..."; the config key is e.g. "seed.layers[i].width"
            if message.startswith("layers"):
                message = where + message.removeprefix("layers")
            raise ConfigError(f"{self.path}: {message}") from None

    def _embedding(self, numeric_features: int) -> PeriodicEmbedding | None:
        emb = self.seed_net.embedding
        if emb is None:
            return None
        features = emb.features if emb.features is not None else numeric_features
        if features < 1:
            raise ConfigError(
                f"{self.path}: seed.embedding: the data has no numeric columns to embed "
                "(set seed.embedding.features to the number of leading columns to embed)"
            )
        return PeriodicEmbedding(
            features=features, frequencies=emb.frequencies, width=emb.width, sigma=emb.sigma
        )
