"""Errors a user can act on. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class DisferError(Exception):
    """A problem with the user's input, configuration or store: reported, never a traceback."""


class InputError(DisferError):
    """Bad input file: names the file, the row (1-based, header = row 1) where known, and the problem."""

    def __init__(self, path: str | Path, problem: str, row: int | None = None):
        self.path = str(path)
        self.row = row
        self.problem = problem
        where = f"{self.path}: row {row}" if row is not None else self.path
        super().__init__(f"{where}: {problem}")


class StoreError(DisferError):
    """The store file is missing, not a DuckDB store, or from a newer version of DisFER Studio."""


class StoreLockedError(StoreError):
    """Another process held the store for longer than we were willing to wait."""


class ConfigError(DisferError):
    """A bad option or combination of options (unknown model, distortion, ...)."""
