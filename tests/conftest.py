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


@pytest.fixture(scope="session")
def _built_study_template(tmp_path_factory) -> Path:
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013
    from disfer.data.playlists import make_playlists

    folder = tmp_path_factory.mktemp("built_study")
    template = Store(folder / "template.duckdb", lock_timeout=10)
    ingest_fer2013(template, write_fer2013_csv(folder / "fer2013.csv", per_emotion=4,
                                               splits=("PublicTest", "Training")))
    build_study(template, per_class=4, seed=0, split="PublicTest")
    make_playlists(template, count=10, size=28, seed=0)
    return template.path


@pytest.fixture
def built_study(store: Store, _built_study_template: Path) -> Store:
    """The `store` fixture holding a small study: 56 synthetic faces (4 per emotion in PublicTest and
    in Training), 28 of them built (4 per emotion, split PublicTest, seed 0) into 280 stimuli, and
    10 playlists of 28 (seed 0). No votes. Built once per session and copied (fast)."""
    import shutil

    shutil.copyfile(_built_study_template, store.path)
    return store


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory) -> Path:
    """Path of a demo study store built once per test session (disfer.demo.build_demo, seed 0).

    Shared by every test that asks for it: read it, never write to it (use `demo_store_copy`).
    """
    from disfer.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo(Store(path, lock_timeout=30), seed=0)
    return path


@pytest.fixture
def demo_store_copy(demo_store: Path, tmp_path: Path) -> Path:
    """A private copy of the demo store (and of its fine-tuned weights) that a test may write to."""
    import shutil

    if (demo_store.parent / "models").is_dir():
        shutil.copytree(demo_store.parent / "models", tmp_path / "models")
    return Path(shutil.copyfile(demo_store, tmp_path / "demo_copy.duckdb"))


@pytest.fixture(scope="session")
def _real_study_template(tmp_path_factory) -> Path:
    from disfer.data.build import build_study
    from disfer.data.ingest import ingest_fer2013

    path = require_file(FER2013_TEST)
    template = Store(tmp_path_factory.mktemp("real_study") / "template.duckdb", lock_timeout=10)
    ingest_fer2013(template, path)
    build_study(template, per_class=12, seed=0, split="PublicTest")
    return template.path


@pytest.fixture
def real_study(store: Store, _real_study_template: Path) -> Store:
    """The `store` fixture holding the paper's design on real faces: the 7,178 faces of
    ../shared/data/fer2013_test.csv ingested, 84 of them (12 per emotion, PublicTest, seed 0) built
    into 840 stimuli. No playlists, no votes. Skips when the real file is absent."""
    import shutil

    shutil.copyfile(_real_study_template, store.path)
    return store
