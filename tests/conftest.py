"""Shared fixtures. Tests never touch the network or the user's data/ folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from disfer.store import Store

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FER2013_TEST = SHARED_DATA / "fer2013_test.csv"
FERPLUS = SHARED_DATA / "ferplus_fer2013new.csv"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An empty, migrated store in a temporary folder."""
    s = Store(tmp_path / "study.duckdb", lock_timeout=10)
    s.schema_version()
    return s


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # No test may write to the user's data/disfer.duckdb or reach a model hub.
    monkeypatch.setenv("DISFER_DB", str(tmp_path / "default.duckdb"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "deepface_home"))


def require_file(path: Path):
    """Skip (with the reason) when a real-data file from ../shared/data is absent."""
    if not path.exists():
        pytest.skip(f"real data file {path} is absent (only on the project's machines)")
    return path
