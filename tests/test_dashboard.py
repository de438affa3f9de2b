"""The dashboard: the real optuna-dashboard app on a loopback port, read through its HTTP API."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from autosize.cli import main
from autosize.cli.dashboard import make_server
from autosize.search import load_config, run_study
from autosize.search.config import StudyConfig
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


@contextlib.contextmanager
def serving(config: StudyConfig) -> Iterator[int]:
    """The study's dashboard (autosize's own server) on a free loopback port, while inside;
    stopped and its thread joined after."""
    server = make_server(config.storage, artifacts=config.artifacts, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_trials_notes_and_artifacts(study_config: Path) -> None:
    config = load_config(study_config)
    with serving(config) as port:
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


def test_the_lineage_figures_reach_the_dashboard(study_config: Path, tmp_path: Path) -> None:
    """`autosize report` stores the lineage and size figures with the study; the dashboard
    serves them as plotly graph objects beside Optuna's own plots."""
    pytest.importorskip("plotly")
    from autosize.report_dashboard import FIGURE_IDS

    assert main(["report", str(study_config), "--out", str(tmp_path / "r")]) == 0
    config = load_config(study_config)
    with serving(config) as port:
        study_id = get_json(port, "/api/studies")["study_summaries"][0]["study_id"]
        graphs = get_json(port, f"/api/studies/{study_id}")["plotly_graph_objects"]
    by_id = {g["id"]: json.loads(g["graph_object"]) for g in graphs}
    assert set(FIGURE_IDS) <= set(by_id)
    lineage = by_id["autosize-lineage"]
    names = {trace.get("name") for trace in lineage["data"]}
    assert "seed network" in names and "step from its parent" in names
    assert any(str(n).endswith("(1)") for n in names)  # its one warm-started step
    assert "lineage" in lineage["layout"]["title"]["text"]
    assert lineage["layout"]["yaxis"]["type"] == "log"
    size = by_id["autosize-size-vs-quality"]
    assert any(str(t.get("name", "")).startswith("the pick: trial") for t in size["data"])


def _chromium() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def test_the_lineage_figure_renders_in_a_headless_browser(
    study_config: Path, tmp_path: Path
) -> None:
    """The study's page in a real browser (headless Chromium) draws the lineage figure: the
    DOM it renders holds the plot's title, and a screenshot is kept beside it."""
    import os

    pytest.importorskip("plotly")
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: no Chromium for the browser test (apt-get install chromium)")
        pytest.skip("no Chromium here (apt-get install chromium)")
    assert main(["report", str(study_config), "--out", str(tmp_path / "r")]) == 0
    config = load_config(study_config)
    with serving(config) as port:
        study_id = get_json(port, "/api/studies")["study_summaries"][0]["study_id"]
        url = f"http://127.0.0.1:{port}/dashboard/studies/{study_id}"
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,2400",
            "--virtual-time-budget=20000",
        ]  # fmt: skip
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180
        ).stdout
        shot = tmp_path / "dashboard.png"
        subprocess.run(
            [browser, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=180
        )
    assert 'id="user-defined-plot:autosize-lineage"' in dom, dom[-2000:]
    assert "how the networks grew" in dom  # plotly drew the figure, title and all
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
