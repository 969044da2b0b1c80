"""`disfer demo`: the whole demo study, built through the real pipeline, as the dashboard sees it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disfer.analysis import fleiss_kappa, label_audit, majority_vote
from disfer.cli import main
from disfer.demo import DEMO_DESCRIPTION, build_demo
from disfer.errors import ConfigError
from disfer.images import stack_blobs
from disfer.launch import ensure_store, has_stimuli
from disfer.store import Store


def _scalar(store: Store, sql: str, params=()):
    with store.read() as con:
        return con.execute(sql, list(params)).fetchall()[0][0]


def test_demo_has_the_papers_design(demo_store: Path):
    store = Store(demo_store)
    assert _scalar(store, "SELECT count(*) FROM sources") == 84
    assert _scalar(store, "SELECT count(*) FROM stimuli") == 840
    with store.read() as con:
        per_label = dict(con.execute("SELECT original_label, count(*) FROM sources GROUP BY 1").fetchall())
        playlist_sizes = {r[0] for r in con.execute("SELECT count(*) FROM playlists GROUP BY playlist_id").fetchall()}
        votes_per_stimulus = con.execute("SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM votes"
                                         " GROUP BY stimulus_id)").fetchall()[0]
    assert set(per_label.values()) == {12} and len(per_label) == 7
    assert _scalar(store, "SELECT count(DISTINCT playlist_id) FROM playlists") == 21 and playlist_sizes == {40}
    assert _scalar(store, "SELECT count(*) FROM votes") == 42_000
    assert _scalar(store, "SELECT count(*) FROM participants WHERE crowd = 'study'") == 1_050
    assert votes_per_stimulus == (50, 50)


def test_demo_says_it_is_a_demo(demo_store: Path):
    store = Store(demo_store)
    assert _scalar(store, "SELECT value FROM study_meta WHERE key = 'study_kind'") == "demo"
    assert _scalar(store, "SELECT value FROM study_meta WHERE key = 'description'") == DEMO_DESCRIPTION
    assert _scalar(store, "SELECT count(*) FROM runs WHERE kind = 'demo' AND status = 'done'") == 1


def test_crowd_figures_land_in_the_papers_ranges(demo_store: Path):
    store = Store(demo_store)
    majority = majority_vote(store)
    accuracy = majority["correct"].astype(float).mean()
    assert 0.5 <= accuracy <= 0.72
    assert 0.45 <= fleiss_kappa(store) <= 0.65
    by_condition = majority.assign(ok=majority["correct"].astype(float)).groupby(["distortion", "level"])["ok"].mean()
    # People barely notice salt-and-pepper; strong Gaussian noise hurts them most.
    assert abs(by_condition[("salt_pepper", 3)] - by_condition[("original", 0)]) < 0.1
    assert by_condition[("gaussian_noise", 3)] == by_condition.min()
    assert by_condition[("gaussian_noise", 3)] < by_condition[("original", 0)] - 0.15


def test_label_audit_finds_the_deliberately_wrong_labels(demo_store: Path):
    store = Store(demo_store)
    answer_key = set(json.loads(_scalar(store, "SELECT value FROM study_meta WHERE key = 'demo'"))
                     ["wrong_label_sources"])
    assert 10 <= len(answer_key) <= 25                       # about one source in five
    flagged = set(label_audit(store).source_ids)
    assert 5 <= len(flagged) <= 40                           # a handful, like the paper's 19 of 84
    assert len(flagged & answer_key) >= len(answer_key) // 2  # mostly true finds
    assert len(flagged & answer_key) / len(flagged) >= 0.4


def test_predictions_are_the_models_own_outputs(demo_store: Path):
    from disfer.models.registry import load_model

    store = Store(demo_store)
    assert _scalar(store, "SELECT count(*) FROM predictions WHERE model_id = 'minixception'") == 840
    with store.read() as con:
        rows = con.execute("SELECT t.pixels, p.anger, p.disgust, p.fear, p.happiness, p.neutral, p.sadness,"
                           " p.surprise FROM predictions p JOIN stimuli t USING (stimulus_id)"
                           " WHERE p.model_id = 'minixception' ORDER BY stimulus_id LIMIT 16").fetchall()
    stored = np.array([r[1:] for r in rows])
    fresh = load_model("minixception", device="cpu").predict_proba(stack_blobs([r[0] for r in rows]))
    np.testing.assert_allclose(stored, fresh, atol=1e-4)


def test_demo_fine_tunes_a_variant_and_its_copy_keeps_the_weights(demo_store_copy: Path):
    from disfer.models.registry import list_models

    store = Store(demo_store_copy)
    with store.read() as con:
        variants = con.execute("SELECT model_id FROM models WHERE parent_id = 'minixception'").fetchall()
    assert [v[0] for v in variants] == ["minixception-ft-gaussian_noise"]
    assert _scalar(store, "SELECT count(*) FROM predictions WHERE model_id = ?", variants[0]) == 840
    info = {m.name: m for m in list_models(store)}["minixception-ft-gaussian_noise"]
    assert info.weights_present


def test_demo_refuses_a_store_with_data_and_leaves_it_unchanged(demo_store_copy: Path):
    store = Store(demo_store_copy)
    before = store.change_counter()
    with pytest.raises(ConfigError, match="already holds data"):
        build_demo(store)
    assert store.change_counter() == before
    assert main(["--db", str(demo_store_copy), "demo"]) == 2


def test_launch_opens_a_study_as_it_is(demo_store_copy: Path):
    store = Store(demo_store_copy)
    before = store.change_counter()
    lines: list[str] = []
    assert ensure_store(demo_store_copy, out=lines.append) is False
    assert store.change_counter() == before and "as it is" in lines[0]


def test_launch_builds_the_demo_into_a_missing_store(tmp_path: Path, monkeypatch):
    built = []
    monkeypatch.setattr("disfer.demo.build_demo", lambda store, seed, log: built.append(store.path))
    lines: list[str] = []
    assert ensure_store(tmp_path / "new" / "study.duckdb", out=lines.append) is True
    assert built == [tmp_path / "new" / "study.duckdb"]
    assert "missing: building the demo" in lines[0]
    assert not (tmp_path / "new" / "study.duckdb").exists()   # the demo alone puts a store there


def test_launch_leaves_a_half_made_user_store_alone(store: Store, fer2013_csv):
    from disfer.data.ingest import ingest_fer2013

    ingest_fer2013(store, fer2013_csv(per_emotion=1))
    lines: list[str] = []
    assert ensure_store(store.path, out=lines.append) is False
    assert _scalar(store, "SELECT count(*) FROM stimuli") == 0 and "disfer build" in lines[0]


# -- issue 13, item 8: a demo that fails leaves no half-built store -------------------------------

def test_a_demo_that_fails_at_its_last_step_leaves_nothing_at_the_target(tmp_path: Path, monkeypatch):
    """Faces, study, votes, predictions and the fine-tune are all made, then the last step fails:
    no store at the target, no temporary store, no checkpoint folder."""
    import disfer.demo as demo

    def fails(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo, "_mark_demo", fails)
    target = tmp_path / "data" / "disfer.duckdb"
    lines: list[str] = []
    with pytest.raises(RuntimeError, match="disk full"):
        build_demo(Store(target), log=lines.append)
    assert any(line.startswith("quick fine-tune") for line in lines)   # it got that far
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["data"]
    assert has_stimuli(target) is False


def test_a_demo_that_fails_into_an_empty_store_leaves_it_as_it_was(store: Store, monkeypatch):
    import disfer.data.build as build

    def fails(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(build, "build_study", fails)
    before = (store.path.read_bytes(), store.change_counter())
    with pytest.raises(RuntimeError, match="interrupted"):
        build_demo(store)
    assert (store.path.read_bytes(), store.change_counter()) == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == [store.path.name]
