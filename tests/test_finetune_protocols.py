"""Issue 14: the external protocol, the curated dataset, the caps, and the worse-than-parent flag.

The built study (28 PublicTest faces, 280 stimuli) has 28 more faces in Training, outside the
study: the external protocol's pool. Runs are cut to 1 epoch of 2 tiny batches (FAST).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from disfer.cli import main
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune import finetune, variant_config
from disfer.finetune.pools import curated_pool, external_pool
from disfer.finetune.train import AUGMENT
from disfer.ledger import current_ground_truth, record_decision
from disfer.models import list_models

FAST = {"epochs": 1, "batches": 2, "per_class": 1, "device": "cpu"}


def _minixception() -> None:
    info = next(m for m in list_models() if m.name == "minixception")
    if not info.weights_present:
        pytest.skip(f"mini-Xception weights absent: {info.hint}")


def _study_sources(store) -> set[int]:
    with store.read() as con:
        return {r[0] for r in con.execute("SELECT DISTINCT source_id FROM stimuli").fetchall()}


def _counts(store) -> tuple[int, int]:
    with store.read() as con:
        return con.execute("SELECT (SELECT count(*) FROM models), "
                           "(SELECT count(*) FROM runs WHERE kind = 'finetune')").fetchone()


def test_the_external_pool_holds_no_study_source(built_study):
    study = _study_sources(built_study)
    pool = external_pool(built_study, "gaussian_noise", seed=0)
    assert set(pool.train.source_ids).isdisjoint(study) and set(pool.val.source_ids).isdisjoint(study)
    assert set(pool.train.source_ids).isdisjoint(pool.val.source_ids)
    with built_study.read() as con:
        training = {r[0] for r in con.execute("SELECT source_id FROM sources WHERE split = 'Training'").fetchall()}
    assert set(pool.train.source_ids) | set(pool.val.source_ids) == training
    # Half the training items are rendered on the fly with the study's distortion; validation
    # holds each validation face's original and its 3 noise levels, rendered once.
    assert (pool.train.distortions == AUGMENT).sum() == (pool.train.distortions == "original").sum()
    assert pool.summary["render"] == {"gaussian_noise": [10.0, 20.0, 30.0]}
    assert len(pool.val) == 4 * len(set(pool.val.source_ids)) == 4 * 7
    assert set(pool.val.distortions) == {"original", "gaussian_noise"}


def test_external_never_trains_on_a_study_source_and_leaves_the_study_held_out(built_study, monkeypatch):
    _minixception()
    import disfer.finetune as ft

    seen = {}
    real = ft.train

    def spy(model, train_data, val_data, config, **kwargs):
        seen["train"], seen["val"], seen["config"] = set(train_data.source_ids), set(val_data.source_ids), config
        return real(model, train_data, val_data, config, **kwargs)

    monkeypatch.setattr(ft, "train", spy)
    variant = finetune(built_study, "minixception", distortion="gaussian_noise", **FAST)   # the default
    assert variant == "minixception-ft-external-gaussian_noise"
    study = _study_sources(built_study)
    assert seen["train"].isdisjoint(study) and seen["val"].isdisjoint(study)
    assert seen["config"].augment_with == ("gaussian_noise",)
    config = variant_config(built_study, variant)
    assert config["protocol"] == "external" and config["evaluation_includes_training_images"] is False
    assert set(config["train_sources"]) == seen["train"] and set(config["val_sources"]) == seen["val"]

    from disfer.analysis import study_report

    m = study_report(built_study, bootstrap=0, consensus=False)["models"][variant]
    assert m["training"]["protocol"] == "external"
    assert m["heldout"]["n"] == 280 and m["heldout"]["mcnemar_vs_parent_p"] is not None


def test_curated_dataset_uses_curated_labels_where_decided_and_originals_elsewhere(built_study):
    with built_study.read() as con:
        faces = con.execute("SELECT DISTINCT s.source_id, s.original_label FROM sources s "
                            "JOIN stimuli USING (source_id) ORDER BY 1").fetchall()
    (relabeled, old), (dropped, _) = faces[0], faces[1]
    new = "surprise" if old != "surprise" else "fear"
    record_decision(built_study, relabeled, [new], None, "relabeled", "ana")
    record_decision(built_study, dropped, [], None, "excluded", "ana")
    pool = curated_pool(built_study, current_ground_truth(built_study), seed=0)
    ids = np.concatenate([pool.train.source_ids, pool.val.source_ids])
    primary = np.concatenate([pool.train.labels.primary, pool.val.labels.primary])
    assert dropped not in set(ids) and len(set(ids)) == len(faces) - 1
    assert len(ids) == 10 * (len(faces) - 1)   # every version of every kept face
    original = dict(faces)
    for sid, label in zip(ids, primary, strict=True):
        want = new if sid == relabeled else original[int(sid)]
        assert EMOTIONS[label] == want
    assert pool.summary["curated_sources"] == 1 and pool.summary["excluded_sources"] == 1


def test_a_one_decision_curated_run_works(built_study):
    _minixception()
    with built_study.read() as con:
        sid = con.execute("SELECT min(source_id) FROM stimuli").fetchone()[0]
    record_decision(built_study, sid, ["happiness"], None, "relabeled", "ana")
    variant = finetune(built_study, "minixception", protocol="curated", predict=False, **FAST)
    assert variant == "minixception-ft-curated-majority"
    config = variant_config(built_study, variant)
    assert config["split"]["curated_sources"] == 1 and config["split"]["original_label_sources"] == 27
    assert set(config["train_sources"]) | set(config["val_sources"]) == _study_sources(built_study)


def _delete_outside(store) -> None:
    with store.write() as con:
        con.execute("DELETE FROM sources WHERE source_id NOT IN (SELECT source_id FROM stimuli)")


def _exclude_all(store) -> None:
    for sid in sorted(_study_sources(store)):
        record_decision(store, sid, [], None, "excluded", "ana")


@pytest.mark.parametrize("prepare, kwargs, message", [
    (_delete_outside, {"distortion": "gaussian_blur"}, "ingest the FER-2013 Training split or build the study"),
    # PublicTest exists, but all its faces are in the study
    (None, {"distortion": "gaussian_blur", "train_split": "PublicTest"}, "no faces outside the study in split"),
    (None, {"distortion": "gaussian_blur", "train_split": "PrivateTest"}, "unknown split .PrivateTest."),
    (None, {"distortion": "fog"}, "unknown distortion 'fog'"),
    (None, {"targets": "soft"}, "--targets is for --protocol curated"),
    (None, {"augment": True}, "external protocol always renders"),
    (None, {"epochs": 51}, "epochs must be between 1 and 50"),
    (None, {"batches": 201}, "batches per epoch must be between 1 and 200"),
    (None, {"per_class": 33}, "images per emotion per batch must be between 1 and 32"),
    (None, {"protocol": "paper", "distortion": "gaussian_blur", "train_split": "Training"}, "--train-split"),
    (_exclude_all, {"protocol": "curated"}, "every face of the study is excluded"),
])
def test_bad_input_is_one_error_and_registers_nothing(built_study, prepare, kwargs, message):
    _minixception()
    if prepare:
        prepare(built_study)
    before = _counts(built_study)
    with pytest.raises(ConfigError, match=message):
        finetune(built_study, "minixception", **{"device": "cpu", **kwargs})
    assert _counts(built_study) == before


def test_an_absent_device_is_one_line_exit_2(built_study, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present here")
    code = main(["--db", str(built_study.path), "finetune", "--model", "minixception", "--device", "cuda"])
    assert code == 2 and "cuda" in capsys.readouterr().err.lower()
    assert _counts(built_study) == (0, 0)


def test_a_variant_worse_than_its_parent_is_registered_and_flagged(built_study, monkeypatch, capsys):
    _minixception()
    import disfer.finetune as ft
    from disfer.finetune.train import TrainResult

    def worse(model, train_data, val_data, config, **kwargs):
        curve = [{"epoch": 0, "train_loss": None, "train_accuracy": None, "val_loss": 1.9,
                  "val_accuracy": 0.321, "seconds": 0.0, "val_seconds": 0.1},
                 {"epoch": 1, "train_loss": 1.8, "train_accuracy": 0.3, "val_loss": 2.1,
                  "val_accuracy": 0.25, "seconds": 0.5, "val_seconds": 0.1}]
        return TrainResult(copy.deepcopy(model.network.state_dict()), curve, 1, 0.7)

    monkeypatch.setattr(ft, "train", worse)
    monkeypatch.setattr(ft, "_predict", lambda *args: None)
    code = main(["--db", str(built_study.path), "--quiet", "finetune", "--model", "minixception",
                 "--protocol", "paper", "--distortion", "gaussian_blur", "--epochs", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert "1 epoch," in out and "1 epochs" not in out
    assert "worse than its parent on validation: 0.250 vs 0.321" in out
    assert "includes training images" in out
    config = variant_config(built_study, "minixception-ft-gaussian_blur")
    assert config["worse_than_parent"] is True
