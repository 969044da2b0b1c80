"""The demo's procedural faces: deterministic, varied, and with expressions where faces move."""

from __future__ import annotations

import numpy as np
import pytest

from disfer.demo.faces import (
    ACTION_UNITS,
    AU_INDEX,
    PROTOTYPES,
    draw_face,
    generate_faces,
    sample_identity,
    sample_units,
)
from disfer.emotions import EMOTIONS


@pytest.fixture(scope="module")
def faceset():
    return generate_faces(6, seed=3)


def test_faces_are_48x48_grey_in_emotion_order(faceset):
    assert faceset.faces.shape == (42, 48, 48) and faceset.faces.dtype == np.uint8
    assert faceset.emotion == [e for e in EMOTIONS for _ in range(6)]
    assert faceset.units.shape == (42, len(ACTION_UNITS))
    np.testing.assert_allclose(faceset.mixture.sum(axis=1), 1.0)


def test_same_seed_same_faces_other_seed_other_faces(faceset):
    again = generate_faces(6, seed=3)
    np.testing.assert_array_equal(again.faces, faceset.faces)
    np.testing.assert_array_equal(again.mixture, faceset.mixture)
    other = generate_faces(6, seed=4)
    assert not np.array_equal(other.faces, faceset.faces)


def test_faces_have_contrast_and_differ_from_each_other(faceset):
    flat = faceset.faces.reshape(len(faceset.faces), -1).astype(float)
    assert flat.std(axis=1).min() > 15          # not a blank card
    distances = np.abs(flat[:, None, :] - flat[None, :, :]).mean(axis=2)
    off_diagonal = distances[~np.eye(len(flat), dtype=bool)]
    assert off_diagonal.min() > 3               # no two identical people


def test_some_faces_are_clear_and_some_ambiguous():
    faces = generate_faces(20, seed=0)
    top_share = faces.mixture.max(axis=1)
    assert (top_share > 0.9).any() and (top_share < 0.6).any()
    # The shown emotion is always part of its face's mixture.
    shown = np.array([EMOTIONS.index(e) for e in faces.emotion])
    assert (faces.mixture[np.arange(len(shown)), shown] > 0).all()


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_prototype_draws_stay_in_their_ranges(emotion):
    rng = np.random.default_rng(0)
    for _ in range(20):
        units = sample_units(emotion, rng)
        for name, (low, high) in PROTOTYPES[emotion].items():
            assert low <= units[AU_INDEX[name]] <= high
        unnamed = [AU_INDEX[n] for n in ACTION_UNITS if n not in PROTOTYPES[emotion]]
        assert not units[unnamed].any()


def _draw(identity, emotion: str | None) -> np.ndarray:
    units = np.zeros(len(ACTION_UNITS)) if emotion is None else sample_units(emotion, np.random.default_rng(1))
    return draw_face(identity, units, np.random.default_rng(7)).astype(float)


@pytest.mark.parametrize(("emotion", "moves"), [
    ("happiness", np.s_[30:44, 12:36]),    # the mouth
    ("sadness", np.s_[30:44, 12:36]),
    ("surprise", np.s_[8:24, 8:40]),       # brows and eyes
    ("anger", np.s_[8:24, 8:40]),
    ("disgust", np.s_[8:30, 8:40]),        # brows, eyes and nose
])
def test_expressions_change_the_face_where_that_expression_lives(emotion, moves):
    for seed in (11, 12, 13):
        identity = sample_identity(np.random.default_rng(seed))
        change = np.abs(_draw(identity, emotion) - _draw(identity, None))
        assert change[moves].mean() > 2.0
        assert change[:6].mean() < change[moves].mean() / 2    # the top of the head stays put
