"""The export format: an export folder's ``architecture.json`` record (what the network is,
the data and preprocessing its inputs need, how it was trained, its metrics and lineage) and
the names of the folder's files. Written by :mod:`autosize.export`, read by
:func:`autosize.predictor.load_model` and :mod:`autosize.retrain`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autosize.budget import Budget
from autosize.errors import StudyError
from autosize.models import ArchSpec
from autosize.train import PRECISIONS

__all__ = [
    "ARCHITECTURE_FILE",
    "FORMAT",
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "DatasetRecord",
    "ExportRecord",
    "TrainingRecord",
    "read_record",
]

FORMAT = "autosize-export/1"
ARCHITECTURE_FILE = "architecture.json"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class DatasetRecord:
    """How to load the data the network was trained on: ``load_dataset(name, data_dir, seed, **options)``
    then ``subset(train=max_train, val=max_val, test=max_test)``."""

    name: str
    task: str
    options: Mapping[str, object] = field(default_factory=dict)
    data_dir: str | None = None
    seed: int = 0
    max_train: int | None = None
    max_val: int | None = None
    max_test: int | None = None
    notes: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingRecord(Budget):
    """The trial's training budget (every :class:`~autosize.budget.Budget` field; in exports
    written before a field existed, its default) and what the run did."""

    epochs_run: int | None = None
    seconds: float | None = None
    stopped: str | None = None

    @classmethod
    def of(
        cls, budget: Budget, *, epochs_run: int | None, seconds: float | None, stopped: str | None
    ) -> TrainingRecord:
        return cls(
            **{f.name: getattr(budget, f.name) for f in fields(Budget)},
            epochs_run=epochs_run,
            seconds=seconds,
            stopped=stopped,
        )

    def budget(self) -> Budget:
        return Budget(**{f.name: getattr(self, f.name) for f in fields(Budget)})


@dataclass(frozen=True)
class ExportRecord:
    """What ``architecture.json`` holds (``to_dict`` / ``from_dict`` round-trip)."""

    study: str
    trial: int
    role: str  # "baseline" or "warmstart"
    architecture: str
    spec: Mapping[str, object]
    params: int
    flops: int | None
    objective: str
    direction: str
    value: float | None
    values: tuple[float, ...]
    val: Mapping[str, float]
    test: Mapping[str, float]
    dataset: DatasetRecord
    preprocessing: Mapping[str, object]
    training: TrainingRecord
    operation: str
    parent: int | str | None
    lineage: tuple[str, ...]
    baseline_trial: int | None = None
    gain: float | None = None
    weights: str = WEIGHTS_FILE
    # The other members of an ensemble export: folders relative to this one.
    ensemble: tuple[str, ...] = ()
    format: str = FORMAT

    def arch_spec(self, *, source: str = ARCHITECTURE_FILE) -> ArchSpec:
        return ArchSpec.from_dict(self.spec, source=f"{source}: spec")

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["lineage"] = list(self.lineage)
        out["values"] = list(self.values)
        out["ensemble"] = list(self.ensemble)
        return {"format": out.pop("format"), **out}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], *, source: str = ARCHITECTURE_FILE
    ) -> ExportRecord:
        if not isinstance(data, Mapping):
            raise StudyError(f"{source}: expected a JSON object")
        if data.get("format") != FORMAT:
            raise StudyError(
                f"{source}: not an autosize export (format {data.get('format')!r}, expected {FORMAT!r})"
            )
        try:
            # JSON values: the constructors check the keys (TypeError), not the values' types.
            fields: dict[str, Any] = dict(data)
            fields["dataset"] = DatasetRecord(**fields["dataset"])
            fields["training"] = TrainingRecord(**fields["training"])
            if fields["training"].precision not in PRECISIONS:
                listed = ", ".join(repr(p) for p in PRECISIONS)
                raise StudyError(
                    f"{source}: training.precision {fields['training'].precision!r} is not one of {listed}"
                )
            fields["lineage"] = tuple(fields.get("lineage") or ())
            fields["values"] = tuple(fields.get("values") or ())
            fields["ensemble"] = tuple(str(m) for m in fields.get("ensemble") or ())
            return cls(**fields)
        except (KeyError, TypeError) as exc:
            raise StudyError(f"{source}: malformed export record ({exc})") from None


def read_record(path: str | Path) -> tuple[ExportRecord, Path]:
    """The record of an export folder (or its ``architecture.json``) and the folder."""
    path = Path(path)
    file = path / ARCHITECTURE_FILE if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(
            f"{file}: no such file (expected an export folder or its {ARCHITECTURE_FILE})"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StudyError(f"{file}: cannot read ({exc})") from None
    return ExportRecord.from_dict(data, source=str(file)), file.parent
