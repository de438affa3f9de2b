"""Study configs: one TOML file per study, read and checked into the frozen dataclasses
of :mod:`autosize.search.study_config` (re-exported here).

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
from dataclasses import replace
from pathlib import Path
from typing import Literal, get_args

from autosize.errors import ConfigError, SpecError
from autosize.models import (
    ACTIVATIONS,
    IDEMPOTENT_ACTIVATIONS,
    Activation,
    DenseLayer,
    Layer,
    layer_from_dict,
)
from autosize.search.artifacts import artifact_location
from autosize.search.components import (
    PRUNER_CLASSES,
    PRUNERS,
    SAMPLER_CLASSES,
    SAMPLERS,
    component_class,
)
from autosize.search.study_config import (
    METRIC_KEY,
    BaselineConfig,
    BaselineReference,
    Component,
    DataConfig,
    EmbeddingConfig,
    Objective,
    Operation,
    ParentPolicy,
    Precision,
    Schedule,
    SearchSpace,
    SeedConfig,
    StudyConfig,
    TrainConfig,
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


def _embedding_config(seed_t: Table) -> EmbeddingConfig:
    """``[seed] embedding = { type = "periodic", frequencies = 16, width = 16, sigma = 1.0 }``."""
    if not isinstance(seed_t.get("embedding"), dict):
        seed_t.fail("embedding", seed_t.get("embedding"), 'a table such as { type = "periodic" }')
    emb_t = seed_t.table("embedding")
    emb_t.str("type", "periodic", choices=("periodic",))
    default = EmbeddingConfig()
    out = EmbeddingConfig(
        frequencies=emb_t.int("frequencies", default.frequencies, low=1),
        width=emb_t.int("width", default.width, low=1),
        sigma=emb_t.float("sigma", default.sigma, strict=True),
        features=emb_t.int("features", None, low=1),
    )
    emb_t.close()
    return out


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
        precision=t.str("precision", _TRAIN.precision, choices=get_args(Precision)),
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
        if t.get("identifiers") is not None:  # [] too: no column is an identifier
            options["identifiers"] = _columns(t, "identifiers")
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
    # A folder (relative to the config's) or s3://BUCKET/PREFIX.
    artifacts = artifact_location(
        study.str("artifacts", None) or state_dir / f"{name}-artifacts",
        where=f"{path}: [study] artifacts",
        base=path.resolve().parent,
    )
    n_trials = study.int("n_trials", None, low=1)
    timeout = study.float("timeout", None, strict=True)
    if n_trials is None and timeout is None:
        study.fail("n_trials", None, "n_trials and/or timeout")
    seed = study.int("seed", 0, low=0)
    auto: set[str] = set()  # the parts chosen from the data (autosize.search.defaults)
    if not study.has("objective"):
        auto.add("objective")
    objective: Objective = study.str("objective", "val_accuracy", choices=get_args(Objective))
    second = study.str("second_objective", None, choices=("params",))
    device = study.str("device", "auto")
    given = study.get("cohort")
    cohort: int | Literal["auto"] = "auto"
    if isinstance(given, int) and not isinstance(given, bool) and given >= 1:
        cohort = given
    elif given is not None and given != "auto":
        study.fail("cohort", given, 'an integer >= 1 or "auto"')
    halving = study.bool("halving", False)
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
    embedding = _embedding_config(seed_t) if seed_t.has("embedding") else None
    seed_net = SeedConfig(
        seed_layers,
        activation,
        _train_config(seed_t, epochs_default=seed_budget),
        embedding=embedding,
    )
    seed_t.close()

    train_t = top.table("train")
    train = _train_config(train_t, epochs_default=1 if "train" in auto else None)
    train_t.close()

    s = top.table("search")
    ops_raw = s.get("operations")
    ops: tuple[Operation, ...] = SearchSpace.operations
    # Net2DeeperNet's identity layer keeps the function only for phi(phi(x)) == phi(x).
    deepens = activation in IDEMPOTENT_ACTIVATIONS
    if ops_raw is not None:
        valid = get_args(Operation)
        if not isinstance(ops_raw, list) or not ops_raw or not all(o in valid for o in ops_raw):
            s.fail("operations", ops_raw, "a non-empty list from " + ", ".join(valid))
        if len(set(ops_raw)) != len(ops_raw):
            s.fail("operations", ops_raw, "no repeated operation")
        if "deepen" in ops_raw and not deepens:
            s.fail(
                "operations",
                ops_raw,
                f"no 'deepen' with [seed] activation {activation!r}: Net2DeeperNet's identity "
                f"layer keeps the function only for {', '.join(sorted(IDEMPOTENT_ACTIVATIONS))}",
            )
        ops = tuple(ops_raw)
    elif not deepens:
        ops = tuple(o for o in ops if o != "deepen")  # the default: what this activation allows
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
        grow_budget=s.float("grow_budget", _SEARCH.grow_budget, low=1.0),
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

    # With the search space chosen from the data, the policy that searches it is chosen too
    # (the population sampler, no pruner): a table the config gives is kept as given.
    if "search" in auto:
        auto.update(t for t in ("sampler", "pruner") if not top.has(t))
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
        halving=halving,
        overrides={k: v for k, v in (overrides or {}).items() if v is not None},
        auto=frozenset(auto),
    )
