"""`autosize data` in-process, fetch by copy and by download (local server / file:// URLs)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autosize.cli import main
from autosize.data import DATASETS, fetch
from autosize.data.fetch import download_file
from autosize.errors import DataError

AIRFOIL = "airfoil/airfoil_self_noise.dat"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOSIZE_DATA_DIR", raising=False)
    monkeypatch.delenv("AUTOSIZE_DATA_ROOT", raising=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part") or p.suffix == ".gz"]


def test_fetch_from_mirror_copies_and_verifies(
    tmp_path: Path, data_mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    argv = ["data", "fetch", "census", "--from", str(data_mirror), "--data-dir", str(root)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("copied") == 2
    for rel in ("adult/adult.data", "adult/adult.test"):
        assert _sha256(root / rel) == _sha256(data_mirror / rel)
    assert main(argv) == 0
    assert capsys.readouterr().out.count("present") == 2
    assert not _leftovers(root)


def test_fetch_refuses_corrupted_mirror_and_leaves_nothing(
    tmp_path: Path, data_mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "airfoil").mkdir(parents=True)
    (mirror / AIRFOIL).write_bytes((data_mirror / AIRFOIL).read_bytes()[:-10])
    root = tmp_path / "root"
    assert main(["data", "fetch", "airfoil", "--from", str(mirror), "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("autosize: error: checksum mismatch") and "\n" not in err
    assert DATASETS["airfoil"].files[0].sha256 in err and _sha256(mirror / AIRFOIL) in err
    assert not (root / AIRFOIL).exists() and not _leftovers(root)


def test_fetch_uses_env_mirror(
    tmp_path: Path, data_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOSIZE_DATA_DIR", str(data_mirror))
    results = fetch("airfoil", data_dir=tmp_path, progress=False)
    assert [r.action for r in results] == ["copied"]
    assert fetch("add10", data_dir=tmp_path) == []


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; shut down after the test."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(www), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    server.timeout = 5
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_download_file_over_http(http_root: tuple[str, Path], tmp_path: Path) -> None:
    base, www = http_root
    payload = b"autosize\n" * 5000
    (www / "f.dat").write_bytes(payload)
    sha = hashlib.sha256(payload).hexdigest()
    dest = tmp_path / "out" / "f.dat"
    download_file(
        f"{base}/f.dat",
        dest,
        sha256=sha,
        md5=hashlib.md5(payload).hexdigest(),
        progress=True,
        timeout=5,
    )
    assert dest.read_bytes() == payload
    bad = tmp_path / "out" / "g.dat"
    with pytest.raises(DataError, match=f"expected sha256 {'0' * 64}, found {sha}"):
        download_file(f"{base}/f.dat", bad, sha256="0" * 64, progress=False, timeout=5)
    assert not bad.exists() and not _leftovers(tmp_path / "out")


def test_fetch_downloads_from_canonical_urls(
    tmp_path: Path,
    data_mirror: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Plain files and torchvision-style gzip archives (md5-checked, then extracted)."""
    (airfoil_file,) = DATASETS["airfoil"].files
    src = data_mirror / AIRFOIL
    monkeypatch.setitem(
        DATASETS,
        "airfoil",
        dataclasses.replace(
            DATASETS["airfoil"], files=(dataclasses.replace(airfoil_file, urls=(src.as_uri(),)),)
        ),
    )
    labels = next(f for f in DATASETS["mnist"].files if f.path.endswith("t10k-labels-idx1-ubyte"))
    gz = tmp_path / "src" / "t10k-labels-idx1-ubyte.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress((data_mirror / labels.path).read_bytes()))
    missing = (tmp_path / "src" / "nowhere.gz").as_uri()  # the first mirror fails, the second works
    gz_file = dataclasses.replace(
        labels, urls=(missing, gz.as_uri()), archive_md5=hashlib.md5(gz.read_bytes()).hexdigest()
    )
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], files=(gz_file,)))

    root = tmp_path / "root"
    for name in ("airfoil", "mnist"):
        assert main(["data", "fetch", name, "--no-progress", "--data-dir", str(root)]) == 0
    assert capsys.readouterr().out.count("downloaded") == 2
    assert _sha256(root / AIRFOIL) == airfoil_file.sha256
    assert _sha256(root / labels.path) == labels.sha256
    assert not _leftovers(root)

    wrong_md5 = dataclasses.replace(gz_file, archive_md5="0" * 32)
    monkeypatch.setitem(
        DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], files=(wrong_md5,))
    )
    (root / labels.path).unlink()
    with pytest.raises(DataError, match=r"expected md5 0{32}"):
        fetch("mnist", data_dir=root, progress=False)
    assert not (root / labels.path).exists() and not _leftovers(root)


def test_list_shows_files_and_state(
    tmp_path: Path,
    data_mirror: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "root"
    (root / "airfoil").mkdir(parents=True)
    shutil.copyfile(data_mirror / AIRFOIL, root / AIRFOIL)
    (root / "adult").mkdir()
    (root / "adult/adult.data").write_text("broken\n")
    assert main(["data", "list", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{AIRFOIL}" in out and "verified" in out
    assert "mismatch" in out and "missing" in out
    assert all(name in out for name in DATASETS)
    monkeypatch.setenv("AUTOSIZE_DATA_DIR", str(data_mirror))
    assert main(["data", "list", "--data-dir", str(root)]) == 0
    assert "missing" not in capsys.readouterr().out


def test_check_reports_sizes_and_failures(
    tmp_path: Path, data_mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "check", "airfoil", "add10", "--data-dir", str(data_mirror)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("airfoil") and "present and verified" in lines[0]
    assert "train 992 / val 248 / test 263" in lines[0]
    assert lines[1].startswith("add10") and "generated" in lines[1] and "test 9792" in lines[1]
    assert main(["data", "check", "census", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "autosize data fetch census" in out


def test_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", "cifar"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "known datasets: mnist" in err
    assert main(["data", "fetch", "airfoil", "--from", "/nonexistent/mirror"]) == 2
    assert "/nonexistent/mirror" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["data", "fetch", "cifar"])
    assert info.value.code == 2


def test_torchvision_sources_match_installed_torchvision() -> None:
    from torchvision import datasets

    from autosize.data.registry import TORCHVISION_MD5, TORCHVISION_MIRRORS

    for folder in ("MNIST", "FashionMNIST"):
        cls = getattr(datasets, folder)
        assert TORCHVISION_MIRRORS[folder] == tuple(cls.mirrors)
        assert TORCHVISION_MD5[folder] == dict(cls.resources)


def test_check_in_subprocess(data_mirror: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "autosize", "-q", "data", "check", "add10", "airfoil", "--data-dir", str(data_mirror)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2/2 datasets ok" in proc.stdout
