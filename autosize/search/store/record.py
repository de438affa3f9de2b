"""One record of a trial, and of a study: every user attribute autosize writes, in one place.

Optuna keeps what autosize knows about a trial as user attributes (JSON values
by string key), so the ``optuna`` CLI, optuna-dashboard and any Optuna code can
read them. This module is the only one that spells those keys:

- :class:`TrialRecord` is the typed record of one trial; :func:`read` builds it
  from a trial (a missing key gets the field's default), :func:`write` stores
  fields by name and refuses a name that is not a field;
- :func:`study_meta` / :func:`write_study_meta` are the study's own record (the
  config's identity, data, objective, artifact folder), :func:`seed_info` /
  :func:`write_seed_info` the seed network's.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

__all__ = [
    "BASELINE",
    "KEYS",
    "WARMSTART",
    "TrialRecord",
    "is_blank",
    "read",
    "read_claim",
    "seed_info",
    "study_meta",
    "this_worker",
    "worker_attrs",
    "worker_gone",
    "write",
    "write_claim_beat",
    "write_seed_info",
    "write_study_meta",
]

BASELINE = "baseline"
WARMSTART = "warmstart"
# The fail_reason prefix of a trial whose network the artifact store could not take.
NOT_STORED = "not stored: "
_STUDY_META = "autosize"
_SEED_INFO = "seed"
_CLAIM = "claim"


class _HasUserAttrs(Protocol):
    @property
    def user_attrs(self) -> dict[str, Any]: ...


class _SetsUserAttrs(Protocol):
    def set_user_attr(self, key: str, value: Any) -> None: ...


@dataclass(frozen=True)
class TrialRecord:
    """What autosize records about one trial (every field is one user attribute)."""

    role: str = ""  # BASELINE or WARMSTART
    worker: str = ""  # who ran it: "host:pid" (several workers or machines share a study)
    pid_space: str = ""  # where that pid means something (PID_SPACE): a gone worker is told
    # Baselines: the architecture's JSON, so a resumed study trains only missing ones.
    baseline_key: str | None = None
    operation: str = ""  # human-readable, e.g. "widen(L0:32->64)"
    op_kind: str = ""  # the operation names, e.g. "widen+compress"
    parent: int | str | None = None  # "seed", a trial number, or None (baselines)
    lineage: tuple[str, ...] = ()
    inherited_epochs: int = 0  # training behind the parent (the seed's and every ancestor's)
    baseline_trial: int | None = None  # the baseline a warm-started trial is compared with
    architecture: str = ""
    spec: Mapping[str, Any] | None = None  # ArchSpec.to_dict()
    params: int | None = None
    flops: int | None = None
    epochs: int | None = None  # epochs trained in this trial
    lineage_epochs: int | None = None  # all the training behind the network
    stopped: str | None = None  # History.stopped
    # Stopped by the study's wall budget before its own ([train] max_seconds or epochs): a
    # baseline cut so is trained again by a resumed run that has the time.
    cut: bool = False
    seconds: float | None = None
    device: str = ""  # where it trained: History.device, e.g. "cpu" or "cuda:0"
    curve: tuple[float | None, ...] = ()  # per-epoch objective (None where not finite)
    widths: tuple[tuple[int, ...], ...] = ()  # compress: layer widths per epoch
    gain_curve: tuple[float, ...] = ()
    gain: float | None = None
    val: Mapping[str, float] = field(default_factory=dict)
    test: Mapping[str, float] = field(default_factory=dict)
    test_metric: float | None = None
    network_artifact: str | None = None
    fail_reason: str | None = None
    pruned_at: int | None = None
    pruned_reason: str | None = None
    # [study] cohort: the trial numbers trained together in one fit_population (this one's too).
    cohort: tuple[int, ...] = ()
    # [study] halving: the slice of its cohort's budget after which this trial stopped (the
    # cohort's worse half then); None: it trained the budget out (or no halving).
    halved: int | None = None

    @property
    def gone(self) -> bool:
        """Whether the worker that ran it is a process of this host that is gone."""
        return worker_gone(self.worker, self.pid_space)

    @property
    def is_baseline(self) -> bool:
        return self.role == BASELINE

    @property
    def is_warmstart(self) -> bool:
        return self.role == WARMSTART

    @property
    def interrupted(self) -> bool:
        return self.fail_reason == "interrupted"

    @property
    def redone(self) -> bool:
        """Failed through no fault of its own (interrupted, or its network could not be
        stored): it does not count towards n_trials, so a resumed study runs it again."""
        return self.interrupted or (self.fail_reason or "").startswith(NOT_STORED)


KEYS: frozenset[str] = frozenset(f.name for f in fields(TrialRecord))
_TUPLES = {"lineage", "curve", "gain_curve", "cohort"}


def is_blank(trial: _HasUserAttrs) -> bool:
    """Whether ``trial`` has no role: its worker stopped before writing it (every autosize
    trial writes its worker, pid space and role first thing, one storage call each)."""
    return "role" not in trial.user_attrs


def role(trial: _HasUserAttrs) -> str | None:
    """``read(trial).role`` without reading the rest (scans over every trial use it)."""
    value = trial.user_attrs.get("role")
    return value if isinstance(value, str) else None


def read(trial: _HasUserAttrs) -> TrialRecord:
    """The record of ``trial`` (an ``optuna.Trial`` or ``FrozenTrial``); unknown keys are ignored."""
    attrs = trial.user_attrs
    values: dict[str, Any] = {}
    for key in KEYS & attrs.keys():
        value = attrs[key]
        if key in _TUPLES and isinstance(value, list):
            value = tuple(value)
        elif key == "widths" and isinstance(value, list):
            value = tuple(tuple(int(w) for w in row) for row in value)
        elif key in ("val", "test") and isinstance(value, Mapping):
            value = dict(value)
        values[key] = value
    return TrialRecord(**values)


def this_worker() -> str:
    """This process as a trial's ``worker``: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_attrs() -> dict[str, str]:
    """A trial's ``worker`` and ``pid_space``, written first thing (worker first: a trial
    with a role always names its worker)."""
    return {"worker": this_worker(), "pid_space": PID_SPACE}


