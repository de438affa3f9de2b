"""Argument types shared by subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from autosize.errors import ConfigError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def cohort_size(text: str) -> int | str:
    """``--cohort``: a positive integer or "auto"."""
    if text == "auto":
        return text
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f'expected a positive integer or "auto", got {text!r}'
        ) from None


def _first_existing(path: Path) -> Path:
    """``path`` or the nearest of its parents that exists (what creating it would write in)."""
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_out_folder(path: Path, flag: str = "--out", *, empty: bool = False) -> None:
    """Refuse, before any work, an output folder that cannot be made or written: one line
    naming it (exit code 2), instead of a traceback after the work. ``empty``: an existing
    folder must be empty."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is not a folder")
    if empty and path.is_dir() and any(path.iterdir()):
        raise ConfigError(
            f"{flag} {path}: the folder exists and is not empty; name a new one or empty it"
        )
    _check_writable_in(path, flag, shown=path)


def check_out_file(path: Path, flag: str = "--out", *, force: bool = True) -> None:
    """The same for an output file; without ``force`` an existing file is refused."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder")
    if not force and path.exists():
        raise ConfigError(f"{flag} {path}: exists; pass --force to overwrite it")
    _check_writable_in(path.parent, flag, shown=path)


def _check_writable_in(folder: Path, flag: str, *, shown: Path) -> None:
    existing = _first_existing(folder)
    if not existing.is_dir():
        raise ConfigError(f"{flag} {shown}: cannot create it, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {shown}: {existing} is not writable by this user")
