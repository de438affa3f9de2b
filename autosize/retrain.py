"""The from-scratch control (``autosize train``): an exported architecture trained again
from random initialisation on its dataset, with its recorded hyperparameters and budget,
so a user can see what the warm start bought."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from autosize.errors import DataError
from autosize.export_format import ARCHITECTURE_FILE, TrainingRecord, read_record

__all__ = ["ScratchResult", "train_from_scratch"]


@dataclass(frozen=True)
class ScratchResult:
    """An exported architecture trained from random initialisation (``autosize train``)."""

    study: str
    trial: int
    architecture: str
    params: int
    seed: int
    training: TrainingRecord
    val: Mapping[str, float]
    test: Mapping[str, float]
    # The exported (searched) network's metrics, for comparison.
    exported_val: Mapping[str, float]
    exported_test: Mapping[str, float]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def train_from_scratch(
    path: str | Path,
    *,
    epochs: int | None = None,
    max_seconds: float | None = None,
    seed: int | None = None,
    device: str = "auto",
) -> ScratchResult:
    """Train the architecture of an export from scratch on its dataset with its hyperparameters.

    The fixed-size control: same architecture, same budget (``epochs`` /
    ``max_seconds`` override the recorded budget), random initialisation.
    """
    import time

    from autosize.data import load_dataset
    from autosize.models import build_model
    from autosize.optim import optimizer_name
    from autosize.seeds import derive_seed
    from autosize.train import evaluate, fit

    record, folder = read_record(path)
    spec = record.arch_spec(source=str(folder / ARCHITECTURE_FILE))
    d = record.dataset
    bundle = load_dataset(d.name, data_dir=d.data_dir, seed=d.seed, **dict(d.options))
    recorded = d.notes.get("sha256")  # your own table's files, as the study read them
    if recorded is not None and bundle.notes.get("sha256") != recorded:
        files = d.options.get("path") or d.name
        raise DataError(
            f"{files}: the data changed since trial {record.trial} was trained (sha256 "
            f"{bundle.notes.get('sha256')} now, {recorded} then): the splits and preprocessing "
            "would differ; train on the files the study used"
        )
    if d.max_train or d.max_val or d.max_test:
        bundle = bundle.subset(train=d.max_train, val=d.max_val, test=d.max_test)
    t = record.training
    budget_epochs = epochs if epochs is not None else t.epochs
    budget_seconds = max_seconds if max_seconds is not None else t.max_seconds
    if epochs is not None and max_seconds is None:
        budget_seconds = None
    if max_seconds is not None and epochs is None:
        budget_epochs = None
    budget = replace(
        t.budget(),
        epochs=budget_epochs,
        max_seconds=budget_seconds,
        optimizer=optimizer_name(t.optimizer),  # a name read from JSON
    )
    # Its own stream: never a baseline's or a trial's initialisation (autosize.seeds).
    seed = derive_seed(d.seed, "retrain", record.trial) if seed is None else seed
    model = build_model(spec, seed=seed)
    start = time.perf_counter()
    history = fit(
        model,
        bundle,
        device=device,
        seed=seed,
        callbacks=budget.schedule_callbacks(budget_seconds),
        **budget.training_kwargs(max_seconds=budget_seconds),  # amp, tf32: on a GPU only
    )
    seconds = time.perf_counter() - start
    return ScratchResult(
        study=record.study,
        trial=record.trial,
        architecture=spec.summary(),
        params=spec.param_count(),
        seed=seed,
        training=replace(
            t,
            epochs=budget_epochs,
            max_seconds=budget_seconds,
            epochs_run=len(history.epochs),
            seconds=round(seconds, 3),
            stopped=history.stopped,
        ),
        val=evaluate(model, bundle, "val", device=device),
        test=evaluate(model, bundle, "test", device=device),
        exported_val=record.val,
        exported_test=record.test,
    )
