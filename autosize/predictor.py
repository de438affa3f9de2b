"""An exported network with the preprocessing its inputs need: what :func:`autosize.load_model` returns.

:class:`Predictor` is an ``nn.Module`` whose ``forward`` is the network's (tensors in,
raw outputs out, exactly as before), plus ``predict`` / ``predict_proba`` on raw
data: for an export of ``[data] name = "table"`` a DataFrame (or a CSV / Parquet file)
with the training file's columns, the target absent or ignored, turned into inputs by
the recorded :class:`~autosize.data.table_transform.TableTransform` (plain JSON, no pickle,
no data needed). Predictions are the original class labels or values in the target's
own unit. For the six benchmark datasets ``predict`` takes preprocessed tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from autosize.checkpoint import load_network
from autosize.errors import DataError, StudyError
from autosize.export_format import ARCHITECTURE_FILE, ExportRecord, read_record
from autosize.models import ArchSpec

if TYPE_CHECKING:
    import pandas as pd

    from autosize.data.image_files import ImageTransform
    from autosize.data.table_transform import TableTransform

__all__ = ["Predictor", "load_model"]

BATCH = 4096


class Predictor(nn.Module):
    """A loaded export: the network (``.net``), its ``.spec`` and its ``.record``."""

    def __init__(self, net: nn.Module, spec: ArchSpec, record: ExportRecord) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.record = record
        self._table: TableTransform | None = None
        self._images: ImageTransform | None = None
        steps = {k: v for k, v in record.preprocessing.items() if k != "kind"}
        if record.preprocessing.get("kind") == "table":
            from autosize.data.table_transform import TableTransform

            self._table = TableTransform.from_dict(steps)
        elif record.preprocessing.get("kind") == "images":
            from autosize.data.image_files import ImageTransform

            self._images = ImageTransform.from_dict(steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @property
    def task(self) -> str:
        return self.record.dataset.task

    @property
    def classes(self) -> tuple[str | int, ...] | None:
        """The class labels, in the order of the network's outputs (None for regression)."""
        if self._images is not None:
            return self._images.classes
        return None if self._table is None else self._table.classes

    @property
    def target(self) -> str | None:
        if self._images is not None:
            return "label" if self._images.task == "classification" else "value"
        return None if self._table is None else self._table.target

    @property
    def replays(self) -> bool:
        """Whether predict takes raw data (a table or images export)."""
        return self._table is not None or self._images is not None

    @property
    def columns(self) -> tuple[str, ...] | None:
        """The input columns a table export expects."""
        return None if self._table is None else self._table.columns

    # ------------------------------------------------------------------ inputs

    def read_table(self, path: str | Path, *, text: Sequence[str] = ()) -> pd.DataFrame:
        """A table export's rows from a CSV or Parquet file, its text columns (and those in
        ``text``: "007" stays "007") read as text."""
        from autosize.data.table import read_table

        if self._table is None:
            raise StudyError("read_table: this export was not trained on a table")
        return read_table(path, text=(*self._table.text, *text))

    def read_images(self, path: str | Path) -> tuple[np.ndarray, tuple[str, ...]]:
        """An images export's raw inputs from a folder or an .npz, and their names."""
        if self._images is None:
            raise StudyError("read_images: this export was not trained on images")
        images = self._images.read(path)
        return images.x, images.names

    def inputs(self, data: object, *, source: str = "input") -> torch.Tensor:
        """The network's input tensor for ``data`` (raw rows for a table export; for an
        images export a folder of images, an .npz with ``x``, or an array of [0, 1] pixels)."""
        if self._images is not None:
            if isinstance(data, str | Path):
                data = self._images.read(data).x
            if isinstance(data, torch.Tensor):
                data = data.numpy()
            return torch.from_numpy(self._images.transform(np.asarray(data), source=source))
        if self._table is None:
            if isinstance(data, torch.Tensor):
                return data.float()
            if isinstance(data, np.ndarray):
                return torch.from_numpy(np.asarray(data, dtype=np.float32))
            raise StudyError(
                f"this export was trained on {self.record.dataset.name!r}, whose preprocessing "
                "predict cannot replay: pass preprocessed tensors"
            )
        return torch.from_numpy(self._table.transform(self._frame(data), source=source))

    def _frame(self, data: object) -> pd.DataFrame:
        import pandas as pd

        assert self._table is not None
        if isinstance(data, str | Path):
            return self.read_table(data)
        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, Mapping):
            columns = dict(data)
            if columns and all(np.ndim(v) == 0 for v in columns.values()):
                return pd.DataFrame([columns])  # one row: {"sqft": 1200, "city": "X"}
            try:
                return pd.DataFrame(columns)
            except ValueError as exc:  # columns of different lengths
                raise DataError(f"expected one row or columns of one length: {exc}") from None
        array = np.asarray(data)
        if array.ndim != 2 or array.shape[1] != len(self._table.columns):
            raise DataError(
                f"expected a DataFrame with columns {', '.join(self._table.columns)} or an "
                f"array of {len(self._table.columns)} columns, got shape {array.shape}"
            )
        return pd.DataFrame(array, columns=list(self._table.columns))

    # ------------------------------------------------------------------ outputs

    @torch.no_grad()
    def outputs(self, data: object, *, source: str = "input") -> torch.Tensor:
        """Raw network outputs (logits, or values in the target's unit), on the CPU."""
        x = self.inputs(data, source=source)
        was_training = self.net.training
        self.net.eval()
        device = next(self.net.parameters()).device
        try:
            out = [self.net(x[i : i + BATCH].to(device)).cpu() for i in range(0, len(x), BATCH)]
        finally:
            self.net.train(was_training)
        return torch.cat(out) if out else torch.zeros((0, self.spec.n_outputs))

    def predict_proba(self, data: object, *, source: str = "input") -> np.ndarray:
        """Class probabilities, one column per class in :attr:`classes` order."""
        if self.task != "classification":
            raise StudyError("predict_proba: this export is a regression model")
        return torch.softmax(self.outputs(data, source=source).double(), dim=1).numpy()

    def predict(self, data: object, *, source: str = "input") -> np.ndarray:
        """Predicted labels (the original class names) or values (the target's unit)."""
        out = self.outputs(data, source=source)
        if self.task != "classification":
            return out.squeeze(1).double().numpy()
        index = out.argmax(dim=1).numpy()
        if self.classes is None:
            return index
        return np.asarray(self.classes, dtype=object)[index]

    def predict_frame(
        self, data: object, *, proba: bool = False, source: str = "input"
    ) -> pd.DataFrame:
        """Predictions as a DataFrame: the target column, then ``proba_<class>`` columns."""
        import pandas as pd

        out = self.outputs(data, source=source)
        name = self.target or "prediction"
        if self.task != "classification":
            if proba:
                raise StudyError("--proba: this export is a regression model")
            return pd.DataFrame({name: out.squeeze(1).double().numpy()})
        classes = self.classes if self.classes is not None else tuple(range(out.shape[1]))
        frame = pd.DataFrame({name: np.asarray(classes, dtype=object)[out.argmax(dim=1).numpy()]})
        if proba:
            p = torch.softmax(out.double(), dim=1).numpy()
            for j, c in enumerate(classes):
                frame[f"proba_{c}"] = p[:, j]
        return frame


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> Predictor:
    """Rebuild an exported network (eval mode) from its folder or its ``architecture.json``.

    The result is a :class:`~autosize.predictor.Predictor`: called on tensors it is the
    network; ``predict(dataframe)`` / ``predict_proba`` apply the recorded preprocessing
    of a table export to raw rows and answer in the original labels or unit.
    """
    from autosize.train import resolve_device

    device = resolve_device(device)  # "auto", or a one-line error for a device not here
    record, folder = read_record(path)
    spec, model = _load_one(record, folder, device)
    if record.ensemble:
        from autosize.ensemble import Ensemble

        members = [model]
        for name in record.ensemble:
            member, where = read_record(folder / name)
            if member.preprocessing != record.preprocessing or member.study != record.study:
                raise StudyError(
                    f"{where}: an ensemble member of another study or preprocessing than {folder}"
                )
            members.append(_load_one(member, where, device)[1])
        model = Ensemble(members, classification=record.dataset.task == "classification")
    return Predictor(model, spec, record).eval()


def _load_one(
    record: ExportRecord, folder: Path, device: torch.device
) -> tuple[ArchSpec, nn.Module]:
    spec = record.arch_spec(source=str(folder / ARCHITECTURE_FILE))
    model, stored = load_network(folder / record.weights, device=device)
    if stored != spec:
        raise StudyError(
            f"{folder}: {ARCHITECTURE_FILE} describes {spec.summary()} but {record.weights} holds {stored.summary()}"
        )
    return spec, model
