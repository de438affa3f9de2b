"""Where a study's networks live: a folder, or a bucket and prefix in S3.

``[study] artifacts`` (and ``--artifacts``) is a folder path or ``s3://BUCKET/PREFIX``.
:func:`artifact_location` reads either into an :class:`ArtifactLocation`, the one
place that knows the difference: it opens the Optuna artifact store and checks, before
anything is written, that networks can be kept there (a folder: it is one, writable; a
bucket: reachable with the credentials at hand). The rest of autosize sees only the
store, and ``str(location)`` is what a study records and what messages print.

S3 is Optuna's :class:`~optuna.artifacts.Boto3ArtifactStore` (``pip install
'autosize[s3]'`` installs boto3) under a small wrapper that puts every key below the
prefix. boto3 is configured as usual, from the environment: credentials from
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE``, ``~/.aws``, an
instance role), an S3-compatible server (MinIO, Ceph, moto) from ``AWS_ENDPOINT_URL``
(or ``AWS_ENDPOINT_URL_S3``), the region from ``AWS_DEFAULT_REGION``.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from autosize.errors import ConfigError, StudyError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "ArtifactLocation",
    "ArtifactStore",
    "FolderLocation",
    "S3Location",
    "artifact_location",
]

S3_INSTALL = "pip install 'autosize[s3]'"
# A bucket name as S3 and its look-alikes accept it (legacy names may hold capitals and _).
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class ArtifactStore(Protocol):
    """Optuna's artifact store protocol (``optuna.artifacts._protocol``, a private module)."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...
    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...
    def remove(self, artifact_id: str) -> None: ...


class ArtifactLocation(ABC):
    """Where networks are stored; ``where`` names the key or flag it came from."""

    where: str

    @abstractmethod
    def store(self) -> ArtifactStore:
        """Optuna's artifact store for this location."""

    @abstractmethod
    def check_writable(self) -> None:
        """Refuse (one-line StudyError) a location no network can be written to; creates
        and writes nothing, so a refused run leaves everything as it was."""

    @abstractmethod
    def check_readable(self) -> None:
        """Refuse a location no network can be read from (export, dashboard)."""


@dataclass(frozen=True)
class FolderLocation(ArtifactLocation):
    """A folder (shared between machines through NFS or the like): Optuna's
    FileSystemArtifactStore, one file per artifact."""

    path: Path
    where: str = field(default="artifacts", compare=False)

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:  # a folder is path-like: Path(location) is the folder
        return str(self.path)

    def store(self) -> ArtifactStore:
        from optuna.artifacts import FileSystemArtifactStore

        self.path.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(self.path))

    def check_writable(self) -> None:
        # A missing folder is created by the first upload: its nearest existing parent
        # is what has to be a writable folder.
        probe = self.path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        what = f"{self.where}: {self.path}"
        if probe != self.path:
            what += f": its parent {probe}"
        if not probe.is_dir():
            raise StudyError(f"{what} is not a folder")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise StudyError(f"{what} is not writable by this user")

    def check_readable(self) -> None:
        if not self.path.is_dir():
            raise StudyError(f"artifact store {self.path} does not exist (pass --artifacts DIR)")


@dataclass(frozen=True)
class S3Location(ArtifactLocation):
    """``s3://BUCKET/PREFIX``: one object per artifact, at ``PREFIX/ARTIFACT_ID``."""

    bucket: str
    prefix: str = ""
    where: str = field(default="artifacts", compare=False)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def store(self) -> ArtifactStore:
        from optuna.artifacts import Boto3ArtifactStore

        store = Boto3ArtifactStore(self.bucket, client=self._client())
        return _PrefixedStore(store, self.prefix) if self.prefix else store

    def check_writable(self) -> None:
        self._check_bucket()

    def check_readable(self) -> None:
        self._check_bucket()

    def _client(self, *, quick: bool = False) -> S3Client:
        _require_boto3(self)
        import boto3
        from botocore.config import Config

        # The reachability check fails in seconds, not after boto3's retries on a host
        # that does not answer (connect timeout 60 s, five attempts); the store itself
        # keeps boto3's defaults (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE apply).
        config = (
            Config(connect_timeout=10, read_timeout=20, retries={"total_max_attempts": 2})
            if quick
            else None
        )
        try:
            return boto3.client("s3", config=config)
        except Exception as exc:  # a bad AWS_PROFILE, AWS_ENDPOINT_URL, region, ...
            raise StudyError(
                f"{self.where}: {self}: cannot make an S3 client ({_why(exc)})"
            ) from None

    def _check_bucket(self) -> None:
        from botocore.exceptions import ClientError, NoCredentialsError

        client = self._client(quick=True)
        at = f"{self.where}: {self}"
        endpoint = client.meta.endpoint_url
        try:
            client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise StudyError(
                f"{at}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or AWS_PROFILE)"
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket"):
                raise StudyError(f"{at}: no bucket {self.bucket!r} at {endpoint}") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise StudyError(
                    f"{at}: access to bucket {self.bucket!r} at {endpoint} denied "
                    "(check the credentials: AWS_ACCESS_KEY_ID, AWS_PROFILE)"
                ) from None
            raise StudyError(f"{at}: cannot reach the bucket at {endpoint} ({_why(exc)})") from None
        except Exception as exc:  # botocore: no connection, a timeout, a bad endpoint
            raise StudyError(f"{at}: cannot reach the bucket at {endpoint} ({_why(exc)})") from None


class _PrefixedStore:
    """An artifact store with every key below ``prefix`` (Optuna's stores take the
    artifact id as the whole key)."""

    def __init__(self, store: ArtifactStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix.strip("/") + "/"

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self._store.open_reader(self._prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self._store.write(self._prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._prefix + artifact_id)


def artifact_location(
    value: ArtifactLocation | str | os.PathLike[str],
    *,
    where: str = "artifacts",
    base: Path | None = None,
) -> ArtifactLocation:
    """The location ``value`` names: ``s3://BUCKET[/PREFIX]``, else a folder (relative to
    ``base`` when given). ``where`` names the key or flag in every message about it. A
    location is returned as it is; an s3:// one without boto3 installed is refused here,
    before anything runs."""
    if isinstance(value, ArtifactLocation):
        return value
    text = os.fspath(value)
    scheme = _SCHEME.match(text)
    if scheme is None:
        path = Path(text)
        if base is not None and not path.is_absolute():
            path = base / path
        return FolderLocation(path, where=where)
    if scheme.group(1).lower() != "s3":
        raise ConfigError(
            f"{where}: {text!r}: expected a folder or s3://BUCKET/PREFIX "
            f"({scheme.group(1)}:// is not supported)"
        )
    bucket, _, prefix = text[len(scheme.group(0)) :].partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(f"{where}: {text!r}: expected s3://BUCKET/PREFIX with a bucket name")
    location = S3Location(bucket, prefix.strip("/"), where=where)
    _require_boto3(location)
    return location


def _require_boto3(location: S3Location) -> None:
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise ConfigError(f"{location.where}: {location} needs boto3: {S3_INSTALL}") from None


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
