"""Strict reading of a TOML table: every problem is one line naming file, key and problem."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")


class RulesError(Exception):
    """A rules or admin-units file that cannot be used; ``str()`` is one readable line."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


def read_toml(path: Path | str) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a :class:`RulesError`."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise RulesError(path, "", "file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise RulesError(path, "", f"not valid TOML: {e}") from None


class Table:
    """One TOML table being read. Keys never read are reported by :meth:`finish`."""

    def __init__(self, data: Any, path: Path | str, key: str) -> None:
        if not isinstance(data, Mapping):
            raise RulesError(path, key, f"must be a table, not {type(data).__name__}")
        self.data = data
        self.path = str(path)
        self.key = key
        self._read: set[str] = set()

    def error(self, name: str, problem: str) -> RulesError:
        return RulesError(self.path, self._child(name), problem)

    def _child(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def has(self, name: str) -> bool:
        return name in self.data

    def get(
        self, name: str, kind: type[T], default: T | None = None, *, required: bool = True
    ) -> T:
        """The value of ``name`` checked to be of ``kind``; missing -> error unless a default."""
        self._read.add(name)
        if name not in self.data:
            if default is not None or not required:
                return default  # type: ignore[return-value]  # None only when not required
            raise self.error(name, "missing")
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is date and isinstance(value, datetime):
            ok = False
        if not ok:
            raise self.error(name, f"must be {kind.__name__}, not {type(value).__name__}")
        return cast(T, value)

    def month_start(self, name: str, *, required: bool = True) -> date | None:
        """A date that must be the first day of a month."""
        value = self.get(name, date, required=required)
        if value is not None and value.day != 1:
            raise self.error(name, f"{value} must be the first day of a month")
        return value

    def positive_int(self, name: str, default: int | None = None) -> int:
        value = self.get(name, int, default)
        if value <= 0:
            raise self.error(name, f"must be a positive integer, not {value}")
        return value

    def decimal(self, name: str) -> Decimal:
        text = self.get(name, str)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.error(name, f"{text!r} is not a decimal number") from None
        if not value.is_finite() or value <= 0:
            raise self.error(name, f"{text!r} must be a positive decimal")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        values = self.get(name, list, [])
        if not all(isinstance(v, str) for v in values):
            raise self.error(name, "must be a list of strings")
        return tuple(values)

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.get(name, str, default)
        if value not in allowed:
            raise self.error(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def table(self, name: str) -> Table:
        self._read.add(name)
        if name not in self.data:
            raise self.error(name, "missing table")
        return Table(self.data[name], self.path, self._child(name))

    def tables(self, name: str, *, required: bool = True) -> list[Table]:
        """An array of tables (``[[name]]``); each element named ``name[i]``."""
        values = self.get(name, list, [] if not required else None)
        if required and not values:
            raise self.error(name, "at least one entry is required")
        return [Table(v, self.path, f"{self._child(name)}[{i}]") for i, v in enumerate(values)]

    def finish(self) -> None:
        """Reject keys nobody read: a typo in a rules file must not pass silently."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key")
