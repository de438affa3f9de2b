"""Study configs: one TOML file per study, loaded into frozen dataclasses.

Every key is checked: unknown keys, wrong types, unknown names and impossible
bounds raise :class:`~autosize.errors.ConfigError` with one line naming the
file, the key and the value. A minimal config::

    [study]
    name = "quickstart"
    n_trials = 8
    objective = "val_rmse"

    [data]
    name = "add10"

    [seed]
    layers = [{ type = "dense", width = 16 }]
    epochs = 10

    [train]                 # the budget of every trial and baseline
    epochs = 5

    [search]
    operations = ["widen", "deepen", "compress"]

    [baselines]
    scales = [2.0, 4.0]     # the seed's widths times these, trained from scratch

    [pruner]
    name = "baseline"
    margin = 0.0

See ``studies/*.toml`` for complete, commented examples.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, get_args

from autosize.errors import ConfigError, SpecError
from autosize.models import ACTIVATIONS, Activation, ArchSpec, DenseLayer, Layer, layer_from_dict
from autosize.search.components import (
    PRUNER_CLASSES,
    PRUNERS,
    SAMPLER_CLASSES,
    SAMPLERS,
    component_class,
)
from autosize.search.toml_table import Table
from autosize.train import OptimizerName

__all__ = [
    "FILE_DATASETS",
    "METRIC_KEY",
    "PRUNERS",
    "PRUNER_CLASSES",
    "SAMPLERS",
    "SAMPLER_CLASSES",
    "BaselineConfig",
    "Component",
    "DataConfig",
    "Objective",
    "Operation",
    "SearchSpace",
    "SeedConfig",
    "StudyConfig",
    "TrainConfig",
    "component_class",
    "config_from_dict",
    "load_config",
]

Objective = Literal["val_accuracy", "val_loss", "val_rmse"]
Direction = Literal["maximize", "minimize"]
# The evaluate() key each objective reads (the test metric recorded for a trial).
METRIC_KEY: dict[str, str] = {"val_accuracy": "accuracy", "val_loss": "loss", "val_rmse": "rmse"}
Operation = Literal["widen", "deepen", "compress", "train", "regularize"]
Schedule = Literal["constant", "cosine"]
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


@dataclass(frozen=True)
class TrainConfig:
    """One training budget and its hyperparameters (the seed's, or every trial's)."""

    epochs: int | None = None
    max_seconds: float | None = None
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    # Report the best-validation epoch's weights (Census and Add10 overfit within tens of epochs).
    restore_best: bool = True
    # "cosine" anneals the lr to zero over the budget (epochs and/or max_seconds): short
    # trials end at a low lr, and each trial that trains on is a warm restart.
    schedule: Schedule = "constant"


@dataclass(frozen=True)
class SeedConfig:
    layers: tuple[Layer, ...]
    activation: Activation
    train: TrainConfig


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
    artifacts: Path
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
    # one; "auto": K from the seed's size and the device, see search.cohort.auto_size).
    # The trials are the same either way; K of them cost about one on small nets.
    cohort: int | Literal["auto"] = 1
    # The [study] keys given on the command line (what worker processes re-apply).
    overrides: Mapping[str, object] = field(default_factory=dict)
    # What the config left out, to be chosen from the data by autosize.search.defaults:
    # "objective", "seed", "train", "search", "baselines". Empty once chosen.
    auto: frozenset[str] = frozenset()

    @property
    def direction(self) -> Direction:
        return "maximize" if self.objective == "val_accuracy" else "minimize"

    @property
    def directions(self) -> list[Direction]:
        return [self.direction, "minimize"] if self.minimize_params else [self.direction]

    def seed_spec(self, input_shape: tuple[int, ...], n_outputs: int, **target: float) -> ArchSpec:
        return self.arch(
            self.seed_net.layers, input_shape, n_outputs, where="seed.layers", **target
        )

    def arch(
        self,
        layers: tuple[Layer, ...],
        input_shape: tuple[int, ...],
        n_outputs: int,
        *,
        where: str = "layers",
        **target: float,
    ) -> ArchSpec:
        """The spec of ``layers`` (the config key ``where``) on this data; errors name the key."""
        try:
            return ArchSpec(
                input_shape=input_shape,
                n_outputs=n_outputs,
                layers=layers,
                activation=self.seed_net.activation,
                **target,
            )
        except SpecError as exc:
            # ArchSpec says "layers[i].width: ..."; the config key is e.g. "seed.layers[i].width"
            message = str(exc)
            if message.startswith("layers"):
                message = where + message.removeprefix("layers")
            raise ConfigError(f"{self.path}: {message}") from None


# --------------------------------------------------------------------------- reading

# The defaults of every optional key are the dataclasses' own (written once, above).
_TRAIN = TrainConfig()
_SEARCH = SearchSpace()
_BASELINES = BaselineConfig()


def _layers(value: object, where: str, path: Path) -> tuple[Layer, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{path}: {where}: expected a non-empty list of layer tables, got {value!r}"
        )
    # The same parser as exported architecture JSON; shapes are checked once the data is known.
    try:
        return tuple(layer_from_dict(raw, f"{where}[{i}]") for i, raw in enumerate(value))
    except SpecError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _train_config(t: Table, *, epochs_default: int | None) -> TrainConfig:
    cfg = TrainConfig(
        epochs=t.int("epochs", None, low=1),
        max_seconds=t.float("max_seconds", None, strict=True),
        optimizer=t.str("optimizer", _TRAIN.optimizer, choices=get_args(OptimizerName)),
        lr=t.float("lr", _TRAIN.lr, strict=True),
        weight_decay=t.float("weight_decay", _TRAIN.weight_decay),
        batch_size=t.int("batch_size", _TRAIN.batch_size, low=1),
        restore_best=t.bool("restore_best", _TRAIN.restore_best),
        schedule=t.str("schedule", _TRAIN.schedule, choices=get_args(Schedule)),
    )
    if cfg.epochs is None and cfg.max_seconds is None:
        if epochs_default is None:
            t.fail("epochs", None, "a budget: epochs and/or max_seconds")
        cfg = replace(cfg, epochs=epochs_default)
    return cfg


# Datasets read from the user's own files; their keys sit in [data] itself.
FILE_DATASETS: tuple[str, ...] = ("table", "images")
_TASKS = ("classification", "regression")


def _columns(t: Table, key: str) -> list[str]:
    value = t.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        t.fail(key, value, "a list of column names")
    return list(value)


def _file_options(t: Table, path: Path, kind: str) -> dict[str, object]:
    """The [data] keys of a table or images: file paths are relative to the config file."""
    here = path.resolve().parent

    def file(key: str, required: bool = False) -> str | None:
        value = t.str(key, None)
        if value is None:
            if required:
                t.fail(key, None, "a file name (relative to the config file)")
            return None
        return str((here / Path(value).expanduser()).resolve())

    options: dict[str, object] = {"path": file("path", required=True)}
    if kind == "table":
        target = t.str("target", None)
        if target is None:
            t.fail("target", None, "the name of the column to predict")
        options["target"] = target
    for key in ("val_path", "test_path"):
        if (value := file(key)) is not None:
            options[key] = value
    if (task := t.str("task", None, choices=_TASKS)) is not None:
        options["task"] = task
    if kind == "table":
        if (group := t.str("group", None)) is not None:
            options["group"] = group
        for key in ("categorical", "drop"):
            if names := _columns(t, key):
                options[key] = names
    for key in ("val_fraction", "test_fraction"):
        fraction = t.float(key, None, strict=True)
        if fraction is not None:
            if fraction >= 1.0:
                t.fail(key, fraction, "a number in (0, 1)")
            options[key] = fraction
    return options


def load_config(path: str | Path, *, overrides: Mapping[str, object] | None = None) -> StudyConfig:
    """Read and validate a study config. ``overrides`` replace ``[study]`` keys (CLI flags)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return config_from_dict(raw, path, overrides=overrides)


