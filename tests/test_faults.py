"""Workers that die: heartbeats, stale trials failed and redone, nothing lost (SQLite here;
the same code paths serve PostgreSQL)."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autosize.cli import EXIT_INTERRUPTED
from autosize.errors import StudyError
from autosize.search import load_config, run_study
from autosize.search.optimize import counted as _counted
from autosize.search.store import record as record_mod
from autosize.search.store import storage as storage_mod
from autosize.search.store.storage import make_storage
from studies import STUDY_MARKS, tiny_config

pytestmark = STUDY_MARKS
optuna.logging.set_verbosity(optuna.logging.WARNING)
BIN = Path(sys.executable).parent


def _running_warm_trials(db: Path) -> set[int]:
    """RUNNING trials with role warmstart and a heartbeat, read with plain SQL (no Optuna in
    the loop)."""
    try:
        with sqlite3.connect(db, timeout=5) as con:
            rows = con.execute(
                "SELECT t.trial_id FROM trials t JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                "WHERE t.state = 'RUNNING' AND a.key = 'role' AND a.value_json = '\"warmstart\"'"
            ).fetchall()
    except sqlite3.Error:
        return set()
    return {int(r[0]) for r in rows}


def _wait_for_a_new_warm_trial(db: Path, proc: subprocess.Popen[bytes]) -> None:
    """Until a warm-started trial starts that was not running at the previous look (so it has
    run for at most one poll): a signal then lands inside it, not after it, while Optuna
    creates the next trial (which would leave that one RUNNING, without a role)."""
    deadline = time.time() + 120
    before = _running_warm_trials(db)
    while True:
        assert proc.poll() is None, "the run ended before a warm-started trial started"
        assert time.time() < deadline, "no warm-started trial started"
        time.sleep(0.1)
        now = _running_warm_trials(db)
        if now - before:
            return
        before = now


@pytest.mark.slow
def test_a_sigkilled_worker_leaves_no_running_trial_and_its_trial_is_redone(
    tmp_path: Path,
) -> None:
    # No pruning: every warm-started trial lasts its 3 s, so the kill lands inside one.
    config = tiny_config(
        tmp_path, n_trials=4, train_epochs=100000, train="max_seconds = 3", pruner='name = "none"'
    )
    db = tmp_path / "s.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(BIN / "autosize"), "-q", "run", str(config)], env=env)
    try:
        _wait_for_a_new_warm_trial(db, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    killed = [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert len(killed) == 1
    # A later run fails the dead worker's trial at once (its heartbeat is older than the
    # grace period) and runs the study to its target without counting it.
    rerun = subprocess.run(
        [str(BIN / "autosize"), "-q", "run", str(config)],
        env={**env, "AUTOSIZE_HEARTBEAT_GRACE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    trials = study.get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    dead = trials[killed[0].number]
    assert dead.state == TrialState.FAIL and "fail_reason" not in dead.user_attrs
    warm = [t for t in trials if t.user_attrs.get("role") == "warmstart"]
    finished = [t for t in warm if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4 == _counted(study)
    assert {t.user_attrs["worker"] for t in finished} - {dead.user_attrs["worker"]}


@pytest.mark.slow
def test_sigterm_ends_the_running_trial_as_interrupted_and_it_is_redone(tmp_path: Path) -> None:
    config = tiny_config(
        tmp_path, n_trials=3, train_epochs=100000, train="max_seconds = 3", pruner='name = "none"'
    )
    db = tmp_path / "s.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [str(BIN / "autosize"), "-q", "run", str(config)], env=env, stderr=subprocess.PIPE
    )
    _wait_for_a_new_warm_trial(db, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert b"still winding down" not in err, err.decode()  # a hang: the stacks say where
    assert b"autosize: interrupted" in err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    [stopped] = [t for t in study.get_trials() if t.state == TrialState.FAIL]
    assert stopped.user_attrs["fail_reason"] == "interrupted"
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    assert (
        _counted(study)
        == len([t for t in study.get_trials() if t.user_attrs.get("role") == "warmstart"]) - 1
    )


HANGS_AFTER_AN_INTERRUPT = """
import sys, threading, time
from autosize import interrupts
interrupts.install(grace=float(sys.argv[1]))
held = threading.Lock()
held.acquire()  # a lock that a library took and the interrupt kept it from releasing
try:
    print("ready", flush=True)  # inside the try: the signal cannot land before it
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted; winding down", flush=True)
    held.acquire()  # waits for ever
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_wind_down_that_hangs_after_an_interrupt_ends_after_the_grace(sig: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGS_AFTER_AN_INTERRUPT, "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    start = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_INTERRUPTED
    assert out == b"interrupted; winding down\n"
    assert 0.5 <= time.monotonic() - start < 20
    assert b"autosize: interrupted, and still winding down after 0.5 s" in err
    assert b'File "<string>", line 12 in <module>' in err  # where the main thread hung


# A child process with autosize's interrupt handling and a storage at sys.argv[1].
CHILD_WITH_A_STORAGE = """
import os, signal, sys, time
import optuna
from autosize import interrupts
from autosize.search.store.storage import make_storage
interrupts.install(grace=20)
"""

INTERRUPTED_INSIDE_A_STORAGE_CALL = (
    CHILD_WITH_A_STORAGE
    + """
from sqlalchemy import event
storage = make_storage("sqlite:///" + sys.argv[1])
engine = getattr(storage, "_backend", storage).engine
study = optuna.create_study(study_name="s", storage=storage)
trial = study.ask()
armed = False
def lands_mid_write(conn, cursor, statement, *args):
    global armed
    if armed and statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
        armed = False
        os.kill(os.getpid(), signal.SIGTERM)  # after the write began, before its commit
        time.sleep(0.2)
def committed(conn):
    print("committed", flush=True)
event.listen(engine, "before_cursor_execute", lands_mid_write)
armed = True
try:
    trial.set_user_attr("a", 1)
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    event.listen(engine, "commit", committed)
    trial.set_user_attr("fail_reason", "interrupted")  # the wind-down writes too
    print("interrupted after the write", flush=True)
"""
)


def test_an_interrupt_inside_a_storage_call_is_raised_when_the_call_returns(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_INSIDE_A_STORAGE_CALL, str(db)],
        capture_output=True,
        timeout=60,
    )
    assert proc.stdout == b"committed\ninterrupted after the write\n", proc.stderr.decode()
    assert proc.returncode == 0, proc.stderr.decode()
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{db}")
    assert study.trials[0].user_attrs == {"a": 1, "fail_reason": "interrupted"}


