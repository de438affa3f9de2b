"""What each dataset is made of: its files, their sha256, and where they come from.

The checksums are those of the uncompressed files as they lie in the data root
(the same as ``../shared/data/SHA256SUMS``). MNIST and FashionMNIST are
downloaded as gzip files from torchvision's own mirrors and checked against
torchvision's md5 of the archive before they are extracted; the extracted file
is then checked against its sha256 like every other file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from autosize.data.bundle import Task
from autosize.errors import DataError

__all__ = [
    "DATASETS",
    "TORCHVISION_MD5",
    "TORCHVISION_MIRRORS",
    "DataFile",
    "DatasetInfo",
    "dataset_info",
    "list_datasets",
]

UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases"


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset, relative to the data root (POSIX separators)."""

    path: str
    sha256: str
    # Canonical sources, tried in order. For a gzip archive each URL names the .gz file.
    urls: tuple[str, ...] = ()
    archive: Literal["gzip"] | None = None
    # md5 of the downloaded archive, when the source publishes one (torchvision does).
    archive_md5: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset known to :func:`autosize.data.load_dataset`."""

    name: str
    task: Task
    description: str
    files: tuple[DataFile, ...] = ()
    # Files that are used when present but not required (no pinned checksum: their
    # content is validated by the loader instead).
    optional: tuple[str, ...] = ()

    @property
    def generated(self) -> bool:
        return not self.files


# torchvision's own mirrors and archive md5s (``torchvision.datasets.MNIST.mirrors`` /
# ``.resources``), copied here so that importing autosize.data does not import torchvision;
# tests/test_data_cli.py checks that they still agree with the installed torchvision.
TORCHVISION_MIRRORS: dict[str, tuple[str, ...]] = {
    "MNIST": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "FashionMNIST": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
TORCHVISION_MD5: dict[str, dict[str, str]] = {
    "MNIST": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}


def _torchvision_files(folder: str, sums: dict[str, str]) -> tuple[DataFile, ...]:
    """Raw IDX files, downloaded as .gz from torchvision's mirrors and checked with its md5s."""
    return tuple(
        DataFile(
            path=f"{folder}/raw/{name}",
            sha256=sha,
            urls=tuple(f"{mirror}{name}.gz" for mirror in TORCHVISION_MIRRORS[folder]),
            archive="gzip",
            archive_md5=TORCHVISION_MD5[folder][f"{name}.gz"],
        )
        for name, sha in sums.items()
    )


_IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_MNIST_SHA = dict(
    zip(
        _IDX,
        (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        strict=True,
    )
)
_FASHION_SHA = dict(
    zip(
        _IDX,
        (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        strict=True,
    )
)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist",
            task="classification",
            description="MNIST handwritten digits, 28x28 grey, 10 classes",
            files=_torchvision_files("MNIST", _MNIST_SHA),
        ),
        DatasetInfo(
            name="fashion_mnist",
            task="classification",
            description="Fashion-MNIST clothing images, 28x28 grey, 10 classes",
            files=_torchvision_files("FashionMNIST", _FASHION_SHA),
        ),
        DatasetInfo(
            name="census",
            task="classification",
            description="UCI Adult (Census Income): income >50K, binary",
            files=(
                DataFile(
                    "adult/adult.data",
                    "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
                    (f"{UCI}/adult/adult.data",),
                ),
                DataFile(
                    "adult/adult.test",
                    "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
                    (f"{UCI}/adult/adult.test",),
                ),
            ),
        ),
        DatasetInfo(
            name="airfoil",
            task="regression",
            description="UCI Airfoil Self-Noise: sound pressure level in dB",
            files=(
                DataFile(
                    "airfoil/airfoil_self_noise.dat",
                    "74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3",
                    (f"{UCI}/00291/airfoil_self_noise.dat",),
                ),
            ),
        ),
        DatasetInfo(
            name="poker",
            task="classification",
            description="UCI Poker Hand: 10 hand classes from 5 cards",
            files=(
                DataFile(
                    "poker/poker-hand-training-true.data",
                    "37becdf87d5f8cbf2b91d6471e965a25b86cb4a6d878c0f94a4025969fca464f",
                    (f"{UCI}/poker/poker-hand-training-true.data",),
                ),
            ),
            optional=("poker/poker-hand-testing.data",),
        ),
        DatasetInfo(
            name="add10",
            task="regression",
            description="DELVE add10 (Friedman #1 on 10 inputs), generated with a fixed seed",
        ),
    )
}


def list_datasets() -> tuple[str, ...]:
    """Names accepted by :func:`autosize.data.load_dataset`, in a stable order."""
    return tuple(DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, "
            "or 'table' / 'images' for files of your own"
        ) from None
