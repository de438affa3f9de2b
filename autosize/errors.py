"""One base class for every error a user can cause.

The CLI turns an :class:`AutosizeError` into a single line on stderr and exit
code 2 (``--debug`` shows the traceback). Library code raises the most specific
subclass and puts the offending file, key or value in the message.
"""

from __future__ import annotations

__all__ = ["AutosizeError", "ConfigError", "DataError", "SpecError", "StudyError"]


class AutosizeError(Exception):
    """Base class: bad input from the user, reported in one line."""


class ConfigError(AutosizeError):
    """A study config (TOML) or a command-line option is invalid."""


class DataError(AutosizeError):
    """A dataset is unknown, missing, or fails its checksum."""


class SpecError(AutosizeError):
    """An architecture description (ArchSpec) is invalid, or a transform cannot apply."""


class StudyError(AutosizeError):
    """A study, trial or artifact that was asked for does not exist or cannot be used."""
