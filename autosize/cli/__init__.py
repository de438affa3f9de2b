"""The ``autosize`` command line.

Each subcommand lives in its own module under :mod:`autosize.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed namespace and returning an exit code. ``main`` only
dispatches and turns :class:`~autosize.errors.AutosizeError` into one line on
stderr with exit code 2 (a database lost mid-run, :class:`~autosize.errors.StorageLost`:
one line, exit code 3).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from autosize import interrupts
from autosize.errors import AutosizeError, StorageLost

__all__ = ["entry", "main"]

# Subcommand modules, in the order `autosize --help` lists them.
COMMANDS: tuple[str, ...] = ("data", "run", "export", "predict", "train", "report", "dashboard")

EXIT_USER_ERROR = 2
# The study's database went away mid-run and did not come back (autosize.errors.StorageLost).
EXIT_STORAGE_LOST = 3
EXIT_INTERRUPTED = interrupts.EXIT_INTERRUPTED  # 130, as a shell reports Ctrl-C


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line like every other user error (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Commands that import Optuna anyway: its own log lines follow autosize's level there.
_OPTUNA_COMMANDS = ("run", "export", "report", "dashboard")


def _output_flags(parser: argparse.ArgumentParser, *, default: object) -> None:
    """-v, -q and --debug; on the subcommands with a suppressed default, so that
    ``autosize run -v`` and ``autosize -v run`` mean the same."""
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks and debug logs"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default,
        help="log progress (INFO), Optuna's own lines and warnings included",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default,
        help="only errors and the final summary",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from autosize import __version__

    parser = _Parser(
        prog="autosize",
        description="Find the right size for a neural network with Optuna.",
    )
    parser.add_argument("--version", action="version", version=f"autosize {__version__}")
    _output_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"autosize.cli.{name}").register(sub)
    commands = list(sub.choices.values())
    while commands:  # the subcommands, and theirs (`autosize data list -v`)
        command = commands.pop()
        _output_flags(command, default=argparse.SUPPRESS)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                commands.extend(action.choices.values())
    return parser


def _quiet_optuna(args: argparse.Namespace, level: int) -> None:
    """Optuna's INFO lines ("Trial 3 finished ...") and its known warnings (experimental
    features autosize uses on purpose: heartbeats, the journal storage) only with -v: the
    one place every command's Optuna output is set."""
    import warnings

    if args.verbose or args.debug or args.command not in _OPTUNA_COMMANDS:
        return
    import optuna

    optuna.logging.set_verbosity(max(level, logging.WARNING))
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.DEBUG
        if args.debug
        else logging.INFO
        if args.verbose
        else logging.ERROR
        if args.quiet
        else logging.WARNING
    )
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    _quiet_optuna(args, level)
    try:
        return int(args.func(args) or 0)
    except AutosizeError as exc:
        if args.debug:
            raise
        print(f"autosize: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except StorageLost as exc:
        if args.debug:
            raise
        print(f"autosize: error: {exc}", file=sys.stderr)
        return EXIT_STORAGE_LOST
    except KeyboardInterrupt:
        print("autosize: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `autosize data list | head`
        sys.stderr.close()
        return 0


def entry() -> None:
    """The ``autosize`` console script: :func:`main`, then exit with its code at once
    (``os._exit``, after flushing the output; see below)."""
    code = main()
    # The process ends at once, after an interrupt and after a normal end alike. Everything
    # is written and closed by now (storage, artifacts, exports); the interpreter's own
    # shutdown would only free memory, and it costs: the cyclic collector over every object
    # torch, Optuna and pandas left, and libtorch's destructors faulting its code pages back
    # in (2.1 s after a 40-s MNIST study, 4.5 s after a 600-s one, seen with perf; far more
    # on a machine whose page cache has dropped them), all counted in the wall budget.
    # After an interrupt (Ctrl-C, SIGTERM) it is a must: one can land between an Optuna
    # trial and the stop of its heartbeat thread, a non-daemon thread that would keep the
    # process alive for ever.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`), a closed file
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
