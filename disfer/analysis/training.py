"""A fine-tuning run's training curve, shaped for a line chart."""

from __future__ import annotations

import pandas as pd

SERIES = ("train_accuracy", "val_accuracy")


def accuracy_by_epoch(curve: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Training and validation accuracy per epoch, wide: indexed by epoch, one column per series of
    SERIES that has a value (train_accuracy, val_accuracy), NaN where an epoch lacks one (epoch 0,
    the parent, has no training accuracy). Epochs without either value are left out.

    curve: the run's rows (`variant_config(...)["curve"]`, or the rows `finetune`'s on_epoch
    receives): epoch, train_accuracy, val_accuracy and other columns, ignored here.
    """
    curve = pd.DataFrame(curve)
    present = [s for s in SERIES if s in curve.columns]
    if curve.empty or not present:
        return pd.DataFrame(index=pd.Index([], name="epoch"), columns=pd.Index([], name="series"))
    long = curve.melt("epoch", present, var_name="series", value_name="accuracy").dropna()
    long["accuracy"] = long["accuracy"].astype(float)
    return long.pivot(index="epoch", columns="series", values="accuracy")
