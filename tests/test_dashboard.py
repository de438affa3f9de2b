"""The dashboard: the real optuna-dashboard app on a loopback port, read through its HTTP API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from autosize.cli import main
from autosize.cli.dashboard import make_server
from autosize.search import load_config, run_study
from studies import tiny_config

pytest.importorskip("optuna_dashboard")


@pytest.fixture(scope="module")
def study_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = tmp_path_factory.mktemp("dashboard-study")
    path = tiny_config(
        root,
        n_trials=1,
        seed_epochs=1,
        train_epochs=1,
        baselines="",
        pruner='name = "none"',
        filename="tiny.toml",
    )
    run_study(load_config(path))
    return path


def get_json(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_trials_notes_and_artifacts(study_config: Path) -> None:
    config = load_config(study_config)
    server = make_server(config.storage, artifacts=config.artifacts, host="127.0.0.1", port=0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        studies = get_json(port, "/api/studies")["study_summaries"]
        assert [s["study_name"] for s in studies] == ["tiny"]
        detail = get_json(port, f"/api/studies/{studies[0]['study_id']}")
        study = optuna.load_study(study_name="tiny", storage=config.storage)
        assert len(detail["trials"]) == len(study.trials)
        done = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert done
        for t in done:
            names = [a["filename"] for a in t["artifacts"]]
            assert names == ["network.safetensors"], names
            assert "parameters" in t["note"]["body"]  # the search's per-trial note
            # the artifact itself downloads through the dashboard
            artifact = t["artifacts"][0]["artifact_id"]
            url = f"http://127.0.0.1:{port}/artifacts/{studies[0]['study_id']}/{t['trial_id']}/{artifact}"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert len(response.read()) > 100
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_dashboard_cli_subprocess(study_config: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autosize", "dashboard", str(study_config), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                studies = get_json(port, "/api/studies")["study_summaries"]
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dashboard did not start: {proc.communicate(timeout=5)}")
                time.sleep(0.3)
        assert [s["study_name"] for s in studies] == ["tiny"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/" in out


def test_dashboard_missing_dependency(
    study_config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails
    capsys.readouterr()
    assert main(["dashboard", str(study_config), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'autosize[dashboard]'" in err[0]


def test_dashboard_needs_a_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no study storage" in capsys.readouterr().err
