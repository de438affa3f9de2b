"""``load_dataset``: one entry point from a dataset name to a :class:`DataBundle`.

Where files are read from (see :mod:`autosize.data.files`): the ``data_dir``
argument, else ``$AUTOSIZE_DATA_ROOT``, else ``./datasets``; a file missing
there is read from the mirror ``$AUTOSIZE_DATA_DIR`` when it has it. Every file
is checked against its sha256 first.

``seed`` fixes the validation split (and only that: generated data such as
add10 or poker's generated test set come from fixed seeds of their own, so
every study sees the same test set). Statistics for preprocessing come from
the training split only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autosize.data.add10 import Add10Options, load_add10
from autosize.data.airfoil import AirfoilOptions, load_airfoil
from autosize.data.bundle import DataBundle
from autosize.data.census import CensusOptions, load_census
from autosize.data.files import data_root, file_status
from autosize.data.image_files import ImageFilesOptions, load_image_files
from autosize.data.images import ImageOptions, load_images
from autosize.data.options import build_options
from autosize.data.poker import PokerOptions, load_poker
from autosize.data.registry import DATASETS, dataset_info
from autosize.data.table import TableOptions, load_table
from autosize.errors import DataError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["FILE_LOADERS", "DatasetCheck", "check", "load_dataset"]

log = logging.getLogger(__name__)

_OPTIONS: dict[str, type[DataclassInstance]] = {
    "mnist": ImageOptions,
    "fashion_mnist": ImageOptions,
    "census": CensusOptions,
    "airfoil": AirfoilOptions,
    "poker": PokerOptions,
    "add10": Add10Options,
    # Your own data: loaders that read the files their options name.
    "table": TableOptions,
    "images": ImageFilesOptions,
}
_LOADERS: dict[str, Callable[..., DataBundle]] = {
    "mnist": lambda root, **kw: load_images("mnist", root, **kw),
    "fashion_mnist": lambda root, **kw: load_images("fashion_mnist", root, **kw),
    "census": load_census,
    "airfoil": load_airfoil,
    "poker": load_poker,
    "add10": lambda root, **kw: load_add10(**kw),
    "table": load_table,
    "images": load_image_files,
}
# Loaders of the user's own files (not in the registry: no checksums, no fetch, no check).
FILE_LOADERS: tuple[str, ...] = ("table", "images")


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    **options: object,
) -> DataBundle:
    """Load dataset ``name`` (see :func:`list_datasets`) as preprocessed tensors.

    ``options`` are dataset-specific and keyword-only, e.g. ``split="random"``
    for airfoil, ``test="generated"`` for poker, ``val_fraction=0.1`` for the
    tables. An unknown option is refused, naming it and the valid ones.

    ``"table"`` reads the user's own CSV or Parquet file (see :mod:`autosize.data.table`):
    ``load_dataset("table", path="houses.csv", target="price")``; ``"images"`` a folder per
    class or an ``.npz`` (see :mod:`autosize.data.image_files`).
    """
    if name not in FILE_LOADERS:
        dataset_info(name)  # unknown names list the known ones
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    opts = build_options(name, _OPTIONS[name], options)
    root = data_root(data_dir)
    start = time.perf_counter()
    bundle = _LOADERS[name](root, seed=seed, options=opts)
    log.info("loaded %s in %.2f s", bundle.summary(), time.perf_counter() - start)
    return bundle


@dataclass(frozen=True)
class DatasetCheck:
    """The outcome of loading one dataset in :func:`check`."""

    name: str
    ok: bool
    sizes: dict[str, int] | None
    seconds: float
    # "root", "mirror", "root+mirror" or "generated": where the files were read from.
    source: str
    notes: dict[str, object]
    error: str | None = None


def check(
    names: tuple[str, ...] | None = None, *, data_dir: str | os.PathLike[str] | None = None
) -> list[DatasetCheck]:
    """Load each dataset (all by default) and report whether it works, its sizes and load time."""
    names = tuple(DATASETS) if names is None else names
    for name in names:
        dataset_info(name)
    root = data_root(data_dir)
    results = []
    for name in names:
        info = DATASETS[name]
        start = time.perf_counter()  # includes hashing the files
        places = {file_status(f, root).location for f in info.files}
        source = (
            "generated"
            if info.generated
            else "+".join(p for p in ("root", "mirror") if p in places)
        )
        try:
            bundle = load_dataset(name, data_dir=root)
        except DataError as exc:
            results.append(
                DatasetCheck(
                    name,
                    False,
                    None,
                    time.perf_counter() - start,
                    source or "missing",
                    {},
                    str(exc),
                )
            )
            continue
        seconds = time.perf_counter() - start
        results.append(DatasetCheck(name, True, bundle.sizes, seconds, source, dict(bundle.notes)))
        del bundle
    return results
