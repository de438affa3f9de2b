"""Filling a data root: download from canonical sources, or copy from a mirror.

Every file is written atomically: it goes to a temporary file next to its
destination, is checked against its checksum, and only then is renamed into
place, so an interrupted fetch never leaves a partial file under the real
name. Files already present and verified are left alone. MNIST and
FashionMNIST come from torchvision's mirrors as gzip archives, checked
against torchvision's md5 before extraction.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import logging
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from autosize.data.files import data_root, file_digest, mirror_dir, verify_file
from autosize.data.registry import DATASETS, DataFile, dataset_info
from autosize.errors import DataError

__all__ = ["FetchResult", "download_file", "fetch"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_USER_AGENT = "autosize-data-fetch"


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did for one file."""

    dataset: str
    path: Path
    action: Literal["present", "copied", "downloaded"]
    source: str


@contextlib.contextmanager
def _atomic(dest: Path) -> Iterator[Path]:
    """A temporary path next to ``dest``, renamed onto it only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def download_file(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar, checking the given hashes."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    hashes = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    with _atomic(dest) as tmp:
        with urllib.request.urlopen(request, timeout=timeout) as response, tmp.open("wb") as out:
            length = (
                response.headers.get("Content-Length") if hasattr(response, "headers") else None
            )
            total = int(length) if length and str(length).isdigit() else None
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                disable=not progress, leave=False,
            ) as bar:  # fmt: skip
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    for h in hashes.values():
                        h.update(chunk)
                    bar.update(len(chunk))
        for kind, expected in (("sha256", sha256), ("md5", md5)):
            found = hashes[kind].hexdigest()
            if expected is not None and found != expected:
                raise DataError(
                    f"checksum mismatch for {url} (downloading {dest}): expected {kind} {expected}, found {found}"
                )
    return dest


def _gunzip(archive: Path, dest: Path, sha256: str) -> None:
    with _atomic(dest) as tmp:
        try:
            with gzip.open(archive, "rb") as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot extract {archive}: {exc}") from exc
        verify_file(tmp, sha256)


def _download(file: DataFile, dest: Path, *, dataset: str, progress: bool) -> str:
    if not file.urls:
        raise DataError(f"no download source known for {file.path} of dataset {dataset!r}")
    errors = []
    for url in file.urls:
        try:
            if file.archive == "gzip":
                archive = dest.with_name(dest.name + ".gz")
                download_file(url, archive, md5=file.archive_md5, progress=progress)
                try:
                    _gunzip(archive, dest, file.sha256)
                finally:
                    archive.unlink(missing_ok=True)
            else:
                download_file(url, dest, sha256=file.sha256, progress=progress)
            return url
        except (urllib.error.URLError, OSError, ValueError, DataError) as exc:
            log.warning("download of %s failed: %s", url, exc)
            errors.append(f"{url}: {exc}")
    raise DataError(f"could not download {file.path} for dataset {dataset!r}: {'; '.join(errors)}")


def _copy(file: DataFile, src: Path, dest: Path) -> None:
    with _atomic(dest) as tmp:
        with src.open("rb") as fin, tmp.open("wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        verify_file(tmp, file.sha256)


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[FetchResult]:
    """Put the files of dataset ``name`` (or ``"all"``) into the data root, verified.

    With ``source`` (or, failing that, ``$AUTOSIZE_DATA_DIR``) files are copied
    from that mirror; otherwise they are downloaded from their canonical URLs.
    """
    names = tuple(DATASETS) if name == "all" else (dataset_info(name).name,)
    root = data_root(data_dir)
    mirror = Path(source).expanduser() if source is not None else mirror_dir()
    if mirror is not None and not mirror.is_dir():
        raise DataError(f"mirror {mirror} is not a directory")
    results = []
    for ds in names:
        for file in DATASETS[ds].files:
            dest = root / file.path
            if dest.is_file():
                if file_digest(dest) == file.sha256:
                    results.append(FetchResult(ds, dest, "present", str(dest)))
                    continue
                log.warning("%s fails its checksum; fetching it again", dest)
            if mirror is not None:
                src = mirror / file.path
                if not src.is_file():
                    raise DataError(
                        f"mirror {mirror} has no {file.path} (needed by dataset {ds!r})"
                    )
                if src.resolve() == dest.resolve():
                    verify_file(src, file.sha256)
                    results.append(FetchResult(ds, dest, "present", str(src)))
                    continue
                log.info("copying %s from %s", file.path, mirror)
                _copy(file, src, dest)
                results.append(FetchResult(ds, dest, "copied", str(src)))
            else:
                log.info("downloading %s", file.path)
                url = _download(file, dest, dataset=ds, progress=progress)
                results.append(FetchResult(ds, dest, "downloaded", url))
    return results
