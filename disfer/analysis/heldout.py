"""A fine-tuned variant against its parent on held-out stimuli only: the honest comparison.

A variant that trained on some of the study's faces is, on those faces, scored on its own training
images. Its registered configuration (`models.config`) names the sources it trained on and the
ones that chose its best epoch (`train_sources`, `val_sources`); every stimulus of any other source
is held out. `heldout_comparison` compares variant and parent on those stimuli alone (overall and
per condition, with McNemar's exact test on the paired outcomes); where no source is held out it
says so with n = 0 and no numbers.

The McNemar test here is always the exact binomial test (as statsmodels' `mcnemar(exact=True)`;
models.mcnemar_statistic): it is valid at every size, and one rule for every variant keeps their p-values comparable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from disfer.analysis.models import mcnemar_statistic

TRAINING_KEYS = ("protocol", "train_sources", "val_sources")


@dataclass(frozen=True)
class HeldOut:
    """Variant vs parent on the held-out stimuli.

    n: held-out stimuli both models predicted (and that have a label); accuracy, parent_accuracy:
    on those (NaN when n is 0); table: McNemar's [[both right, only variant], [only parent, both
    wrong]]; mcnemar_p: exact McNemar p-value (NaN when n is 0); per_condition: distortion, level,
    n, accuracy, parent_accuracy per condition present; sources: how many held-out sources.
    """

    n: int
    accuracy: float
    parent_accuracy: float
    mcnemar_p: float
    table: tuple[tuple[int, int], tuple[int, int]]
    sources: int
    per_condition: pd.DataFrame = field(default_factory=pd.DataFrame)

    def as_report(self) -> dict:
        """The report's `heldout` entry (`disfer report --json`)."""
        return {"n": self.n, "sources": self.sources, "accuracy": self.accuracy,
                "parent_accuracy": self.parent_accuracy, "mcnemar_vs_parent_p": self.mcnemar_p,
                "mcnemar_vs_parent_table": [list(r) for r in self.table],
                "note": None if self.n else "no held-out source: every face of the study was used "
                                            "for training or validation"}


def heldout_mask(study, train_sources, val_sources) -> np.ndarray:
    """(S,) True for the stimuli of sources used neither for training nor for validation."""
    used = set(int(s) for s in train_sources or ()) | set(int(s) for s in val_sources or ())
    return ~study.stimuli["source_id"].isin(used).to_numpy()


def _exact_mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[tuple[tuple[int, int], tuple[int, int]], float]:
    table = ((int((a & b).sum()), int((a & ~b).sum())), (int((~a & b).sum()), int((~a & ~b).sum())))
    if len(a) == 0:
        return table, float("nan")
    return table, mcnemar_statistic(table[0][1], table[1][0], exact=True)[1]


def heldout_comparison(study, variant: str, parent: str, train_sources, val_sources) -> HeldOut:
    """Variant vs parent on the stimuli of held-out sources (see the module docstring).

    A model absent from the study (no predictions) counts as predicting nothing: n = 0.
    """
    keep = heldout_mask(study, train_sources, val_sources)
    sources = int(study.stimuli.loc[keep, "source_id"].nunique())
    if variant in study.models and parent in study.models:
        v_def, v_ok = study.model_correct(variant)
        p_def, p_ok = study.model_correct(parent)
        both = keep & v_def & p_def
    else:
        both = np.zeros(study.n_stimuli, bool)
        v_ok = p_ok = both
    table, p = _exact_mcnemar(v_ok[both], p_ok[both])
    n = int(both.sum())
    rows = []
    for c, cond in study.conditions.iterrows():
        sel = both & (study.condition_index == c)
        if sel.any():
            rows.append((cond["distortion"], int(cond["level"]), int(sel.sum()),
                         float(v_ok[sel].mean()), float(p_ok[sel].mean())))
    per_condition = pd.DataFrame(rows, columns=["distortion", "level", "n", "accuracy", "parent_accuracy"])
    nan = float("nan")
    return HeldOut(n, float(v_ok[both].mean()) if n else nan, float(p_ok[both].mean()) if n else nan,
                   p, table, sources, per_condition)


def variant_training(store) -> dict[str, dict]:
    """Per fine-tuned variant: {parent, protocol, train_sources, val_sources, best/parent validation
    accuracy, worse_than_parent}, read from its registered configuration (`models.config`).

    A variant registered before sources were recorded at the top level falls back to its split.
    """
    with store.read() as con:
        rows = con.execute("SELECT model_id, parent_id, config FROM models "
                           "WHERE parent_id IS NOT NULL AND config IS NOT NULL").fetchall()
    out = {}
    for model_id, parent, raw in rows:
        config = json.loads(raw) if isinstance(raw, str) else dict(raw)
        split = config.get("split") or {}
        best, before = config.get("best_val_accuracy"), config.get("parent_val_accuracy")
        out[model_id] = {
            "parent": parent, "protocol": config.get("protocol"),
            "train_sources": config.get("train_sources", split.get("train_sources", [])),
            "val_sources": config.get("val_sources", split.get("val_sources", [])),
            "best_val_accuracy": best, "parent_val_accuracy": before,
            "worse_than_parent_on_validation": (best < before if best is not None and before is not None
                                                else None),
        }
    return out
