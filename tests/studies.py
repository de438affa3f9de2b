"""The tiny add10 study the study-running tests share: a few seconds from seed to report.

Import it from a test module as ``from studies import tiny_config`` (pytest puts
``tests/`` on ``sys.path``, as it has no ``__init__.py``).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

# The marks of a module of study-running tests: Optuna's experimental warnings (the
# heartbeat) are expected there, and one torch thread keeps them quick on two cores.
STUDY_MARKS = [
    pytest.mark.filterwarnings(
        "ignore::optuna.exceptions.ExperimentalWarning",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]


def run_main(*argv: str) -> tuple[int, str, str]:
    """``autosize`` in this process, as a fresh ``autosize`` process would run: its exit
    code, stdout and stderr.

    A study's wall budget counts from the process's start, and pytest's process may be
    minutes old (enough to spend a ``timeout = 300`` before the first trial): here it counts
    from this call.
    """
    import time
    from unittest import mock

    from autosize.cli import main

    out, err = io.StringIO(), io.StringIO()
    started = time.time()
    with (
        mock.patch("autosize.search.deadline.process_start", lambda: started),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def _section(name: str, body: str) -> str:
    return f"[{name}]\n{body}\n" if body else ""


def tiny_config(
    root: Path,
    *,
    name: str = "tiny",
    storage: str | None = None,
    n_trials: int = 3,
    study: str = "",
    seed_epochs: int = 2,
    train_epochs: int = 2,
    train: str = "",
    search: str = "",
    baselines: str = "scales = [2.0]",
    pruner: str = "",
    extra: str = "",
    filename: str = "study.toml",
) -> Path:
    """Write the tiny add10 study config under ``root`` and return its path.

    ``study``/``train`` add TOML lines to those tables; ``search``/``baselines``/``pruner``
    are the bodies of their tables (an empty body leaves the table out); ``extra`` is
    appended verbatim after them. The storage defaults to ``sqlite:///root/s.db`` and
    the artifacts always go to ``root/art``.
    """
    root.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{root / 's.db'}"
    text = f"""\
[study]
name = "{name}"
storage = "{storage}"
artifacts = "{root / "art"}"
n_trials = {n_trials}
objective = "val_rmse"
{study}

[data]
name = "add10"
max_train = 600
max_val = 200
max_test = 200

[seed]
layers = [{{ type = "dense", width = 4 }}]
epochs = {seed_epochs}

[train]
epochs = {train_epochs}
{train}

{_section("search", search)}
{_section("baselines", baselines)}
{_section("pruner", pruner)}
{extra}
"""
    path = root / filename
    path.write_text(text, encoding="utf-8")
    return path


def worker_without_the_seed(config_path: str, *args: object) -> None:
    """A ``--workers`` worker whose study has lost the seed's network (its artifact files
    deleted, as a wiped disk would): what it says should be one line."""
    from autosize.search import workers

    for f in (Path(config_path).parent / "art").iterdir():
        f.unlink(missing_ok=True)
    workers.worker(config_path, *args)  # type: ignore[arg-type]