def config_from_dict(
    raw: Mapping[str, object], path: str | Path, *, overrides: Mapping[str, object] | None = None
) -> StudyConfig:
    """A config from its parsed tables (what ``load_config`` does after reading TOML).

    ``path`` stands for the config file: messages name it, relative paths and the
    default state folder are next to it; it need not exist (``autosize run --data``,
    the scikit-learn estimator).
    """
    path = Path(path)
    top = Table(raw, "", path)
    study = top.table("study")
    if overrides:
        study = Table(
            {**study.data, **{k: v for k, v in overrides.items() if v is not None}}, "study", path
        )
    name = study.str("name", path.stem)
    assert name is not None
    state_dir = path.resolve().parent / ".state"
    storage = study.str("storage", None) or f"sqlite:///{state_dir / (name + '.db')}"
    artifacts_raw = study.str("artifacts", None)
    artifacts = Path(artifacts_raw) if artifacts_raw else state_dir / f"{name}-artifacts"
    if not artifacts.is_absolute():
        artifacts = path.resolve().parent / artifacts
    n_trials = study.int("n_trials", None, low=1)
    timeout = study.float("timeout", None, strict=True)
    if n_trials is None and timeout is None:
        study.fail("n_trials", None, "n_trials and/or timeout")
    seed = study.int("seed", 0)
    auto: set[str] = set()  # the parts chosen from the data (autosize.search.defaults)
    if not study.has("objective"):
        auto.add("objective")
    objective: Objective = study.str("objective", "val_accuracy", choices=get_args(Objective))
    second = study.str("second_objective", None, choices=("params",))
    device = study.str("device", "auto")
    cohort = study.get("cohort")
    if cohort is None:
        cohort = 1
    elif cohort != "auto" and (
        isinstance(cohort, bool) or not isinstance(cohort, int) or cohort < 1
    ):
        study.fail("cohort", cohort, 'an integer >= 1 or "auto"')
    study.close()

    data_t = top.table("data")
    data_name = data_t.str("name")
    if data_name is None:
        data_t.fail("name", None, "a dataset name")
    raw_options = data_t.get("options") or {}
    if not isinstance(raw_options, Mapping):
        data_t.fail("options", raw_options, "a table of dataset options")
    options: Mapping[str, object] = raw_options  # a TOML table: string keys
    if data_name in FILE_DATASETS:
        if options:
            data_t.fail(
                "options", options, f"no [data.options] for {data_name!r}: its keys go in [data]"
            )
        options = _file_options(data_t, path, data_name)
    data = DataConfig(
        name=data_name,
        data_dir=data_t.str("data_dir", None),
        options=dict(options),
        max_train=data_t.int("max_train", None, low=1),
        max_val=data_t.int("max_val", None, low=1),
        max_test=data_t.int("max_test", None, low=1),
    )
    data_t.close()

    # A table left out is chosen from the data when the study is prepared; until then it
    # holds a placeholder (the smallest seed, one epoch) so every bound below can be checked.
    if not top.has("seed"):
        auto.update({"seed"} | {t for t in ("search", "baselines") if not top.has(t)})
    if not top.has("train"):
        auto.add("train")
    seed_t = top.table("seed")
    seed_layers = (
        (DenseLayer(width=1),)
        if "seed" in auto
        else _layers(seed_t.get("layers"), "seed.layers", path)
    )
    activation: Activation = seed_t.str("activation", "relu", choices=ACTIVATIONS)
    seed_budget = 1 if "seed" in auto else None
    seed_net = SeedConfig(
        seed_layers, activation, _train_config(seed_t, epochs_default=seed_budget)
    )
    seed_t.close()

    train_t = top.table("train")
    train = _train_config(train_t, epochs_default=1 if "train" in auto else None)
    train_t.close()

    s = top.table("search")
    ops_raw = s.get("operations")
    ops: tuple[Operation, ...] = SearchSpace.operations
    if ops_raw is not None:
        valid = get_args(Operation)
        if not isinstance(ops_raw, list) or not ops_raw or not all(o in valid for o in ops_raw):
            s.fail("operations", ops_raw, "a non-empty list from " + ", ".join(valid))
        if len(set(ops_raw)) != len(ops_raw):
            s.fail("operations", ops_raw, "no repeated operation")
        ops = tuple(ops_raw)
    search = SearchSpace(
        operations=ops,
        max_ops=s.int("max_ops", _SEARCH.max_ops, low=1),
        parents=s.str("parents", _SEARCH.parents, choices=get_args(ParentPolicy)),
        top_k=s.int("top_k", _SEARCH.top_k, low=1),
        max_width=s.int("max_width", _SEARCH.max_width, low=1),
        max_widen_factor=s.float(
            "max_widen_factor", _SEARCH.max_widen_factor, low=1.0, strict=True
        ),
        min_widen_factor=s.float("min_widen_factor", _SEARCH.min_widen_factor, low=1.0),
        max_depth=s.int("max_depth", _SEARCH.max_depth, low=1),
        noise=s.float("noise", _SEARCH.noise),
        lam=s.range("lam", _SEARCH.lam),
        decay=s.range("decay", _SEARCH.decay),
        compress_start_factor=s.range(
            "compress_start_factor", _SEARCH.compress_start_factor, low=1.0, strict=False
        ),
        gate_lr=s.range("gate_lr", _SEARCH.gate_lr),
        lr=s.range("lr", _SEARCH.lr),
        dropout=s.range("dropout", _SEARCH.dropout, strict=False),
    )
    if max(lay.size for lay in seed_layers) > search.max_width:
        s.fail(
            "max_width",
            search.max_width,
            f"at least the seed's widest layer ({max(lay.size for lay in seed_layers)})",
        )
    if search.min_widen_factor > search.max_widen_factor:
        s.fail(
            "min_widen_factor",
            search.min_widen_factor,
            f"at most max_widen_factor ({search.max_widen_factor:g})",
        )
    if len(seed_layers) > search.max_depth:
        s.fail("max_depth", search.max_depth, f"at least the seed's depth ({len(seed_layers)})")
    if search.dropout[1] >= 1.0:
        s.fail("dropout", list(search.dropout), "[low, high] with 0 <= low <= high < 1")
    s.close()

    b = top.table("baselines")
    scales_raw = b.get("scales") or []
    if not isinstance(scales_raw, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in scales_raw
    ):
        b.fail("scales", scales_raw, "a list of positive numbers")
    archs_raw = b.get("architectures") or []
    if not isinstance(archs_raw, list):
        b.fail("architectures", archs_raw, "a list of layer lists")
    baselines = BaselineConfig(
        scales=tuple(float(x) for x in scales_raw),
        architectures=tuple(
            _layers(a, f"baselines.architectures[{i}]", path) for i, a in enumerate(archs_raw)
        ),
        include_seed=b.bool("include_seed", _BASELINES.include_seed),
        reference=b.str("reference", _BASELINES.reference, choices=get_args(BaselineReference)),
    )
    b.close()

    sampler_t = top.table("sampler")
    sampler = Component(sampler_t.str("name", "tpe", choices=SAMPLERS), sampler_t.rest())
    pruner_t = top.table("pruner")
    pruner = Component(pruner_t.str("name", "baseline", choices=PRUNERS), pruner_t.rest())
    top.close()

    return StudyConfig(
        path=path,
        name=name,
        storage=storage,
        artifacts=artifacts,
        n_trials=n_trials,
        timeout=timeout,
        seed=seed,
        objective=objective,
        minimize_params=second == "params",
        device=device,
        data=data,
        seed_net=seed_net,
        train=train,
        search=search,
        baselines=baselines,
        sampler=sampler,
        pruner=pruner,
        cohort=cohort,
        overrides={k: v for k, v in (overrides or {}).items() if v is not None},
        auto=frozenset(auto),
    )