WAITS_FOR_THE_JOURNAL_LOCK = (
    CHILD_WITH_A_STORAGE
    + """
study = optuna.create_study(study_name="s", storage=make_storage("journal:" + sys.argv[1]))
trial = study.ask()
print("ready", flush=True)
sys.stdin.readline()  # the test now holds the journal's lock
try:
    trial.set_user_attr("a", 1)  # waits for the lock; SIGTERM arrives meanwhile
    print("not interrupted", flush=True)
except KeyboardInterrupt:
    print("interrupted after the write", flush=True)
"""
)


def test_an_interrupt_while_waiting_for_the_journal_lock_leaves_that_lock_alone(
    tmp_path: Path,
) -> None:
    # Optuna's lock, interrupted while it waits, deletes the lock file it never held: another
    # process's, which then writes beside this one. Shielded, the append waits, then raises.
    from optuna.storages.journal import JournalFileSymlinkLock

    log = tmp_path / "s.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", WAITS_FOR_THE_JOURNAL_LOCK, str(log)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    lock = JournalFileSymlinkLock(str(log))
    lock.acquire()  # another writer's lock
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read().decode()  # still waiting for the lock
    assert Path(str(log) + ".lock").is_symlink()  # and the lock is still ours
    lock.release()
    out, err = proc.communicate(timeout=30)
    assert out == b"interrupted after the write\n", err.decode()
    assert proc.returncode == 0, err.decode()
    study = optuna.load_study(study_name="s", storage=make_storage(f"journal:{log}"))
    assert study.trials[0].user_attrs == {"a": 1}


# The test asks a trial itself (a dead worker's), outside Study.optimize: Optuna warns.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_run_fails_stale_trials_when_it_starts_even_with_nothing_left_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(tiny_config(tmp_path, n_trials=1))
    run_study(config)
    # A worker that died mid-trial: a RUNNING trial whose heartbeat stopped.
    storage = make_storage(config.storage)
    study = optuna.load_study(study_name="tiny", storage=storage)
    trial = study.ask()
    trial.set_user_attr("role", "warmstart")
    storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    time.sleep(2.5)  # SQLite's clock has whole seconds
    monkeypatch.setenv("AUTOSIZE_HEARTBEAT_GRACE", "1")
    run_study(config)  # the target is met: no trial runs, but the dead one is failed
    study = optuna.load_study(study_name="tiny", storage=config.storage)
    assert study.trials[trial.number].state == TrialState.FAIL
    assert _counted(study) == 1


