"""A fine-tuning run's curve, wide for a line chart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from disfer.analysis.training import accuracy_by_epoch


def test_accuracy_by_epoch_is_wide_with_the_parent_at_epoch_0():
    curve = [{"epoch": 0, "train_loss": None, "train_accuracy": None, "val_loss": 1.2, "val_accuracy": 0.5},
             {"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 1.0, "val_accuracy": 0.55},
             {"epoch": 2, "train_loss": 0.7, "train_accuracy": 0.7, "val_loss": 1.1, "val_accuracy": 0.52}]
    wide = accuracy_by_epoch(curve)
    assert wide.index.name == "epoch" and wide.index.tolist() == [0, 1, 2]
    assert wide.columns.tolist() == ["train_accuracy", "val_accuracy"]
    assert np.isnan(wide.loc[0, "train_accuracy"])
    assert wide["train_accuracy"].tolist()[1:] == [0.6, 0.7]
    assert wide["val_accuracy"].tolist() == [0.5, 0.55, 0.52]
    pd.testing.assert_frame_equal(accuracy_by_epoch(pd.DataFrame(curve)), wide)


def test_accuracy_by_epoch_while_training_starts():
    # The live chart's first call: only the parent's validation accuracy so far.
    wide = accuracy_by_epoch([{"epoch": 0, "train_accuracy": None, "val_accuracy": 0.4}])
    assert wide.columns.tolist() == ["val_accuracy"] and wide.loc[0, "val_accuracy"] == 0.4
    assert accuracy_by_epoch([]).empty
