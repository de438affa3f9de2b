"""The ``[data]`` table of a study config: a named dataset with its options, or a user's own
table or image files (paths relative to the config file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from autosize.search.config.schema import DataConfig
from autosize.search.config.toml_table import Table

__all__ = ["FILE_DATASETS", "data_config"]

# Datasets read from the user's own files; their keys sit in [data] itself.
FILE_DATASETS: tuple[str, ...] = ("table", "images")


def data_config(data_t: Table, path: Path) -> DataConfig:
    """``[data]``, checked: a dataset name and its options."""
    data_name = data_t.str("name")
    if data_name is None:
        data_t.fail("name", None, "a dataset name")
    raw_options = data_t.get("options") or {}
    if not isinstance(raw_options, Mapping):
        data_t.fail("options", raw_options, "a table of dataset options")
    options: Mapping[str, object] = raw_options  # a TOML table: string keys
    if data_name in FILE_DATASETS:
        if options:
            data_t.fail(
                "options", options, f"no [data.options] for {data_name!r}: its keys go in [data]"
            )
        options = _file_options(data_t, path, data_name)
    data = DataConfig(
        name=data_name,
        data_dir=data_t.str("data_dir", None),
        options=dict(options),
        max_train=data_t.int("max_train", None, low=1),
        max_val=data_t.int("max_val", None, low=1),
        max_test=data_t.int("max_test", None, low=1),
    )
    data_t.close()
    return data


_TASKS = ("classification", "regression")


def _columns(t: Table, key: str) -> list[str]:
    value = t.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        t.fail(key, value, "a list of column names")
    return list(value)


def _file_options(t: Table, path: Path, kind: str) -> dict[str, object]:
    """The [data] keys of a table or images: file paths are relative to the config file."""
    here = path.resolve().parent

    def file(key: str, required: bool = False) -> str | None:
        value = t.str(key, None)
        if value is None:
            if required:
                t.fail(key, None, "a file name (relative to the config file)")
            return None
        return str((here / Path(value).expanduser()).resolve())

    options: dict[str, object] = {"path": file("path", required=True)}
    if kind == "table":
        target = t.str("target", None)
        if target is None:
            t.fail("target", None, "the name of the column to predict")
        options["target"] = target
    for key in ("val_path", "test_path"):
        if (value := file(key)) is not None:
            options[key] = value
    if (task := t.str("task", None, choices=_TASKS)) is not None:
        options["task"] = task
    if kind == "table":
        if (group := t.str("group", None)) is not None:
            options["group"] = group
        for key in ("categorical", "drop"):
            if names := _columns(t, key):
                options[key] = names
        if t.get("identifiers") is not None:  # [] too: no column is an identifier
            options["identifiers"] = _columns(t, "identifiers")
    for key in ("val_fraction", "test_fraction"):
        fraction = t.float(key, None, strict=True)
        if fraction is not None:
            if fraction >= 1.0:
                t.fail(key, fraction, "a number in (0, 1)")
            options[key] = fraction
    return options
