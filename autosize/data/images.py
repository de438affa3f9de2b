"""MNIST and Fashion-MNIST from their raw IDX files (read with torchvision).

Splits: the 60,000 training images give 55,000 train and 5,000 validation
images (a seeded, fixed split); the 10,000 test images are the test split.
Pixels are scaled by 1/255, then normalised with the mean and standard
deviation of the training split only. Inputs have shape (1, 28, 28).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.data.files import verified_path
from autosize.data.options import check_count
from autosize.data.registry import dataset_info
from autosize.errors import DataError

__all__ = ["ImageOptions", "load_images"]

N_TRAIN_FILE = 60_000
N_TEST_FILE = 10_000


@dataclass(frozen=True, kw_only=True)
class ImageOptions:
    # 5,000 is the customary MNIST validation size (LeCun et al.'s 55k/5k split).
    val_size: int = 5_000

    def __post_init__(self) -> None:
        check_count("mnist|fashion_mnist", "val_size", self.val_size)
        if self.val_size >= N_TRAIN_FILE:
            raise DataError(f"option val_size={self.val_size} must be below {N_TRAIN_FILE}")


def _read(name: str, root: Path, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets.mnist import read_image_file, read_label_file  # heavy import

    info = dataset_info(name)
    paths = {Path(f.path).name: verified_path(f, root, dataset=name) for f in info.files}
    try:
        x = read_image_file(str(paths[f"{kind}-images-idx3-ubyte"]))
        y = read_label_file(str(paths[f"{kind}-labels-idx1-ubyte"]))
    except (RuntimeError, ValueError, AssertionError) as exc:  # torchvision asserts on bad headers
        raise DataError(f"cannot read {name} {kind} IDX files under {root}: {exc}") from exc
    return x, y


def load_images(name: str, root: Path, *, seed: int, options: ImageOptions) -> DataBundle:
    x_all, y_all = _read(name, root, "train")
    x_test_raw, y_test = _read(name, root, "t10k")
    if x_all.shape[0] != N_TRAIN_FILE or x_test_raw.shape[0] != N_TEST_FILE:
        raise DataError(
            f"{name}: expected {N_TRAIN_FILE} training and {N_TEST_FILE} test images, "
            f"found {x_all.shape[0]} and {x_test_raw.shape[0]}"
        )
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(N_TRAIN_FILE))
    val_idx = perm[: options.val_size].sort().values
    train_idx = perm[options.val_size :].sort().values

    x_train = x_all[train_idx].to(torch.float32).div_(255.0)
    # Statistics from the training split only, in float64 for a stable mean.
    mean = float(x_train.double().mean())
    std = float(x_train.double().std(unbiased=False))

    def prep(x: torch.Tensor, *, scaled: bool = False) -> torch.Tensor:
        x = x if scaled else x.to(torch.float32).div_(255.0)
        return x.sub_(mean).div_(std).unsqueeze(1).contiguous()

    return DataBundle(
        name=name,
        task="classification",
        train=(prep(x_train, scaled=True), y_all[train_idx].to(torch.int64)),
        val=(prep(x_all[val_idx]), y_all[val_idx].to(torch.int64)),
        test=(prep(x_test_raw), y_test.to(torch.int64)),
        input_shape=(1, 28, 28),
        n_outputs=10,
        preprocessing=Preprocessing(
            kind="image", steps={"scale": 1 / 255, "mean": mean, "std": std}
        ),
        notes={"val_size": options.val_size, "split_seed": seed},
    )
