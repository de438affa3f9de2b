"""One base class for every error a user can cause.

The CLI turns an :class:`AutosizeError` into a single line on stderr and exit
code 2 (``--debug`` shows the traceback). Library code raises the most specific
subclass and puts the offending file, key or value in the message.
"""

from __future__ import annotations

__all__ = [
    "AutosizeError",
    "ConfigError",
    "DataError",
    "SpecError",
    "StorageLost",
    "StudyError",
]


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


class ArtifactWriteError(StudyError):
    """The artifact store could not take a network (a full disk, a lost S3 connection):
    the study stops there, and the trial being stored is redone when it resumes."""


class StorageLost(BaseException):
    """The study's database went away and did not come back within the retry window.

    A BaseException, like KeyboardInterrupt, so that it stops the worker where it is:
    Optuna's trial loop catches every Exception to record the trial as failed, which needs
    the very storage that is gone. The CLI reports it in one line with exit code 3; the
    trial that was running stays RUNNING and is failed by the heartbeat (not counted).
    """
