"""A PostgreSQL restart in the middle of a study (the throwaway server of tests/pg.py).

Workers retry every storage call with backoff while the server is away; a restart of
a few seconds goes unnoticed but for two log lines, and no finished trial is lost. A
server that stays away longer than the retry window stops each worker with one line
and exit code 3; everything finished before is still there and a rerun finishes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pg
import pytest
from optuna.trial import TrialState

from autosize.cli import EXIT_STORAGE_LOST
from autosize.search.optimize import counted as _counted
from autosize.search.store.storage import make_storage
from studies import tiny_config

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore::optuna.exceptions.ExperimentalWarning",
    ),
    pytest.mark.slow,
    pytest.mark.postgres,
]
optuna.logging.set_verbosity(optuna.logging.WARNING)
BIN = Path(sys.executable).parent
TARGET = 6


@pytest.fixture
def server(postgres_url: str) -> str:
    if not pg.can_restart(postgres_url):
        pytest.skip("AUTOSIZE_TEST_POSTGRES names a server these tests cannot restart")
    storage = make_storage(postgres_url)
    for s in optuna.get_all_study_summaries(storage):
        optuna.delete_study(study_name=s.study_name, storage=storage)
    return postgres_url


def _finished_warm(url: str) -> dict[int, tuple[str, list[float] | None]]:
    """Warm-started trials that finished: number -> (state, values), read with plain SQL."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as con:
            rows = con.execute(
                "SELECT t.number, t.state::text, "
                "(SELECT array_agg(v.value ORDER BY v.objective) FROM trial_values v "
                " WHERE v.trial_id = t.trial_id) "
                "FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                "WHERE a.key = 'role' AND a.value_json = '\"warmstart\"' "
                "AND t.state IN ('COMPLETE', 'PRUNED')"
            ).fetchall()
    except psycopg.Error:
        return {}
    return {int(n): (str(state), values) for n, state, values in rows}


def _start(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "autosize"), "run", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(url: str, n: int, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.time() + 180
    while len(_finished_warm(url)) < n:
        assert all(p.poll() is None for p in procs), "a worker ended before the restart"
        assert time.time() < deadline, f"fewer than {n} warm-started trials finished"
        time.sleep(0.3)


def _config(tmp_path: Path, url: str) -> Path:
    return tiny_config(
        tmp_path, storage=url, n_trials=TARGET, train_epochs=100000, train="max_seconds = 1"
    )


def test_workers_ride_out_a_restart_and_lose_nothing(tmp_path: Path, server: str) -> None:
    config = _config(tmp_path, server)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUTOSIZE_STORAGE_RETRY": "60"}
    procs = [_start(config, env) for _ in range(2)]
    try:
        _wait_for(server, 2, procs)
        before = _finished_warm(server)
        pg.stop(server)
        time.sleep(3)  # every worker is inside a trial: reports, attributes, heartbeats
    finally:
        pg.start(server)
    errs = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "Traceback" not in err, err
        errs.append(err)
    assert any("connection lost" in e and "reconnected after" in e for e in errs), errs
    after = _finished_warm(server)
    assert {n: after.get(n) for n in before} == before, "a finished trial changed or went"
    study = optuna.load_study(study_name="tiny", storage=make_storage(server))
    trials = study.get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    # None failed by the heartbeat (a stopped worker) or by the outage.
    assert not [
        t.number for t in trials if t.state == TrialState.FAIL and "fail_reason" not in t.user_attrs
    ]
    assert TARGET <= _counted(study) <= TARGET + 1


def test_a_server_gone_for_longer_stops_with_one_line_and_a_rerun_finishes(
    tmp_path: Path, server: str
) -> None:
    config = _config(tmp_path, server)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AUTOSIZE_STORAGE_RETRY": "2"}
    proc = _start(config, env)
    try:
        _wait_for(server, 1, [proc])
        before = _finished_warm(server)
        pg.stop(server)
        _, err = proc.communicate(timeout=120)
    finally:
        pg.start(server)
    assert proc.returncode == EXIT_STORAGE_LOST, err
    lines = err.strip().splitlines()
    # The warning when the connection went, then the one error line.
    assert len(lines) == 2 and "connection lost" in lines[0], err
    assert lines[1].startswith("autosize: error: storage 'postgresql://"), err
    assert "did not come back within 2 s" in lines[1], err
    assert {n: v for n, v in _finished_warm(server).items() if n in before} == before
    time.sleep(1.5)  # the stopped trial's heartbeat is older than the rerun's grace period
    rerun = subprocess.run(
        [str(BIN / "autosize"), "-q", "run", str(config)],
        env={**env, "AUTOSIZE_HEARTBEAT_GRACE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="tiny", storage=make_storage(server))
    assert not [t.number for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert _counted(study) == TARGET
    assert {n: v for n, v in _finished_warm(server).items() if n in before} == before
