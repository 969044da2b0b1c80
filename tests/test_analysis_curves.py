"""The conditions' parameters on the robustness curve: the values each level was built with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from disfer.analysis.curves import condition_params, with_params
from disfer.data.distortions import DISTORTIONS


def test_condition_params_are_the_stored_parameters_and_join_the_curve(built_study):
    params = condition_params(built_study).set_index(["distortion", "level"])
    with built_study.read() as con:
        stored = dict(((d, lv), p) for d, lv, p in con.execute(
            "SELECT DISTINCT distortion, level, param FROM stimuli WHERE level > 0").fetchall())
    for key, value in stored.items():
        assert params.loc[key, "param"] == pytest.approx(value)
        assert params.loc[key, "param_name"] == DISTORTIONS[key[0]].param_name
    assert np.isnan(params.loc[("original", 0), "param"])
    curve = pd.DataFrame({"rater": ["m", "m"], "distortion": ["original", "gaussian_blur"], "level": [0, 2],
                          "accuracy": [0.5, 0.4]})
    joined = with_params(curve, condition_params(built_study))
    assert joined.loc[1, "param"] == pytest.approx(DISTORTIONS["gaussian_blur"].levels[1])
    assert joined.loc[1, "param_name"] == "sigma"
    assert with_params(curve.iloc[:0], condition_params(built_study)).columns[-2:].tolist() == ["param", "param_name"]
