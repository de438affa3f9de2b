"""Where dataset files are read from, and their checksum verification.

Resolution, for every file a dataset needs:

1. The data root is the ``data_dir`` argument, else the environment variable
   ``AUTOSIZE_DATA_ROOT``, else ``./datasets`` (relative to the current
   directory).
2. If the file is missing from the root but the environment variable
   ``AUTOSIZE_DATA_DIR`` names a mirror that has it, it is read straight from
   the mirror (nothing is copied; CI points this at ``../shared/data``).
3. The file is verified by sha256 before use. The verification is cached
   in-process per (path, size, mtime), so loading a dataset twice hashes once.

A mismatch raises :class:`~autosize.errors.DataError` naming the file and both
checksums; a missing file raises one naming the file, the data root and the
command that fetches it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from autosize.data.registry import DataFile
from autosize.errors import DataError

__all__ = [
    "ENV_MIRROR",
    "ENV_ROOT",
    "FileStatus",
    "data_root",
    "file_digest",
    "file_status",
    "find_file",
    "mirror_dir",
    "verified_path",
    "verify_file",
]

log = logging.getLogger(__name__)

ENV_ROOT = "AUTOSIZE_DATA_ROOT"
ENV_MIRROR = "AUTOSIZE_DATA_DIR"
DEFAULT_ROOT = Path("datasets")

_CHUNK = 1 << 20
# (resolved path, size, mtime_ns) -> sha256 hex digest
_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir``, else ``$AUTOSIZE_DATA_ROOT``, else ``./datasets``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT


def mirror_dir() -> Path | None:
    """The read-only mirror named by ``$AUTOSIZE_DATA_DIR``, if set."""
    env = os.environ.get(ENV_MIRROR)
    return Path(env).expanduser() if env else None


def file_digest(path: Path) -> str:
    """sha256 of ``path``, cached per (path, size, mtime) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _LOCK:
        cached = _DIGESTS.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    with _LOCK:
        _DIGESTS[key] = digest
    log.debug("sha256 %s = %s", path, digest)
    return digest


def verify_file(path: Path, sha256: str) -> None:
    """Raise :class:`DataError` unless ``path`` has the expected sha256."""
    found = file_digest(path)
    if found != sha256:
        raise DataError(
            f"checksum mismatch for {path}: expected sha256 {sha256}, found {found} "
            "(the file is truncated or altered; delete it and fetch it again)"
        )


def find_file(rel: str, root: Path) -> Path | None:
    """``root/rel`` if it exists, else the mirror's copy if it exists, else None."""
    local = root / rel
    if local.is_file():
        return local
    mirror = mirror_dir()
    if mirror is not None and (mirror / rel).is_file():
        return mirror / rel
    return None


def verified_path(file: DataFile, root: Path, *, dataset: str) -> Path:
    """The path to read ``file`` from, after checking its sha256."""
    path = find_file(file.path, root)
    if path is None:
        mirror = mirror_dir()
        where = f" nor in the mirror {mirror} ({ENV_MIRROR})" if mirror is not None else ""
        raise DataError(
            f"missing data file {file.path} for dataset {dataset!r}: not in the data root "
            f"{root.resolve()}{where}; fetch it with `autosize data fetch {dataset}`"
        )
    verify_file(path, file.sha256)
    if path != root / file.path:
        log.debug("reading %s from the mirror %s", file.path, path)
    return path


@dataclass(frozen=True)
class FileStatus:
    """Where one file was found and whether it verified (for ``autosize data list``)."""

    path: str
    state: Literal["verified", "mismatch", "missing"]
    location: Literal["root", "mirror"] | None
    found: Path | None


def file_status(file: DataFile, root: Path) -> FileStatus:
    path = find_file(file.path, root)
    if path is None:
        return FileStatus(file.path, "missing", None, None)
    location: Literal["root", "mirror"] = "root" if path == root / file.path else "mirror"
    state: Literal["verified", "mismatch"] = (
        "verified" if file_digest(path) == file.sha256 else "mismatch"
    )
    return FileStatus(file.path, state, location, path)
