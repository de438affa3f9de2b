"""The tiny add10 study the study-running tests share: a few seconds from seed to report.

Import it from a test module as ``from studies import tiny_config`` (pytest puts
``tests/`` on ``sys.path``, as it has no ``__init__.py``).
"""

from __future__ import annotations

from pathlib import Path


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