# The test asks a trial itself (a dead worker's), outside Study.optimize: Optuna warns.
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_trial_killed_before_its_first_heartbeat_is_failed_when_a_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autosize.search.store.storage import fail_stale

    monkeypatch.setenv("AUTOSIZE_HEARTBEAT_GRACE", "1")
    study = optuna.create_study(
        study_name="s", storage=make_storage(f"sqlite:///{tmp_path / 'a.db'}")
    )
    dead = study.ask()  # created, then SIGKILL: no heartbeat, no attribute
    half = study.ask()  # killed between its worker's write and its role's
    half.set_user_attr("worker", "somewhere:1")
    alive = study.ask()
    alive.set_user_attr("role", "warmstart")  # a trial of autosize's records its role first
    fail_stale(study)
    assert study.trials[dead.number].state == TrialState.RUNNING  # too young to tell
    time.sleep(2.2)
    fail_stale(study)
    assert study.trials[dead.number].state == study.trials[half.number].state == TrialState.FAIL
    assert study.trials[alive.number].state == TrialState.RUNNING  # left to its heartbeat


@pytest.mark.skipif(not record_mod.PID_SPACE, reason="needs /proc (Linux): pids are not asked")
def test_a_journal_storage_fails_the_running_trials_of_this_hosts_gone_workers(
    tmp_path: Path,
) -> None:
    # Optuna's journal storage has no heartbeat: a SIGKILLed run's trial stayed RUNNING for
    # ever. A run now fails those whose worker (host:pid) is a process of this host (and boot
    # and pid namespace) that is gone.
    import socket

    from autosize.search.store import record

    storage = f"journal:{tmp_path / 's.log'}"
    study = run_study(load_config(tiny_config(tmp_path, storage=storage, n_trials=2)))
    gone = subprocess.Popen(["true"])
    gone.wait()
    here = socket.gethostname()
    killed, elsewhere, container, alive = (study.ask() for _ in range(4))
    space = record.PID_SPACE
    for trial, worker, pid_space in (
        (killed, f"{here}:{gone.pid}", space),
        (elsewhere, f"another-{here}:{gone.pid}", space),  # cannot be asked: left to run
        (container, f"{here}:{gone.pid}", "another boot or pid namespace"),  # the same
        (alive, f"{here}:{os.getppid()}", space),
    ):
        record.write(trial, worker=worker, pid_space=pid_space, role=record.WARMSTART)
    study = run_study(load_config(tiny_config(tmp_path, storage=storage, n_trials=3)))
    states = {t.number: t.state for t in study.get_trials()}
    assert states[killed.number] == TrialState.FAIL
    running = (elsewhere, container, alive)
    assert [states[t.number] for t in running] == [TrialState.RUNNING] * 3
    assert _counted(study) == 3


