"""A study's config: the typed schema with every default written once (:mod:`.schema`), the
TOML reader that checks every key (:mod:`.reader`), the names of the samplers and pruners a
config may give (:mod:`.components`), and what a config leaves out, chosen from the data, the
seed's family and the wall budget (:mod:`.defaults`, applied once the data is loaded)."""

from __future__ import annotations

from autosize.search.config.components import (
    PRUNER_CLASSES,
    PRUNERS,
    SAMPLER_CLASSES,
    SAMPLERS,
    component_class,
)
from autosize.search.config.data import FILE_DATASETS
from autosize.search.config.reader import config_from_dict, load_config
from autosize.search.config.schema import (
    METRIC_KEY,
    BaselineConfig,
    BaselineReference,
    Component,
    DataConfig,
    EmbeddingConfig,
    Objective,
    Operation,
    SearchSpace,
    SeedConfig,
    StudyConfig,
    TrainConfig,
)

__all__ = [
    "FILE_DATASETS",
    "METRIC_KEY",
    "PRUNERS",
    "PRUNER_CLASSES",
    "SAMPLERS",
    "SAMPLER_CLASSES",
    "BaselineConfig",
    "BaselineReference",
    "Component",
    "DataConfig",
    "EmbeddingConfig",
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
