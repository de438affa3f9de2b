"""Study configs: one TOML file per study, read and checked into the frozen dataclasses
of :mod:`autosize.search.config.schema` (the package re-exports both).

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
from dataclasses import Field, fields, replace
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from autosize.budget import Budget
from autosize.errors import ConfigError, SpecError
from autosize.models import (
    ACTIVATIONS,
    IDEMPOTENT_ACTIVATIONS,
    Activation,
    DenseLayer,
    Layer,
    layer_from_dict,
)
from autosize.search.config.components import (
    PRUNERS,
    SAMPLERS,
)
from autosize.search.config.data import data_config
from autosize.search.config.schema import (
    BaselineConfig,
    BaselineReference,
    Component,
    EmbeddingConfig,
    Objective,
    Operation,
    ParentPolicy,
    SearchSpace,
    SeedConfig,
    StudyConfig,
    TrainConfig,
)
from autosize.search.config.toml_table import Table
from autosize.search.store.artifacts import artifact_location

__all__ = ["config_from_dict", "load_config"]

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
    """A [seed] or [train] table: every field of the budget record, each checked as its
    type and ``metadata`` say (:class:`~autosize.budget.Budget`)."""
    hints = get_type_hints(Budget)
    cfg = Budget(**{f.name: _budget_field(t, f, hints[f.name]) for f in fields(Budget)})
    if cfg.epochs is None and cfg.max_seconds is None:
        if epochs_default is None:
            t.fail("epochs", None, "a budget: epochs and/or max_seconds")
        cfg = replace(cfg, epochs=epochs_default)
    return cfg


def _budget_field(t: Table, f: Field[Any], hint: object) -> Any:
    """One key of a budget table, read as its field's type says."""
    low, strict = f.metadata.get("low"), bool(f.metadata.get("strict", False))
    kinds = set(get_args(hint)) - {type(None)} if get_origin(hint) in (UnionType, Union) else {hint}
    if get_origin(hint) is Literal:
        return t.str(f.name, f.default, choices=get_args(hint))  # type: ignore[type-var]
    if kinds == {bool}:
        return t.bool(f.name, f.default)  # type: ignore[arg-type]
    if kinds == {int}:
        return t.int(f.name, f.default, low=low or 0)  # type: ignore[arg-type]
    if kinds == {float}:
        return t.float(f.name, f.default, low=low or 0.0, strict=strict)  # type: ignore[arg-type]
    raise TypeError(f"Budget.{f.name}: no reader for {hint!r}")  # a new field's type


def _seed_config(seed_t: Table, path: Path, auto: set[str]) -> SeedConfig:
    """``[seed]``: the seed network and its budget (a placeholder when chosen from the data)."""
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
    return seed_net


def _search_space(s: Table, activation: Activation, seed_layers: tuple[Layer, ...]) -> SearchSpace:
    """``[search]``, checked against the seed's activation, widths and depth."""
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
    return search


def _baseline_config(b: Table, path: Path) -> BaselineConfig:
    """``[baselines]``: the seed's widths scaled, and whole architectures."""
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
    return baselines


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


def _study_keys(study: Table, path: Path) -> dict[str, Any]:
    """``[study]``'s keys (with the command line's overrides) as StudyConfig's arguments."""
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
    return {
        "name": name,
        "storage": storage,
        "artifacts": artifacts,
        "n_trials": n_trials,
        "timeout": timeout,
        "seed": seed,
        "objective": objective,
        "minimize_params": second == "params",
        "device": device,
        "cohort": cohort,
        "halving": halving,
    }


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
    keys = _study_keys(study, path)
    auto: set[str] = set()  # the parts chosen from the data (autosize.search.config.defaults)
    if not study.has("objective"):
        auto.add("objective")
    study.close()

    data = data_config(top.table("data"), path)

    # A table left out is chosen from the data when the study is prepared; until then it
    # holds a placeholder (the smallest seed, one epoch) so every bound below can be checked.
    if not top.has("seed"):
        auto.update({"seed"} | {t for t in ("search", "baselines") if not top.has(t)})
    if not top.has("train"):
        auto.add("train")
    seed_net = _seed_config(top.table("seed"), path, auto)
    seed_layers, activation = seed_net.layers, seed_net.activation

    train_t = top.table("train")
    train = _train_config(train_t, epochs_default=1 if "train" in auto else None)
    train_t.close()

    search = _search_space(top.table("search"), activation, seed_layers)

    baselines = _baseline_config(top.table("baselines"), path)

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
        **keys,
        data=data,
        seed_net=seed_net,
        train=train,
        search=search,
        baselines=baselines,
        sampler=sampler,
        pruner=pruner,
        overrides={k: v for k, v in (overrides or {}).items() if v is not None},
        auto=frozenset(auto),
    )
