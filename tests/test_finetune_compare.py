"""The before/after table that reports how far a model falls at the strongest distortion."""

import pandas as pd
import pytest

from disfer.finetune.compare import robustness_drop


def test_drop_is_original_minus_strongest_level_in_points():
    curve = pd.DataFrame({
        "rater": ["m", "m", "m", "m", "m-ft", "m-ft"],
        "distortion": ["original", "gaussian_blur", "gaussian_blur", "gaussian_blur", "original", "gaussian_blur"],
        "level": [0, 1, 3, 2, 0, 3],
        "accuracy": [0.80, 0.70, 0.40, 0.55, 0.75, 0.72],
    })
    out = robustness_drop(curve).set_index("rater")
    assert out.loc["m", "strongest_level"] == 3
    assert out.loc["m", "drop_points"] == pytest.approx(40.0)
    assert out.loc["m-ft", "drop_points"] == pytest.approx(3.0)
    assert robustness_drop(curve.iloc[:0]).empty
