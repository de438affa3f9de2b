"""What one training run did, epoch by epoch: :class:`History` and :class:`EpochRecord`.

A history is plain data, JSON-safe (skorch's history is the model): it is saved
next to trial artifacts, read back by the report, and compared across runs.
Non-finite floats (a diverged loss) are written as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"`` so the file stays valid JSON, and are read
back as floats.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

__all__ = ["JSON", "EpochRecord", "History", "Metric", "StopCause"]

JSON: TypeAlias = "str | int | float | bool | list[JSON] | dict[str, JSON] | None"
Metric = Literal["accuracy", "rmse"]
StopCause = Literal["epochs", "time", "callback", "diverged"]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode(value: JSON | tuple[JSON, ...]) -> JSON:
    """Make ``value`` strict-JSON safe: non-finite floats become strings, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _float(value: str | float) -> float:
    if isinstance(value, str):
        return _NONFINITE[value]
    return float(value)


@dataclass(frozen=True)
class EpochRecord:
    """One epoch (or the part of it that ran before a time budget or divergence cut it).

    ``seconds`` is the wall time of this epoch alone (training, validation and
    callbacks); ``elapsed`` is the wall time since ``fit`` started training, so a
    learning curve against time needs no cumulative sum. ``examples_per_second``
    counts training examples over the training phase only (validation excluded).
    ``train_loss`` is the task loss (cross-entropy or MSE) averaged over the
    examples seen; a callback's penalty is reported separately in
    ``train_penalty`` (averaged over batches; 0.0 when no callback adds one).
    ``extra`` is for callbacks (e.g. layer widths); it must hold JSON data.
    """

    epoch: int  # 1-based count of epochs run so far
    train_loss: float
    val_loss: float
    val_metric: float  # accuracy (classification) or RMSE (regression)
    seconds: float
    elapsed: float
    lr: float
    examples_per_second: float
    train_examples: int = 0
    train_penalty: float = 0.0
    extra: dict[str, JSON] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "epoch": self.epoch,
            "train_loss": _encode(self.train_loss),
            "val_loss": _encode(self.val_loss),
            "val_metric": _encode(self.val_metric),
            "seconds": self.seconds,
            "elapsed": self.elapsed,
            "lr": self.lr,
            "examples_per_second": self.examples_per_second,
            "train_examples": self.train_examples,
            "train_penalty": _encode(self.train_penalty),
            "extra": _encode(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochRecord:
        """The record ``to_dict`` wrote (read back with json.loads, so its values are Any)."""
        return cls(
            epoch=int(data["epoch"]),
            train_loss=_float(data["train_loss"]),
            val_loss=_float(data["val_loss"]),
            val_metric=_float(data["val_metric"]),
            seconds=_float(data["seconds"]),
            elapsed=_float(data["elapsed"]),
            lr=_float(data["lr"]),
            examples_per_second=_float(data["examples_per_second"]),
            train_examples=int(data.get("train_examples", 0)),
            train_penalty=_float(data.get("train_penalty", 0.0)),
            extra=dict(data.get("extra") or {}),
        )


@dataclass
class History:
    """Every epoch of one ``fit`` and why it stopped.

    ``stopped`` says which limit ended training: ``"epochs"`` (the epoch budget
    ran out), ``"time"`` (``max_seconds``), ``"callback"`` (a callback's
    ``on_epoch_end`` returned True) or ``"diverged"`` (a non-finite loss; the
    diverged epoch's record is kept). ``stop_reason`` is a one-line detail.
    ``restored_epoch`` is the epoch whose weights ``fit(restore_best=True)``
    loaded back, or None.
    """

    task: Literal["classification", "regression"]
    metric: Metric
    epochs: list[EpochRecord] = field(default_factory=list)
    stopped: StopCause = "epochs"
    stop_reason: str = ""
    device: str = "cpu"
    restored_epoch: int | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def is_better(self, value: float, than: float | None) -> bool:
        """Whether validation metric ``value`` beats ``than`` (None: nothing yet); NaN never wins."""
        if not math.isfinite(value):
            return False
        if than is None:
            return True
        return value > than if self.higher_is_better else value < than

    @property
    def best(self) -> EpochRecord | None:
        """The epoch with the best validation metric (earliest on ties), or None."""
        best: EpochRecord | None = None
        for record in self.epochs:
            if self.is_better(record.val_metric, None if best is None else best.val_metric):
                best = record
        return best

    @property
    def best_epoch(self) -> int | None:
        best = self.best
        return None if best is None else best.epoch

    @property
    def best_val_metric(self) -> float | None:
        best = self.best
        return None if best is None else best.val_metric

    @property
    def last(self) -> EpochRecord | None:
        return self.epochs[-1] if self.epochs else None

    def column(self, name: str) -> list[float]:
        """One field across epochs, e.g. ``history.column("val_loss")`` for a curve."""
        return [getattr(record, name) for record in self.epochs]

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "task": self.task,
            "metric": self.metric,
            "stopped": self.stopped,
            "stop_reason": self.stop_reason,
            "device": self.device,
            "restored_epoch": self.restored_epoch,
            # Derived, written for readers of the file; ignored by from_dict.
            "best_epoch": self.best_epoch,
            "best_val_metric": _encode(self.best_val_metric),
            "epochs": [record.to_dict() for record in self.epochs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> History:
        """The history ``to_dict`` wrote (read back with json.loads, so its values are Any)."""
        restored = data.get("restored_epoch")
        return cls(
            task=data["task"],
            metric=data["metric"],
            epochs=[EpochRecord.from_dict(r) for r in data.get("epochs", [])],
            stopped=data.get("stopped", "epochs"),
            stop_reason=str(data.get("stop_reason", "")),
            device=str(data.get("device", "cpu")),
            restored_epoch=None if restored is None else int(restored),
        )

    def to_json(self, *, indent: int | None = 2) -> str:
        # allow_nan=False: fail loudly rather than write NaN, which is not JSON.
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> History:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
