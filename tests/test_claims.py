"""Claims: work that exactly one of several processes does (the seed, the baselines)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import optuna
import pytest

from autosize.search.store import claims, record
from autosize.search.store.claims import claim
from autosize.search.store.storage import make_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _studies(url: str) -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(make_storage(url)))


def test_one_of_several_gets_the_work_and_the_others_wait_for_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    make_storage(url)
    done = threading.Event()
    got: list[bool] = []
    finished_at: list[float] = []
    work_done_at: list[float] = []

    def worker() -> None:
        with claim(url, "study", "seed", done=done.is_set, wait=True) as mine:
            got.append(mine)
            if mine:
                time.sleep(0.8)  # the work
                work_done_at.append(time.time())
                done.set()
        finished_at.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(got) == [False, False, False, True]
    # Nobody went on before the work was there.
    assert min(finished_at) >= work_done_at[0]
    assert _studies(url) == []  # the lock is gone


def test_without_wait_the_others_go_on_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    make_storage(url)
    with claim(url, "study", "baselines", done=lambda: False, wait=False) as mine:
        assert mine
        start = time.time()
        with claim(url, "study", "baselines", done=lambda: False, wait=False) as other:
            assert not other
        assert time.time() - start < 5
        assert _studies(url) == ["study.autosize-lock.baselines.0"]
    assert _studies(url) == []


def test_work_already_done_takes_no_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with claim(url, "study", "seed", done=lambda: True, wait=True) as mine:
        assert not mine
        assert _studies(url) == []


def test_a_dead_holder_is_taken_over_after_the_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("AUTOSIZE_HEARTBEAT_GRACE", "1")
    # A holder that died: its lock exists and its last beat is old.
    lock = optuna.create_study(study_name="study.autosize-lock.seed.0", storage=make_storage(url))
    record.write_claim_beat(lock, at=time.time() - 10)
    start = time.time()
    with claim(url, "study", "seed", done=lambda: False, wait=True) as mine:
        assert mine
        assert "study.autosize-lock.seed.1" in _studies(url)
    assert time.time() - start < 10
    assert _studies(url) == []  # its own lock and the dead holder's are removed


@pytest.mark.skipif(not record.PID_SPACE, reason="needs /proc (Linux): pids are not asked")
def test_a_holder_gone_from_this_machine_is_taken_over_at_once(tmp_path: Path) -> None:
    # A run SIGKILLed while it trained the baselines, rerun within the grace period: its lock
    # still beats fresh, but its pid is gone here, so the rerun does the work (it skipped it).
    import socket
    import subprocess

    url = f"sqlite:///{tmp_path / 's.db'}"
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = optuna.create_study(
        study_name="study.autosize-lock.baselines.0", storage=make_storage(url)
    )
    holder = {"worker": f"{socket.gethostname()}:{gone.pid}", "pid_space": record.PID_SPACE}
    lock.set_user_attr("claim", {"beat": time.time(), **holder})
    assert record.read_claim(lock)[1]
    with claim(url, "study", "baselines", done=lambda: False, wait=False) as mine:
        assert mine
    # The same pid in another boot or pid namespace (a container with this host's name) is
    # not known to be gone: left to its heartbeat.
    lock = optuna.create_study(
        study_name="study.autosize-lock.baselines.0", storage=make_storage(url)
    )
    lock.set_user_attr("claim", {"beat": time.time(), **holder, "pid_space": "elsewhere"})
    with claim(url, "study", "baselines", done=lambda: False, wait=False) as mine:
        assert not mine


def test_a_live_holder_keeps_beating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("AUTOSIZE_HEARTBEAT_GRACE", "1")
    monkeypatch.setattr(claims, "POLL_SECONDS", 0.1)
    give_up = time.time() + 2.5
    with claim(url, "study", "seed", done=lambda: False, wait=True) as mine:
        assert mine
        # Longer than the grace period: a waiter never takes over a holder that beats.
        with claim(
            url, "study", "seed", done=lambda: False, wait=True, give_up_at=give_up
        ) as other:
            assert not other
        assert time.time() >= give_up
