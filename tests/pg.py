"""A throwaway PostgreSQL server for the tests marked ``postgres``.

Found on PATH or under ``/usr/lib/postgresql/*/bin``; started on 127.0.0.1 on a
free port from a temp folder (as the ``postgres`` user when the tests run as
root, since PostgreSQL refuses to run as root), with trust authentication, and
stopped at the end. ``AUTOSIZE_TEST_POSTGRES=URL`` uses a server of your own
instead. Without either, the postgres tests are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin_dir() -> Path | None:
    # The distribution's server binaries first: /usr/local/bin or /usr/bin may hold
    # wrappers (postgresql-common) that want a configured cluster.
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if dirs and (Path(dirs[0]) / "initdb").exists():
        return Path(dirs[0])
    found = shutil.which("initdb")
    return Path(found).parent if found else None


# url -> the pg_ctl command line prefix, its data folder, log and options, for stop()/start().
_SERVERS: dict[str, tuple[list[str], Path, Path, str]] = {}


def can_restart(url: str) -> bool:
    """Whether ``url`` is a server these helpers started (not AUTOSIZE_TEST_POSTGRES)."""
    return url in _SERVERS


def data_dir(url: str) -> Path | None:
    """The data folder of a server these helpers started (None for any other)."""
    return _SERVERS[url][1] if url in _SERVERS else None


def stop(url: str) -> None:
    """Stop the server as an administrator would for a restart (``pg_ctl stop -m fast``)."""
    pg_ctl, data, _, _ = _SERVERS[url]
    subprocess.run([*pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def start(url: str) -> None:
    pg_ctl, data, log, options = _SERVERS[url]
    subprocess.run([*pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unavailable() -> str | None:
    """Why no server can be had here (None when one can)."""
    if os.environ.get("AUTOSIZE_TEST_POSTGRES"):
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if _bin_dir() is None:
        return "no PostgreSQL server binaries (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server"
    return None


@contextmanager
def server() -> Iterator[str]:
    """Yield the URL of a fresh database (``postgresql://...``)."""
    own = os.environ.get("AUTOSIZE_TEST_POSTGRES")
    if own:
        yield own
        return
    bindir = _bin_dir()
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="autosize-pg-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root} -c max_connections=200 -c fsync=off"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        **quiet,  # type: ignore[arg-type]
    )
    log = root / "server.log"
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "start",
        ],
        **quiet,  # type: ignore[arg-type]
    )
    try:
        subprocess.run(
            [
                *as_user,
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "autosize",
            ],
            **quiet,  # type: ignore[arg-type]
        )
        # A plain postgresql:// URL, as users write it (SQLAlchemy 2.1 picks psycopg 3).
        url = f"postgresql://postgres@127.0.0.1:{port}/autosize"
        _SERVERS[url] = ([*as_user, str(bindir / "pg_ctl")], data, log, options)
        yield url
    finally:
        _SERVERS.pop(f"postgresql://postgres@127.0.0.1:{port}/autosize", None)
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
