"""Typed, exhaustive reading of one TOML table, for study configs.

Every read names the key; a wrong type or bound raises a one-line
:class:`~autosize.errors.ConfigError` with the file, the dotted key and the
value, and :meth:`Table.close` refuses keys nobody read (a typo is an error,
not a silently ignored setting).
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn, TypeVar, overload

from autosize.errors import ConfigError

__all__ = ["Table"]

# The readers below are named after the types they return (``t.str``, ``t.float``), so inside
# the class those names are the methods: annotations spell the types ``builtins.str`` etc.
_S = TypeVar("_S", bound=builtins.str)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Table:
    """Typed, exhaustive access to one TOML table; ``close()`` rejects what was not read."""

    def __init__(self, data: object, where: builtins.str, path: Path) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, Mapping):
            self.fail("", data, "a table")
        # TOML tables have string keys (tomllib, or a dict this module built from one).
        self.data: Mapping[builtins.str, object] = data
        self.seen: set[builtins.str] = set()

    def fail(self, key: builtins.str, value: object, expected: builtins.str) -> NoReturn:
        name = f"{self.where}.{key}" if key else self.where
        raise ConfigError(f"{self.path}: {name}: expected {expected}, got {value!r}")

    def get(self, key: builtins.str) -> object:
        self.seen.add(key)
        return self.data.get(key)

    def has(self, key: builtins.str) -> builtins.bool:
        return key in self.data

    # With ``choices`` (e.g. ``get_args(OptimizerName)``, the values of ``_S``) a value found
    # among them is an ``_S``; the default, or the variable assigned, fixes ``_S``.
    @overload
    def str(self, key: builtins.str, default: _S, *, choices: tuple[builtins.str, ...]) -> _S: ...
    @overload
    def str(
        self, key: builtins.str, default: builtins.str, *, choices: None = None
    ) -> builtins.str: ...
    @overload
    def str(
        self,
        key: builtins.str,
        default: None = None,
        *,
        choices: tuple[builtins.str, ...] | None = None,
    ) -> builtins.str | None: ...
    def str(
        self,
        key: builtins.str,
        default: builtins.str | None = None,
        *,
        choices: tuple[builtins.str, ...] | None = None,
    ) -> builtins.str | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, builtins.str) or not value:
            self.fail(key, value, "a non-empty string")
        if choices is not None and value not in choices:
            self.fail(key, value, "one of " + ", ".join(repr(c) for c in choices))
        return value

    @overload
    def int(
        self, key: builtins.str, default: builtins.int, *, low: builtins.int = 0
    ) -> builtins.int: ...
    @overload
    def int(
        self, key: builtins.str, default: None = None, *, low: builtins.int = 0
    ) -> builtins.int | None: ...
    def int(
        self, key: builtins.str, default: builtins.int | None = None, *, low: builtins.int = 0
    ) -> builtins.int | None:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, builtins.int) or value < low:
            self.fail(key, value, f"an integer >= {low}")
        return value

    @overload
    def float(
        self,
        key: builtins.str,
        default: builtins.float,
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = False,
    ) -> builtins.float: ...
    @overload
    def float(
        self,
        key: builtins.str,
        default: None = None,
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = False,
    ) -> builtins.float | None: ...
    def float(
        self,
        key: builtins.str,
        default: builtins.float | None = None,
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = False,
    ) -> builtins.float | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, builtins.int | builtins.float) or not _is_number(value):
            self.fail(key, value, f"a number {'>' if strict else '>='} {low:g}")
        if value <= low if strict else value < low:
            self.fail(key, value, f"a number {'>' if strict else '>='} {low:g}")
        return builtins.float(value)

    def bool(self, key: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, builtins.bool):
            self.fail(key, value, "true or false")
        return value

    @overload
    def range(
        self,
        key: builtins.str,
        default: tuple[builtins.float, builtins.float],
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = True,
    ) -> tuple[builtins.float, builtins.float]: ...
    @overload
    def range(
        self,
        key: builtins.str,
        default: tuple[builtins.float, builtins.float] | None,
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = True,
    ) -> tuple[builtins.float, builtins.float] | None: ...
    def range(
        self,
        key: builtins.str,
        default: tuple[builtins.float, builtins.float] | None,
        *,
        low: builtins.float = 0.0,
        strict: builtins.bool = True,
    ) -> tuple[builtins.float, builtins.float] | None:
        value = self.get(key)
        if value is None:
            return default
        expected = f"[low, high] with {low:g} {'<' if strict else '<='} low <= high"
        if not isinstance(value, list) or len(value) != 2 or not all(map(_is_number, value)):
            self.fail(key, value, expected)
        lo, hi = builtins.float(value[0]), builtins.float(value[1])
        if not ((lo > low if strict else lo >= low) and lo <= hi):
            self.fail(key, value, expected)
        return (lo, hi)

    def table(self, key: builtins.str) -> Table:
        value = self.get(key)
        return Table(
            {} if value is None else value, f"{self.where}.{key}" if self.where else key, self.path
        )

    def rest(self) -> dict[builtins.str, object]:
        """Everything not read yet (keyword arguments for a named component)."""
        out = {k: v for k, v in self.data.items() if k not in self.seen}
        self.seen.update(out)
        return out

    def close(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            key = unknown[0]
            name = f"{self.where}.{key}" if self.where else key
            raise ConfigError(f"{self.path}: unknown key {name!r}")
