"""Every sampler and pruner a study config may name, and the class each name builds.

The names a config accepts (:data:`SAMPLERS`, :data:`PRUNERS`) and the factories are this one
table; a class is written ``"module:Class"`` and imported only when a study is made, so loading
a config does not import Optuna.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["PRUNERS", "PRUNER_CLASSES", "SAMPLERS", "SAMPLER_CLASSES", "component_class"]

SAMPLER_CLASSES: Mapping[str, str] = {
    "tpe": "optuna.samplers:TPESampler",
    "random": "optuna.samplers:RandomSampler",
    "gp": "optuna.samplers:GPSampler",
    "cmaes": "optuna.samplers:CmaEsSampler",
    "qmc": "optuna.samplers:QMCSampler",
    "nsga2": "optuna.samplers:NSGAIISampler",
    "nsga3": "optuna.samplers:NSGAIIISampler",
    "population": "autosize.search.policy.population:PopulationSampler",
}
PRUNER_CLASSES: Mapping[str, str] = {
    "baseline": "autosize.search.policy.pruner:BaselinePruner",
    "median": "optuna.pruners:MedianPruner",
    "percentile": "optuna.pruners:PercentilePruner",
    "successive_halving": "optuna.pruners:SuccessiveHalvingPruner",
    "hyperband": "optuna.pruners:HyperbandPruner",
    "wilcoxon": "optuna.pruners:WilcoxonPruner",
    # PatientPruner wraps another pruner, named by its "wrapped" key.
    "patient": "optuna.pruners:PatientPruner",
    "threshold": "optuna.pruners:ThresholdPruner",
    "none": "optuna.pruners:NopPruner",
}
SAMPLERS: tuple[str, ...] = tuple(SAMPLER_CLASSES)
PRUNERS: tuple[str, ...] = tuple(PRUNER_CLASSES)


def component_class(table: Mapping[str, str], name: str) -> type:
    """The class a sampler or pruner name stands for (imported now)."""
    import importlib

    module, _, attr = table[name].partition(":")
    cls: type = getattr(importlib.import_module(module), attr)  # the tables above name classes
    return cls
