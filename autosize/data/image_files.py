"""Your own images (``[data] name = "images"``): a folder per class, or an ``.npz`` file.

Two layouts of ``path``:

* a folder with one sub-folder per class (torchvision's ImageFolder layout:
  ``path/cat/001.png``, ``path/dog/002.jpg``, ...); the classes are the sub-folder
  names, sorted. Channels are 1 when every image is greyscale, else 3 (RGB); the
  size is the most common one, and other images are resized to it (bilinear);
* an ``.npz`` file with arrays ``x`` (``N x H x W``, ``N x H x W x C`` or
  ``N x C x H x W``, C in 1 or 3) and ``y`` (class labels, or numbers for
  regression: the task is inferred as for a table unless ``task`` is given).

Splits as for a table: ``test_path`` / ``val_path`` (the same layout), else a
stratified ``test_fraction`` (fixed seed) and ``val_fraction`` (the study's seed).
Pixels are scaled to [0, 1] (uint8 values by 1/255) and normalised per channel with
the training split's mean and standard deviation. The preprocessing is plain JSON
(:class:`ImageTransform`); ``predict`` replays it on a folder of images, an
``.npz`` or an array.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from autosize.data.bundle import DataBundle, Preprocessing, Task, target_scaling
from autosize.data.columns import infer_task
from autosize.data.options import check_choice, check_fraction
from autosize.data.splits import TEST_SEED, holdout
from autosize.data.table_transform import as_text
from autosize.errors import DataError

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFilesOptions",
    "ImageTransform",
    "load_image_files",
    "read_images",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
FORMAT = "autosize-images/1"


@dataclass(frozen=True, kw_only=True)
class ImageFilesOptions:
    """Options of ``load_dataset("images", ...)`` (the ``[data]`` keys of a config)."""

    path: str | None = None
    task: Task | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    val_path: str | None = None
    test_path: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise DataError(f"option path={self.path!r} for dataset 'images': required (a string)")
        if self.task is not None:
            check_choice("images", "task", self.task, ("classification", "regression"))
        check_fraction("images", "val_fraction", self.val_fraction)
        check_fraction("images", "test_fraction", self.test_fraction)


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Images:
    """Raw images (float32 in [0, 1], N x C x H x W), their labels and file names."""

    x: np.ndarray
    labels: np.ndarray | None  # text labels (folders) or the npz y
    names: tuple[str, ...]


def _to_nchw(x: np.ndarray, path: Path) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif not (x.ndim == 4 and x.shape[1] in (1, 3)):
        raise DataError(
            f"{path}: array 'x' has shape {x.shape}; expected N x H x W, N x H x W x C "
            "or N x C x H x W with C = 1 or 3"
        )
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{path}: array 'x' holds {x.dtype}, not numbers")
    return x.astype(np.float32)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_images(
    path: str | Path,
    *,
    labelled: bool = True,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> Images:
    """An image folder (a sub-folder per class; with ``labelled=False`` the images may also
    lie in ``path`` itself) or an ``.npz`` with ``x`` (and ``y``)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{path}: expected an image folder or an .npz file with x and y arrays")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read as .npz ({exc})") from None
        if "x" not in arrays:
            raise DataError(f"{path}: no array 'x' (it has: {', '.join(arrays) or 'none'})")
        if labelled and "y" not in arrays:
            raise DataError(f"{path}: no array 'y' (it has: {', '.join(arrays)})")
        x = _to_nchw(arrays["x"], path)
        if len(x) == 0:
            raise DataError(f"{path}: array 'x' holds no images")
        y = arrays.get("y")
        if y is not None and labelled and (y.ndim != 1 or len(y) != len(x)):
            raise DataError(f"{path}: array 'y' has shape {y.shape}; expected ({len(x)},)")
        return Images(x, y if labelled else None, tuple(str(i) for i in range(len(x))))

    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, str | None]] = [(f, c) for c in classes for f in _image_files(path / c)]
    if not labelled:
        files = [(f, None) for f in _image_files(path)] + files
    if not files:
        raise DataError(
            f"{path}: no images (expected one sub-folder per class holding "
            f"{', '.join(IMAGE_SUFFIXES[:3])}, ... files)"
        )
    pictures: list[Image.Image] = []
    for f, _ in files:
        try:
            with Image.open(f) as opened:
                opened.load()
                pictures.append(opened.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{f}: not an image autosize can read ({exc})") from None
    if channels is None:
        channels = 1 if all(im.mode in ("L", "1", "I;16", "I", "F") for im in pictures) else 3
    if size is None:
        size = Counter(im.size for im in pictures).most_common(1)[0][0]  # (width, height)
    mode = "L" if channels == 1 else "RGB"
    planes: list[np.ndarray] = []  # C x H x W each
    for im in pictures:
        im = im.convert(mode)
        if im.size != size:
            im = im.resize(size, Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.float32) / 255.0
        planes.append(a[None] if channels == 1 else a.transpose(2, 0, 1))
    labels = np.asarray([c for _, c in files], dtype=object) if labelled else None
    return Images(np.stack(planes), labels, tuple(str(f) for f, _ in files))


# --------------------------------------------------------------------------- the transform


@dataclass(frozen=True)
class ImageTransform:
    """Per-channel normalisation of [0, 1] images, the input shape and the class labels."""

    shape: tuple[int, int, int]  # C, H, W
    mean: tuple[float, ...]
    std: tuple[float, ...]
    task: Task
    classes: tuple[str | int, ...] | None
    source: str = ""

    def transform(self, x: np.ndarray, *, source: str = "input") -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4 and x.shape[1:] != self.shape and x.shape[-1] == self.shape[0]:
            x = x.transpose(0, 3, 1, 2)
        if x.ndim == 3 and self.shape[0] == 1:
            x = x[:, None]
        if x.shape[1:] != self.shape:
            raise DataError(
                f"{source}: images of shape {tuple(x.shape[1:])}, the network takes {self.shape}"
            )
        mean = np.asarray(self.mean, dtype=np.float32)[None, :, None, None]
        std = np.asarray(self.std, dtype=np.float32)[None, :, None, None]
        return ((x - mean) / std).astype(np.float32)

    def read(self, path: str | Path) -> Images:
        """Unlabelled images from a folder or an .npz, resized to the training size."""
        return read_images(
            path, labelled=False, size=(self.shape[2], self.shape[1]), channels=self.shape[0]
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "shape": list(self.shape),
            "mean": list(self.mean),
            "std": list(self.std),
            "task": self.task,
            "classes": None if self.classes is None else list(self.classes),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageTransform:
        if data.get("format") != FORMAT:
            raise DataError(f"not an image preprocessing record (format {data.get('format')!r})")
        try:
            classes = data.get("classes")
            # ``data`` is a parsed JSON record (hence Any): its fields are taken as written,
            # a malformed one failing below as a TypeError that becomes a DataError.
            return cls(
                shape=tuple(data["shape"]),
                mean=tuple(data["mean"]),
                std=tuple(data["std"]),
                task=data["task"],
                classes=None if classes is None else tuple(classes),
                source=str(data.get("source", "")),
            )
        except (KeyError, TypeError) as exc:
            raise DataError(f"malformed image preprocessing record ({exc})") from None


# --------------------------------------------------------------------------- loading


def _classes(labels: np.ndarray, path: Path) -> tuple[tuple[str | int, ...], dict[str, int]]:
    text = as_text(pd.Series(labels))
    levels = sorted(set(text))
    integral = np.issubdtype(labels.dtype, np.number) and all(
        t.lstrip("-").isdigit() for t in levels
    )
    if integral:
        levels = sorted(levels, key=int)
    if len(levels) < 2:
        raise DataError(
            f"{path}: the images hold one class ({levels[0]!r}); a classifier needs two"
        )
    return tuple(int(t) if integral else t for t in levels), {t: i for i, t in enumerate(levels)}


def _encode(labels: np.ndarray, index: Mapping[str, int], path: Path, source: Path) -> np.ndarray:
    out = []
    for t in as_text(pd.Series(labels)):
        if t not in index:
            raise DataError(f"{path}: class {t!r} does not occur in {source}")
        out.append(index[t])
    return np.asarray(out, dtype=np.int64)


def load_image_files(root: Path, *, seed: int, options: ImageFilesOptions) -> DataBundle:
    del root  # the images name their own place
    assert options.path is not None
    path = Path(options.path).expanduser().resolve()
    main = read_images(path)
    assert main.labels is not None
    size = (main.x.shape[3], main.x.shape[2])
    channels = main.x.shape[1]
    extra = {
        key: Path(value).expanduser().resolve()
        for key, value in (("val_path", options.val_path), ("test_path", options.test_path))
        if value
    }
    others = {key: read_images(p, size=size, channels=channels) for key, p in extra.items()}
    for key, imgs in others.items():
        if imgs.x.shape[1:] != main.x.shape[1:]:
            raise DataError(
                f"{extra[key]}: images of shape {imgs.x.shape[1:]}, {path} has {main.x.shape[1:]}"
            )

    labels = main.labels
    task = options.task or (
        "classification" if labels.dtype == object else infer_task(pd.Series(labels))
    )
    classes: tuple[str | int, ...] | None = None
    if task == "classification":
        classes, index = _classes(labels, path)
        y_all: np.ndarray = _encode(labels, index, path, path)
        strata: np.ndarray | None = y_all
    else:
        if labels.dtype == object or not np.issubdtype(labels.dtype, np.number):
            raise DataError(f"{path}: regression needs numeric labels (array 'y')")
        y_all = labels.astype(np.float32)
        strata = None

    rows = np.arange(len(main.x))
    notes: dict[str, str | int | float | bool | None] = {"path": str(path), "images": len(rows)}
    # The images held out for validation and test; None where a path gives that split.
    val_rows: np.ndarray | None = None
    test_rows: np.ndarray | None = None
    if "test_path" in others:
        pool = rows
    else:
        pool, test_rows, _ = holdout(rows, options.test_fraction, TEST_SEED, strata)
        notes["test_fraction"] = options.test_fraction
    if "val_path" in others:
        train_rows = pool
    else:
        train_rows, val_rows, _ = holdout(pool, options.val_fraction, seed, strata)
        notes["val_fraction"] = options.val_fraction
    notes.update(split_seed=seed, test_seed=TEST_SEED)

    x_train = main.x[train_rows]
    mean = x_train.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x_train.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    c, h, w = (int(d) for d in main.x.shape[1:])  # N x C x H x W (read_images)
    shape = (c, h, w)
    transform = ImageTransform(
        shape=shape,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        task=task,
        classes=classes,
        source=str(path),
    )

    def targets(imgs: Images, where: Path) -> np.ndarray:
        assert imgs.labels is not None
        if classes is None:
            return imgs.labels.astype(np.float32)
        return _encode(imgs.labels, {str(c): i for i, c in enumerate(classes)}, where, path)

    def split(x: np.ndarray, y: np.ndarray, where: str) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(transform.transform(x, source=where)), torch.from_numpy(y)

    train = split(x_train, y_all[train_rows], str(path))
    if val_rows is None:
        val = split(others["val_path"].x, targets(others["val_path"], extra["val_path"]), "val")
    else:
        val = split(main.x[val_rows], y_all[val_rows], str(path))
    if test_rows is None:
        test = split(
            others["test_path"].x, targets(others["test_path"], extra["test_path"]), "test"
        )
    else:
        test = split(main.x[test_rows], y_all[test_rows], str(path))
    target_mean, target_std = target_scaling(train[1], task)
    return DataBundle(
        name=path.stem,
        task=task,
        train=train,
        val=val,
        test=test,
        input_shape=shape,
        n_outputs=len(classes) if classes is not None else 1,
        preprocessing=Preprocessing(kind="images", steps=transform.to_dict()),
        target_mean=target_mean,
        target_std=target_std,
        notes=notes,
    )