def _pid_space() -> str:
    """This machine's boot and pid namespace: two containers with one host name (host
    networking) see different processes under the same pids; so does a rebooted machine."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""  # not Linux: no pid is ever known to be gone


PID_SPACE = _pid_space()


def worker_gone(worker: object, pid_space: object) -> bool:
    """Whether ``worker`` (``host:pid``) is a process of this host's ``pid_space`` that is gone.

    A worker of this host can be asked without waiting for its heartbeat to go stale (Optuna's
    journal storage has none; a claim's lasts the grace period). Another host's worker, or a
    pid that is alive (perhaps reused), is not known to be gone: waiting too long for a
    worker beats taking its work from it wrongly.
    """
    if not isinstance(worker, str) or ":" not in worker or not PID_SPACE or pid_space != PID_SPACE:
        return False
    host, pid = worker.rsplit(":", 1)
    if host != socket.gethostname() or not (pid.isascii() and pid.isdigit()):
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (OSError, OverflowError):  # alive, another user's; no such pid can exist
        return False
    return False


def write(trial: _SetsUserAttrs, **attrs: Any) -> None:
    """Store ``attrs`` on ``trial``; every name must be a :class:`TrialRecord` field."""
    unknown = sorted(set(attrs) - KEYS)
    if unknown:
        raise KeyError(f"not a TrialRecord field: {', '.join(unknown)}")
    for key, value in attrs.items():
        trial.set_user_attr(key, list(value) if isinstance(value, tuple) else value)


def study_meta(study: _HasUserAttrs) -> dict[str, Any]:
    """The study's autosize record (empty for a study autosize did not write)."""
    meta = study.user_attrs.get(_STUDY_META)
    return dict(meta) if isinstance(meta, Mapping) else {}


def write_study_meta(study: _SetsUserAttrs, meta: Mapping[str, Any]) -> None:
    study.set_user_attr(_STUDY_META, dict(meta))


def seed_info(study: _HasUserAttrs) -> dict[str, Any]:
    """The seed network's record: key, artifact, architecture, epochs, metrics (or empty)."""
    info = study.user_attrs.get(_SEED_INFO)
    return dict(info) if isinstance(info, Mapping) else {}


def read_claim(lock: _HasUserAttrs) -> tuple[float | None, bool]:
    """A claim's lock study, read once: when its holder last beat (``time.time()``, or None)
    and whether that holder is a process of this host that is gone (:func:`worker_gone`)."""
    info = lock.user_attrs.get(_CLAIM)
    if not isinstance(info, Mapping):
        return None, False
    beat = info.get("beat")
    gone = worker_gone(info.get("worker"), info.get("pid_space"))
    return (float(beat) if isinstance(beat, int | float) else None), gone


def write_claim_beat(lock: _SetsUserAttrs, *, at: float | None = None) -> None:
    """The claim holder's heartbeat: the time and who holds it."""
    lock.set_user_attr(
        _CLAIM,
        {
            "beat": time.time() if at is None else at,
            "worker": this_worker(),
            "pid_space": PID_SPACE,
        },
    )


def write_seed_info(study: _SetsUserAttrs, info: Mapping[str, Any]) -> None:
    study.set_user_attr(_SEED_INFO, dict(info))