@pytest.mark.parametrize("value", ["0", "soon", "-3"])
def test_a_bad_grace_period_is_one_line_naming_the_variable(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTOSIZE_HEARTBEAT_GRACE", value)
    with pytest.raises(StudyError, match=f"AUTOSIZE_HEARTBEAT_GRACE: .*{value!r}"):
        make_storage(f"sqlite:///{tmp_path / 'x.db'}")


def test_a_schema_race_is_retried_and_other_errors_are_not(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []
    real = storage_mod.ReconnectingRDBStorage

    class IntegrityError(Exception):
        pass

    def flaky(url: str, **kwargs: object) -> object:
        calls.append(url)
        if len(calls) == 1:
            raise IntegrityError('duplicate key value violates unique constraint "alembic_version"')
        return real(url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage_mod, "ReconnectingRDBStorage", flaky)
    make_storage(f"sqlite:///{tmp_path / 'a.db'}")
    assert len(calls) == 2
    calls.clear()

    def broken(url: str, **kwargs: object) -> object:
        calls.append(url)
        raise ValueError("no such dialect")

    monkeypatch.setattr(storage_mod, "ReconnectingRDBStorage", broken)
    with pytest.raises(StudyError, match=r"storage 'postgresql://me:\*\*\*@db/x': cannot open"):
        make_storage("postgresql://me:secret@db/x")
    assert len(calls) == 1


@pytest.mark.parametrize("lost", [True, False], ids=["connection-lost", "real-fallback"])
def test_optunas_fallback_warning_goes_only_when_the_connection_was_lost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lost: bool
) -> None:
    # Optuna's _get_trials reads any OperationalError as "too many IN variables": it warns
    # with the SQL and queries again. A lost connection fails that query too, and then its
    # warning would stand in front of the study's one "connection lost" line.
    from optuna.storages import RDBStorage
    from sqlalchemy.exc import OperationalError

    storage = make_storage(f"sqlite:///{tmp_path / 's.db'}")
    study_id = optuna.create_study(storage=storage, study_name="s")._study_id
    optuna_log = logging.getLogger("optuna.storages._rdb.storage")
    real = RDBStorage._get_trials
    calls: list[int] = []

    def get_trials(self: RDBStorage, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            optuna_log.warning(
                "Caught an error from sqlalchemy: x. Falling back to a slower alternative."
            )
            if lost:
                raise OperationalError("SELECT", {}, Exception("terminating connection"))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(RDBStorage, "_get_trials", get_trials)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign,assignment]
    optuna_log.addHandler(handler)
    try:
        assert storage._get_trials(study_id, None, set(), -1) == []  # type: ignore[attr-defined]
    finally:
        optuna_log.removeHandler(handler)
    assert len(calls) == (2 if lost else 1)
    assert [r.getMessage().startswith("Caught an error") for r in seen] == ([] if lost else [True])


@pytest.mark.parametrize("damage", ["truncated", "foreign", "missing"])
def test_a_damaged_seed_artifact_is_one_line_naming_it_and_nothing_is_written(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from autosize.cli import EXIT_USER_ERROR, main

    config = tiny_config(tmp_path, n_trials=1)
    assert main(["-q", "run", str(config)]) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}")
    artifact = tmp_path / "art" / study.user_attrs["seed"]["artifact_id"]
    data = artifact.read_bytes()
    if damage == "truncated":
        artifact.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        artifact.write_bytes(b"not a safetensors file" * 10)
    else:
        artifact.unlink()
    capsys.readouterr()
    code = main(["-q", "run", str(config), "--n-trials", "3"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert "\n" not in err
    assert f"the seed network: artifact {artifact.name}" in err
    # No trial was started on a seed that could not be loaded.
    assert len(
        optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 's.db'}").trials
    ) == len(study.trials)


@pytest.mark.parametrize("cohort", [1, 2])
def test_a_full_artifact_store_mid_study_is_one_line_and_the_study_resumes(
    tmp_path: Path, cohort: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk under the artifact folder fills after the seed and two trials' networks:
    `autosize run` stops with one line naming the store and the trial, the finished trials
    and their networks are kept, and the trials it stopped are redone once space is back."""
    import errno

    from optuna.artifacts import FileSystemArtifactStore

    from autosize.cli import EXIT_USER_ERROR, main
    from autosize.search.store.networks import artifact_store, download_network

    config = tiny_config(tmp_path, n_trials=5, study=f"cohort = {cohort}", baselines="")
    real_write = FileSystemArtifactStore.write
    writes: list[str] = []

    def write(self: FileSystemArtifactStore, artifact_id: str, body: object) -> None:
        writes.append(artifact_id)
        if len(writes) > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, artifact_id, body)  # type: ignore[arg-type]

    monkeypatch.setattr(FileSystemArtifactStore, "write", write)
    code = main(["-q", "run", str(config)])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USER_ERROR, err
    assert "\n" not in err, err
    assert f"artifact store {tmp_path / 'art'}: cannot store trial " in err
    assert "No space left on device" in err and "run again to resume" in err

    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    states = [t.state for t in study.trials]
    assert TrialState.RUNNING not in states
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2
    store = artifact_store(tmp_path / "art")
    for t in complete:  # the kept networks load
        download_network(store, str(t.user_attrs["network_artifact"]))
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["fail_reason"].startswith("not stored: ") for t in failed)

    monkeypatch.setattr(FileSystemArtifactStore, "write", real_write)
    assert main(["-q", "run", str(config)]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert _counted(study) == 5  # the stopped trials were redone, not counted
    assert [t.number for t in study.trials if t.state == TrialState.FAIL] == [
        t.number for t in failed
    ]
