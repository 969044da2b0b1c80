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


def write_fer2013_csv(path: Path, per_emotion: int = 6, splits: tuple[str, ...] = ("PublicTest",),
                      seed: int = 0) -> Path:
    """A small synthetic Kaggle-format fer2013.csv: `per_emotion` faces of each of the 7 codes per split.

    Faces are smooth gradients plus texture (not flat), so blur and noise change them measurably.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    lines = ["emotion,pixels,Usage"]
    for split in splits:
        for k in range(per_emotion * 7):
            base = 40 + 3 * xx + rng.integers(0, 40) + 20 * np.sin((yy + k) / 5.0)
            face = np.clip(base + rng.normal(0, 6, (48, 48)), 0, 255).astype(np.uint8)
            lines.append(f"{k % 7},{' '.join(map(str, face.reshape(-1).tolist()))},{split}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def fer2013_csv(tmp_path: Path):
    """Factory: `fer2013_csv(name="fer2013.csv", per_emotion=6, splits=("PublicTest",), seed=0) -> Path`."""
    def make(name: str = "fer2013.csv", **kwargs) -> Path:
        return write_fer2013_csv(tmp_path / name, **kwargs)
    return make


@pytest.fixture
def built_study(store: Store, fer2013_csv) -> Store:
    """A store with a small real-shaped study: 56 synthetic faces (8 per emotion, PublicTest and
    Training), 28 of them built (4 per emotion, split PublicTest, seed 0) into 280 stimuli, and 10
    playlists of 28 (seed 0). No votes."""
    from disfer.build import build_study
    from disfer.ingest import ingest_fer2013
    from disfer.playlists import make_playlists

    ingest_fer2013(store, fer2013_csv(per_emotion=4, splits=("PublicTest", "Training")))
    build_study(store, per_class=4, seed=0, split="PublicTest")
    make_playlists(store, count=10, size=28, seed=0)
    return store
