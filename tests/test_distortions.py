"""The distortion registry and each distortion's effect on a face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from disfer.data.distortions import DISTORTIONS, conditions, render, stimulus_seed
from disfer.errors import ConfigError


@pytest.fixture
def face():
    yy, xx = np.mgrid[0:48, 0:48]
    return np.clip(60 + 2 * xx + 30 * np.sin(yy / 4.0), 0, 255).astype(np.uint8)


def test_the_paper_conditions_are_registered_with_their_levels():
    assert conditions() == [
        ("original", 0, None),
        ("gaussian_blur", 1, 0.8), ("gaussian_blur", 2, 1.1), ("gaussian_blur", 3, 1.4),
        ("gaussian_noise", 1, 10.0), ("gaussian_noise", 2, 20.0), ("gaussian_noise", 3, 30.0),
        ("salt_pepper", 1, 0.02), ("salt_pepper", 2, 0.04), ("salt_pepper", 3, 0.06),
    ]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_blur_is_opencv_gaussian_blur(face, level):
    sigma = DISTORTIONS["gaussian_blur"].levels[level - 1]
    assert np.array_equal(render(face, "gaussian_blur", level, seed=0), cv2.GaussianBlur(face, (0, 0), sigma))


@pytest.mark.parametrize("level,sigma", [(1, 10), (2, 20), (3, 30)])
def test_noise_residual_has_the_level_sigma(level, sigma):
    grey = np.full((48, 48), 128, np.uint8)  # mid-grey: clipping never reached at 4 sigma
    residuals = np.concatenate([
        render(grey, "gaussian_noise", level, seed=s).astype(float).ravel() - 128 for s in range(20)])
    assert abs(residuals.std() - sigma) < 0.03 * sigma
    assert abs(residuals.mean()) < 0.5


def test_noise_is_clipped_to_the_grey_range():
    extremes = np.zeros((48, 48), np.uint8)
    extremes[:, 24:] = 255
    out = render(extremes, "gaussian_noise", 3, seed=1)
    assert out.dtype == np.uint8
    assert (out[:, :24] == 0).mean() > 0.4 and (out[:, 24:] == 255).mean() > 0.4


@pytest.mark.parametrize("level,p", [(1, 0.02), (2, 0.04), (3, 0.06)])
def test_salt_and_pepper_hits_p_of_the_pixels_half_each(level, p):
    grey = np.full((48, 48), 100, np.uint8)
    outs = np.stack([render(grey, "salt_pepper", level, seed=s) for s in range(100)])
    salt, pepper = (outs == 255).mean(), (outs == 0).mean()
    assert abs(salt + pepper - p) < 0.1 * p
    assert abs(salt - pepper) < 0.15 * p
    assert set(np.unique(outs)) <= {0, 100, 255}


def test_render_is_reproducible_per_seed(face):
    a = render(face, "gaussian_noise", 2, seed=stimulus_seed(0, 17, "gaussian_noise", 2))
    b = render(face, "gaussian_noise", 2, seed=stimulus_seed(0, 17, "gaussian_noise", 2))
    c = render(face, "gaussian_noise", 2, seed=stimulus_seed(1, 17, "gaussian_noise", 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_stimulus_seeds_differ_per_source_distortion_level_and_fit_bigint():
    seeds = {stimulus_seed(b, s, d, lv) for b in (0, 1) for s in range(50)
             for d in DISTORTIONS for lv in (1, 2, 3)}
    assert len(seeds) == 2 * 50 * len(DISTORTIONS) * 3
    assert all(0 <= s < 2**63 for s in seeds)


def test_explicit_param_overrides_the_level(face):
    assert np.array_equal(render(face, "gaussian_blur", 1, seed=0, param=2.0),
                          cv2.GaussianBlur(face, (0, 0), 2.0))


def test_unknown_distortion_or_level_is_a_config_error(face):
    with pytest.raises(ConfigError, match="unknown distortion"):
        render(face, "jpeg", 1, seed=0)
    with pytest.raises(ConfigError, match="levels 1..3"):
        render(face, "gaussian_blur", 4, seed=0)
    with pytest.raises(ConfigError, match="unknown distortion"):
        conditions({"motion_blur": (1.0,)})


def test_levels_can_be_changed_or_a_distortion_left_out():
    conds = conditions({"gaussian_blur": (2.0, 3.0), "salt_pepper": ()})
    assert [c for c in conds if c[0] == "gaussian_blur"] == [("gaussian_blur", 1, 2.0), ("gaussian_blur", 2, 3.0)]
    assert not [c for c in conds if c[0] == "salt_pepper"]
