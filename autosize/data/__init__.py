"""Benchmark datasets as ready-to-train tensors.

``load_dataset(name, *, data_dir=None, seed=0, **options)`` returns a
:class:`DataBundle` for ``mnist``, ``fashion_mnist``, ``census``, ``airfoil``,
``poker`` or ``add10``.

Where files are read from:

1. The data root is ``data_dir``, else ``$AUTOSIZE_DATA_ROOT``, else
   ``./datasets`` (relative to the current directory).
2. A file missing from the root is read from the mirror named by
   ``$AUTOSIZE_DATA_DIR`` when the mirror has it (nothing is copied).
3. Every file is verified by sha256 before use (cached per path, size and
   mtime within a process). A mismatch, a missing file or an unknown name
   raises :class:`~autosize.errors.DataError` with a one-line explanation.

``fetch`` fills a data root (download, or copy from a mirror); ``check`` loads
every dataset and reports its split sizes and load time.
"""

from __future__ import annotations

from autosize.data.bundle import DataBundle, Preprocessing
from autosize.data.fetch import FetchResult, fetch
from autosize.data.files import data_root
from autosize.data.loader import DatasetCheck, check, load_dataset
from autosize.data.registry import DATASETS, DataFile, DatasetInfo, list_datasets

__all__ = [
    "DATASETS",
    "DataBundle",
    "DataFile",
    "DatasetCheck",
    "DatasetInfo",
    "FetchResult",
    "Preprocessing",
    "check",
    "data_root",
    "fetch",
    "list_datasets",
    "load_dataset",
]
