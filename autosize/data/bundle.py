"""The in-memory form every dataset takes: :class:`DataBundle`.

Splits are plain tensors, already preprocessed, so the training loop can move
them to the device once and slice them; there are no per-sample Dataset objects
on the training path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = ["DataBundle", "Preprocessing", "Split", "Task", "target_scaling"]

Task = Literal["classification", "regression"]
Split = tuple[torch.Tensor, torch.Tensor]
SplitName = Literal["train", "val", "test"]

JSONScalar = str | int | float | bool | None


@dataclass(frozen=True)
class Preprocessing:
    """What was done to raw inputs, with the statistics needed to do it again.

    ``steps`` is a JSON-safe description (for export), e.g. for an image set
    ``{"scale": 1/255, "mean": 0.1307, "std": 0.3081}`` or for a table the
    one-hot categories and the per-column mean and standard deviation. All
    statistics come from the training split only.
    """

    kind: str
    steps: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, **dict(self.steps)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Preprocessing:
        data = dict(data)
        kind = str(data.pop("kind"))
        return cls(kind=kind, steps=data)


@dataclass(frozen=True, eq=False)
class DataBundle:
    """Train, validation and test splits of one dataset, ready for training.

    Features are float32; labels are int64 for classification and float32 of
    shape ``(n,)`` for regression. Regression targets stay in their natural
    unit (e.g. dB for airfoil): models rescale their output with
    ``target_mean`` / ``target_std`` (see ``ArchSpec.target_shift/scale``), so
    reported metrics are in that unit.
    """

    name: str
    task: Task
    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]
    n_outputs: int
    preprocessing: Preprocessing
    target_mean: float = 0.0
    target_std: float = 1.0
    # The first numeric_features input columns are numeric values (standardised), the rest
    # one-hot codes or flags: what a seed's ``embedding`` embeds. 0 for images and all-one-hot data.
    numeric_features: int = 0
    # Free-form provenance worth reporting, e.g. {"test_source": "generated"} for poker.
    notes: Mapping[str, JSONScalar] = field(default_factory=dict)

    def split(self, name: SplitName) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'val' or 'test'")
        return getattr(self, name)

    @property
    def sizes(self) -> dict[str, int]:
        return {s: int(self.split(s)[0].shape[0]) for s in ("train", "val", "test")}

    def subset(
        self, *, train: int | None = None, val: int | None = None, test: int | None = None
    ) -> DataBundle:
        """A smaller bundle with the first ``n`` rows of each split (for quick runs and tests)."""
        from dataclasses import replace

        def cut(split: Split, n: int | None) -> Split:
            return split if n is None else (split[0][:n], split[1][:n])

        return replace(
            self, train=cut(self.train, train), val=cut(self.val, val), test=cut(self.test, test)
        )

    def summary(self) -> str:
        s = self.sizes
        shape = "x".join(str(d) for d in self.input_shape)
        return (
            f"{self.name}: {self.task}, input {shape}, {self.n_outputs} outputs, "
            f"train {s['train']} / val {s['val']} / test {s['test']}"
        )


def target_scaling(y_train: torch.Tensor, task: Task) -> tuple[float, float]:
    """``(target_mean, target_std)`` for a bundle: the training targets' mean and population
    standard deviation for regression (a constant target gets 1.0), ``(0.0, 1.0)`` else."""
    if task != "regression":
        return 0.0, 1.0
    y = y_train.double()
    std = float(y.std(unbiased=False))
    return float(y.mean()), std if std > 0 else 1.0
