"""Several independent ``autosize run`` processes on one study (SQLite here, and a real
PostgreSQL server when one can be started, see tests/pg.py): the seed trained once, every
baseline run once, the target met, a killed worker's trial failed and not counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autosize.search import load_config
from autosize.search.store.networks import artifact_store, download_network
from autosize.search.store.storage import make_storage
from studies import tiny_config

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::optuna.exceptions.ExperimentalWarning",
    ),
    pytest.mark.slow,
]
optuna.logging.set_verbosity(optuna.logging.WARNING)
BIN = Path(sys.executable).parent
TARGET = 6


def _start(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "autosize"), "-q", "run", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _check_study(config: Path, workers: int, *, killed: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    cfg = load_config(config)
    storage = make_storage(cfg.storage)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    assert names == ["tiny"], names  # no claim's lock study left behind
    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    baselines = [t for t in trials if t.user_attrs.get("role") == "baseline"]
    keys = [t.user_attrs["baseline_key"] for t in baselines]
    assert len(keys) == len(set(keys)) == 2, "every baseline once (the seed's and x2)"
    assert all(t.state == TrialState.COMPLETE for t in baselines)
    warm = [t for t in trials if t.user_attrs.get("role") == "warmstart"]
    finished = [t for t in warm if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    # The target, overshot by at most one trial per other worker still running.
    assert TARGET <= len(finished) <= TARGET + workers - 1, len(finished)
    for t in warm:
        if t.state == TrialState.FAIL:
            assert t.number in killed and "fail_reason" not in t.user_attrs
    # The seed was trained (and stored) once: one artifact for it, one per completed trial.
    store_dir = Path(cfg.artifacts)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(list(store_dir.iterdir())) == 1 + len(complete)
    store = artifact_store(cfg.artifacts)
    for t in complete:
        download_network(store, t.user_attrs["network_artifact"])
    assert len({t.user_attrs["worker"] for t in warm}) >= 2, "the work was shared"


def _storages() -> list[object]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=_storages())
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url = request.getfixturevalue("postgres_url")
    # A fresh schema per test: drop whatever an earlier test left in this database.
    storage = make_storage(url)
    for s in optuna.get_all_study_summaries(storage):
        optuna.delete_study(study_name=s.study_name, storage=storage)
    return str(url)


def test_three_processes_started_at_once_share_one_study(tmp_path: Path, storage_url: str) -> None:
    config = tiny_config(
        tmp_path, storage=storage_url, n_trials=TARGET, train_epochs=100000, train="max_seconds = 1"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [_start(config, env) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    _check_study(config, workers=3)


@pytest.mark.postgres
def test_a_worker_killed_mid_study_loses_nothing_and_a_fourth_finishes(
    tmp_path: Path, postgres_url: str
) -> None:
    storage = make_storage(postgres_url)
    for s in optuna.get_all_study_summaries(storage):
        optuna.delete_study(study_name=s.study_name, storage=storage)
    config = tiny_config(
        tmp_path,
        storage=postgres_url,
        n_trials=TARGET,
        train_epochs=100000,
        train="max_seconds = 2",
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUTOSIZE_HEARTBEAT_GRACE": "3"}
    procs = {p.pid: p for p in (_start(config, env) for _ in range(3))}
    victim_trial, victim_pid = None, None
    deadline = time.time() + 180
    while victim_trial is None:
        assert time.time() < deadline, "no warm-started trial started"
        try:
            study = optuna.load_study(study_name="tiny", storage=storage)
        except KeyError:
            time.sleep(0.3)
            continue
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker", "")
            pid = int(worker.rsplit(":", 1)[1]) if ":" in worker else None
            if t.user_attrs.get("role") == "warmstart" and pid in procs:
                os.kill(pid, signal.SIGKILL)
                victim_trial, victim_pid = t.number, pid
                break
        time.sleep(0.2)
    for pid, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == (-signal.SIGKILL if pid == victim_pid else 0), err
    fourth = _start(config, env)
    _, err = fourth.communicate(timeout=300)
    assert fourth.returncode == 0, err
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.trials[victim_trial].state == TrialState.FAIL
    _check_study(config, workers=3, killed={victim_trial})
