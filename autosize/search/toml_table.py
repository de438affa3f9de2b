"""Typed, exhaustive reading of one TOML table, for study configs.

Every read names the key; a wrong type or bound raises a one-line
:class:`~autosize.errors.ConfigError` with the file, the dotted key and the
value, and :meth:`Table.close` refuses keys nobody read (a typo is an error,
not a silently ignored setting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from autosize.errors import ConfigError

__all__ = ["Table"]


class Table:
    """Typed, exhaustive access to one TOML table; ``close()`` rejects what was not read."""

    def __init__(self, data: object, where: str, path: Path) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, Mapping):
            self.fail("", data, "a table")
        self.data: Mapping[str, object] = data  # type: ignore[assignment]
        self.seen: set[str] = set()

    def fail(self, key: str, value: object, expected: str) -> None:
        name = f"{self.where}.{key}" if key else self.where
        raise ConfigError(f"{self.path}: {name}: expected {expected}, got {value!r}")

    def get(self, key: str) -> object:
        self.seen.add(key)
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def str(
        self, key: str, default: str | None = None, *, choices: tuple[str, ...] | None = None
    ) -> str | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            self.fail(key, value, "a non-empty string")
        if choices is not None and value not in choices:
            self.fail(key, value, "one of " + ", ".join(repr(c) for c in choices))
        return value  # type: ignore[return-value]

    def int(self, key: str, default: int | None = None, *, low: int = 0) -> int | None:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.fail(key, value, f"an integer >= {low}")
        return value  # type: ignore[return-value]

    def float(
        self, key: str, default: float | None = None, *, low: float = 0.0, strict: bool = False
    ) -> float | None:
        value = self.get(key)
        if value is None:
            return default
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (value <= low if strict else value < low):  # type: ignore[operator]
            self.fail(key, value, f"a number {'>' if strict else '>='} {low:g}")
        return float(value)  # type: ignore[arg-type]

    def bool(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(key, value, "true or false")
        return value  # type: ignore[return-value]

    def range(
        self,
        key: str,
        default: tuple[float, float] | None,
        *,
        low: float = 0.0,
        strict: bool = True,
    ) -> tuple[float, float] | None:
        value = self.get(key)
        if value is None:
            return default
        ok = (
            isinstance(value, list)
            and len(value) == 2
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value
            )
        )
        if ok:
            lo, hi = float(value[0]), float(value[1])  # type: ignore[index]
            ok = (lo > low if strict else lo >= low) and lo <= hi
        if not ok:
            self.fail(key, value, f"[low, high] with {low:g} {'<' if strict else '<='} low <= high")
        return (lo, hi)

    def table(self, key: str) -> Table:
        value = self.get(key)
        return Table(
            {} if value is None else value, f"{self.where}.{key}" if self.where else key, self.path
        )

    def rest(self) -> dict[str, object]:
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
