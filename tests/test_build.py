"""Building the DisFER stimulus set, on the real FER-2013 test split and on synthetic faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from disfer.data.build import build_study
from disfer.data.distortions import DISTORTIONS, Distortion
from disfer.data.ingest import ingest_fer2013
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import from_blob, stack_blobs
from disfer.store import Store


def _stimuli(store):
    with store.read() as con:
        return con.execute(
            "SELECT t.*, s.pixels AS source_pixels, s.original_label, s.split FROM stimuli t"
            " JOIN sources s USING (source_id) ORDER BY stimulus_id").df()


def test_real_build_has_84_sources_and_840_stimuli_12_per_emotion(real_study):
    st = _stimuli(real_study)
    assert len(st) == 840 and st["source_id"].nunique() == 84
    per = st.drop_duplicates("source_id")["original_label"].value_counts().to_dict()
    assert per == {e: 12 for e in EMOTIONS}
    assert set(st["split"]) == {"PublicTest"}
    assert (st.groupby("source_id").size() == 10).all()
    assert set(st["stimulus_id"]) == {f"{s}-{d}-{lv}" for s, d, lv in
                                      zip(st["source_id"], st["distortion"], st["level"], strict=True)}


def test_real_originals_are_the_source_faces(real_study):
    st = _stimuli(real_study)
    orig = st[st["distortion"] == "original"]
    assert (orig["level"] == 0).all()
    assert all(bytes(a) == bytes(b) for a, b in zip(orig["pixels"], orig["source_pixels"], strict=True))


@pytest.mark.parametrize("level,sigma", [(1, 0.8), (2, 1.1), (3, 1.4)])
def test_real_blur_matches_opencv(real_study, level, sigma):
    st = _stimuli(real_study)
    rows = st[(st["distortion"] == "gaussian_blur") & (st["level"] == level)]
    assert (rows["param"] == sigma).all()
    for pix, src in zip(rows["pixels"], rows["source_pixels"], strict=True):
        assert np.array_equal(from_blob(pix), cv2.GaussianBlur(from_blob(src), (0, 0), sigma))


@pytest.mark.parametrize("level,sigma", [(1, 10), (2, 20), (3, 30)])
def test_real_noise_residual_std_matches_sigma(real_study, level, sigma):
    st = _stimuli(real_study)
    rows = st[(st["distortion"] == "gaussian_noise") & (st["level"] == level)]
    out = stack_blobs(list(rows["pixels"])).astype(float)
    src = stack_blobs(list(rows["source_pixels"])).astype(float)
    # Only pixels 3 sigma away from 0 and 255, where clipping (p < 0.0014) cannot bias the spread.
    far = (src >= 3 * sigma) & (src <= 255 - 3 * sigma)
    residual = (out - src)[far]
    assert far.sum() > 20_000
    assert abs(residual.std() - sigma) < 0.03 * sigma and abs(residual.mean()) < 0.3


@pytest.mark.parametrize("level,p", [(1, 0.02), (2, 0.04), (3, 0.06)])
def test_real_salt_and_pepper_fractions(real_study, level, p):
    st = _stimuli(real_study)
    rows = st[(st["distortion"] == "salt_pepper") & (st["level"] == level)]
    out = stack_blobs(list(rows["pixels"]))
    src = stack_blobs(list(rows["source_pixels"]))
    changed = out != src
    assert set(np.unique(out[changed])) <= {0, 255}
    # A hit on a pixel that already was 0 (or 255) is invisible; count hits among the others.
    salt = ((out == 255) & (src != 255)).sum() / (src != 255).sum()
    pepper = ((out == 0) & (src != 0)).sum() / (src != 0).sum()
    assert abs(salt - p / 2) < 0.1 * p and abs(pepper - p / 2) < 0.1 * p


def test_real_stimuli_store_their_per_stimulus_seed(real_study):
    st = _stimuli(real_study)
    assert st["seed"].nunique() == 840


def test_rebuild_with_the_same_seed_gives_identical_pixels(tmp_path, fer2013_csv):
    path = fer2013_csv(per_emotion=5)
    a, b = Store(tmp_path / "a.duckdb"), Store(tmp_path / "b.duckdb")
    for s in (a, b):
        ingest_fer2013(s, path)
        build_study(s, per_class=3, seed=7)
    sa, sb = _stimuli(a), _stimuli(b)
    assert sa["stimulus_id"].tolist() == sb["stimulus_id"].tolist()
    assert sa["seed"].tolist() == sb["seed"].tolist()
    assert all(bytes(x) == bytes(y) for x, y in zip(sa["pixels"], sb["pixels"], strict=True))
    build_study(b, per_class=3, seed=8, replace=True)
    assert _stimuli(b)["source_id"].tolist() != sa["source_id"].tolist() or \
        _stimuli(b)["seed"].tolist() != sa["seed"].tolist()


def test_build_refuses_a_second_build_unless_replace(store, fer2013_csv):
    ingest_fer2013(store, fer2013_csv(per_emotion=3))
    build_study(store, per_class=2, seed=0)
    before = _stimuli(store)
    with pytest.raises(ConfigError, match="--replace"):
        build_study(store, per_class=3, seed=1)
    assert _stimuli(store).equals(before)
    assert build_study(store, per_class=3, seed=1, replace=True) == 210


def test_replace_is_refused_once_votes_exist(built_study):
    with built_study.write() as con:
        con.execute("INSERT INTO participants VALUES ('p1', 'study', NULL)")
        sid = con.execute("SELECT min(stimulus_id) FROM stimuli").fetchall()[0][0]
        con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES ('p1', ?, 'fear')", [sid])
    with pytest.raises(ConfigError, match="votes"):
        build_study(built_study, per_class=4, seed=1, replace=True)


def test_replace_drops_old_playlists(built_study):
    assert build_study(built_study, per_class=4, seed=1, split="PublicTest", replace=True) == 280
    with built_study.read() as con:
        assert con.execute("SELECT count(*) FROM playlists").fetchall()[0][0] == 0


def _add_predictions(store) -> None:
    with store.write() as con:
        con.execute("INSERT INTO models (model_id, family) VALUES ('m', 'external')")
        con.execute("INSERT INTO predictions SELECT 'm', stimulus_id, 'f', 1, 0, 0, 0, 0, 0, 0, 'anger'"
                    " FROM stimuli")


def _counts(store) -> dict[str, int]:
    with store.read() as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("stimuli", "playlists", "predictions", "runs")}


def _schema(store, tables=("playlists", "predictions")) -> list:
    with store.read() as con:
        return con.execute(
            "SELECT 'table', table_name, sql FROM duckdb_tables() WHERE table_name IN (SELECT unnest(?))"
            " UNION ALL SELECT 'index', index_name, sql FROM duckdb_indexes()"
            " WHERE table_name IN (SELECT unnest(?)) ORDER BY 1, 2", [list(tables), list(tables)]).fetchall()


@pytest.mark.parametrize("fail_at", ["render", "record"])
def test_a_replace_that_fails_halfway_leaves_the_old_study_whole(built_study, monkeypatch, fail_at):
    """Issue 13, item 6: the old playlists and predictions go in the same transaction as the old
    stimuli, so a failure (or a kill) at any point leaves all three as they were."""
    import disfer.data.build as build

    _add_predictions(built_study)
    before = _counts(built_study)
    assert before["playlists"] == before["predictions"] == before["stimuli"] == 280

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(build, {"render": "render_sources", "record": "_record_build"}[fail_at], boom)
    with pytest.raises(RuntimeError, match="killed"):
        build_study(built_study, per_class=4, seed=1, replace=True)
    assert _counts(built_study) == before


def test_replace_empties_playlists_and_predictions_and_keeps_their_tables_as_defined(built_study):
    _add_predictions(built_study)
    schema = _schema(built_study)
    assert build_study(built_study, per_class=4, seed=1, replace=True) == 280
    after = _counts(built_study)
    assert (after["stimuli"], after["playlists"], after["predictions"]) == (280, 0, 0)
    assert _schema(built_study) == schema
    # The foreign keys hold as before: a playlist or prediction of an unknown stimulus is refused,
    # and a stimulus that a playlist names cannot be deleted.
    import duckdb

    with pytest.raises(duckdb.ConstraintException), built_study.write() as con:
        con.execute("INSERT INTO playlists VALUES (1, 'no-such-stimulus', 1)")
    with pytest.raises(duckdb.ConstraintException), built_study.write() as con:
        con.execute("INSERT INTO predictions SELECT 'm', 'no-such', 'f', 1, 0, 0, 0, 0, 0, 0, 'anger'")
    with pytest.raises(duckdb.ConstraintException), built_study.write() as con:
        sid = con.execute("SELECT min(stimulus_id) FROM stimuli").fetchall()[0][0]
        con.execute("INSERT INTO playlists VALUES (1, ?, 1)", [sid])
        con.execute("COMMIT")
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM stimuli WHERE stimulus_id = ?", [sid])


def test_a_replace_rechecks_for_votes_inside_its_transaction(built_study, monkeypatch):
    """Votes imported between the first check and the write still stop the rebuild."""
    import disfer.data.build as build

    real = build._spill_faces

    def spill_then_vote(store, source_ids, spill):
        real(store, source_ids, spill)
        with store.write() as con:
            con.execute("INSERT INTO participants VALUES ('p1', 'study', NULL)")
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion)"
                        " SELECT 'p1', min(stimulus_id), 'fear' FROM stimuli")

    monkeypatch.setattr(build, "_spill_faces", spill_then_vote)
    before = _counts(built_study)
    with pytest.raises(ConfigError, match="votes"):
        build_study(built_study, per_class=4, seed=1, replace=True)
    assert _counts(built_study) == before


def test_too_few_faces_per_class_or_empty_split_is_a_config_error(store, fer2013_csv):
    ingest_fer2013(store, fer2013_csv(per_emotion=2))
    with pytest.raises(ConfigError, match="only 2 anger faces"):
        build_study(store, per_class=3)
    with pytest.raises(ConfigError, match="no faces in split 'Training'"):
        build_study(store, split="Training")


def test_per_class_none_takes_every_face_and_levels_are_options(store, fer2013_csv):
    ingest_fer2013(store, fer2013_csv(per_emotion=2))
    n = build_study(store, per_class=None, levels={"gaussian_blur": (2.5,), "salt_pepper": ()})
    st = _stimuli(store)
    assert n == len(st) == 14 * 5  # original + 1 blur + 3 noise
    blur = st[st["distortion"] == "gaussian_blur"]
    assert set(blur["param"]) == {2.5}
    src = from_blob(blur["source_pixels"].iloc[0])
    assert np.array_equal(from_blob(blur["pixels"].iloc[0]), cv2.GaussianBlur(src, (0, 0), 2.5))


def test_a_registered_distortion_is_built_without_other_changes(store, fer2013_csv, monkeypatch):
    def jpeg(face, quality, rng):
        ok, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)

    monkeypatch.setitem(DISTORTIONS, "jpeg_quality", Distortion("jpeg_quality", jpeg, (30.0, 10.0), "quality"))
    ingest_fer2013(store, fer2013_csv(per_emotion=1))
    assert build_study(store, per_class=1) == 7 * 12
    st = _stimuli(store)
    assert set(st.loc[st["distortion"] == "jpeg_quality", "level"]) == {1, 2}


def test_progress_callback_reaches_the_end_for_ingest_and_build(store, fer2013_csv):
    seen: list[tuple[float, str]] = []
    ingest_fer2013(store, fer2013_csv(per_emotion=2), progress=lambda f, text: seen.append((f, text)))
    assert seen and seen[-1][0] == 1.0
    seen.clear()
    build_study(store, per_class=2, progress=lambda f, text: seen.append((f, text)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {text for _, text in seen} == {"rendering stimuli"}
