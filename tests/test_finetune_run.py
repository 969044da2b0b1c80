"""Fine-tuning end to end with the offline mini-Xception on the small built study (280 stimuli).

Runs are cut to 1 epoch of 2 small batches so the whole file stays fast on 2 CPU cores; the code
path is the one a full run takes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from disfer.cli import main
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune import finetune, variant_config, weights_file
from disfer.finetune.pools import curated_pool, paper_pool
from disfer.models import list_models, load_model

FAST = {"epochs": 1, "batches": 2, "per_class": 1, "device": "cpu"}


@pytest.fixture(autouse=True)
def _need_minixception():
    info = next(m for m in list_models() if m.name == "minixception")
    if not info.weights_present:
        pytest.skip(f"mini-Xception weights absent: {info.hint}")


def _counts(store) -> tuple[int, int, int]:
    with store.read() as con:
        return tuple(con.execute(
            "SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM runs WHERE kind = 'finetune'),"
            " (SELECT count(*) FROM predictions)").fetchone())


def test_paper_protocol_registers_a_variant_with_weights_curve_and_predictions(built_study):
    seen = []
    variant = finetune(built_study, "minixception", protocol="paper", distortion="gaussian_noise",
                       progress=lambda f, text: seen.append(f), **FAST)
    assert variant == "minixception-ft-gaussian_noise"
    with built_study.read() as con:
        family, parent = con.execute("SELECT family, parent_id FROM models WHERE model_id = ?",
                                     [variant]).fetchone()
        n_pred = con.execute("SELECT count(*) FROM predictions WHERE model_id = ?", [variant]).fetchone()[0]
        n_stim = con.execute("SELECT count(*) FROM stimuli").fetchone()[0]
        run = con.execute("SELECT status FROM runs WHERE kind = 'finetune'").fetchone()[0]
    assert (family, parent) == ("minixception", "minixception")
    assert n_pred == n_stim == 280 and run == "done"
    assert seen and seen[-1] == pytest.approx(1.0)

    # The checkpoint is a safetensors file next to the store, with the parent's architecture.
    path = weights_file(built_study, variant)
    assert path == Path(built_study.path).parent / "models" / f"{variant}.safetensors"
    state = load_file(str(path))
    parent_model = load_model("minixception", device="cpu")
    assert set(state) == set(parent_model.network.state_dict())
    changed = [k for k, v in parent_model.network.state_dict().items()
               if v.dtype.is_floating_point and not np.allclose(v.numpy(), state[k].numpy())]
    assert changed, "fine-tuning left every weight as it was"

    config = variant_config(built_study, variant)
    assert config["protocol"] == "paper" and config["distortion"] == "gaussian_noise"
    assert [row["epoch"] for row in config["curve"]] == [0, 1]
    assert config["batch_size"] == 7 and config["best_epoch"] == 1
    # 4 faces per emotion: 1 held out with its 4 versions (original + 3 noise levels).
    assert config["split"]["val_images"] == 7 * 4 and config["split"]["train_images"] == 21 * 4

    # The registered variant loads through the models registry and predicts like predict_store did.
    child = load_model(variant, device="cpu", store=built_study)
    with built_study.read() as con:
        pix = con.execute("SELECT pixels FROM stimuli ORDER BY stimulus_id LIMIT 5").fetchall()
        stored = con.execute(f"SELECT anger FROM predictions WHERE model_id = '{variant}' "
                             "ORDER BY stimulus_id LIMIT 5").fetchall()
    faces = np.stack([np.frombuffer(p[0], np.uint8).reshape(48, 48) for p in pix])
    assert np.allclose(child.predict_proba(faces)[:, 0], [s[0] for s in stored], atol=1e-5)


def test_validation_faces_never_train(built_study):
    pool = paper_pool(built_study, "gaussian_blur", seed=3)
    assert set(pool.train.source_ids).isdisjoint(pool.val.source_ids)
    # every version of a held-out face is held out: its original and its 3 blur levels
    ids, counts = np.unique(pool.val.source_ids, return_counts=True)
    assert len(ids) == 7 and set(counts) == {4}
    assert set(pool.val.stimulus_ids) == {f"{s}-{d}" for s in ids
                                          for d in ("original-0", "gaussian_blur-1", "gaussian_blur-2",
                                                    "gaussian_blur-3")}


def test_cpu_runs_with_one_seed_give_identical_weights(built_study):
    variant = finetune(built_study, "minixception", distortion="salt_pepper", predict=False, **FAST)
    first = load_file(str(weights_file(built_study, variant)))
    again = finetune(built_study, "minixception", distortion="salt_pepper", predict=False, **FAST)
    second = load_file(str(weights_file(built_study, again)))
    assert variant == again
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)
    other = finetune(built_study, "minixception", distortion="salt_pepper", seed=1, predict=False, **FAST)
    assert other == "minixception-ft-salt_pepper-s1"
    third = load_file(str(weights_file(built_study, other)))
    assert not all(np.array_equal(first[k].numpy(), third[k].numpy()) for k in first)


def test_a_rerun_redefines_the_variant_and_predicting_keeps_its_definition(built_study):
    variant = finetune(built_study, "minixception", distortion="gaussian_blur", predict=False, **FAST)
    assert variant_config(built_study, variant)["epochs"] == 1
    again = finetune(built_study, "minixception", distortion="gaussian_blur",
                     **{**FAST, "epochs": 2})   # same variant id, a different training
    assert again == variant
    # The row describes the second training, and the predict step's refresh kept it so.
    config = variant_config(built_study, variant)
    assert config["epochs"] == 2 and [row["epoch"] for row in config["curve"]] == [0, 1, 2]
    with built_study.read() as con:
        family, parent, path = con.execute("SELECT family, parent_id, weights_path FROM models "
                                           "WHERE model_id = ?", [variant]).fetchone()
        runs = con.execute("SELECT status, json_extract_string(result, '$.variant') FROM runs "
                           "WHERE kind = 'finetune' ORDER BY run_id").fetchall()
    assert (family, parent, path) == ("minixception", "minixception", f"models/{variant}.safetensors")
    assert runs == [("done", variant), ("done", variant)]


def test_a_failed_training_marks_its_run_failed(built_study, monkeypatch):
    import disfer.finetune as ft

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ft, "train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        finetune(built_study, "minixception", distortion="gaussian_blur", **FAST)
    with built_study.read() as con:
        status, result = con.execute("SELECT status, result FROM runs WHERE kind = 'finetune'").fetchone()
        n_models = con.execute("SELECT count(*) FROM models WHERE parent_id IS NOT NULL").fetchone()[0]
    assert status == "failed" and json.loads(result) == {"error": "out of memory"} and n_models == 0


def _curate_all(store, ambiguous: int = 3) -> None:
    from disfer.ledger import record_decision

    with store.read() as con:
        rows = con.execute("SELECT DISTINCT s.source_id, s.original_label FROM sources s "
                           "JOIN stimuli USING (source_id) ORDER BY 1").fetchall()
    for i, (sid, label) in enumerate(rows):
        if i < ambiguous:
            other = "surprise" if label != "surprise" else "fear"
            record_decision(store, sid, [label, other], [0.7, 0.3], "ambiguous", "ana")
        else:
            record_decision(store, sid, [label], None, "confirmed", "ana")


def test_curated_protocol_trains_on_curated_labels_and_votes(built_study):
    _curate_all(built_study)
    from disfer.ledger import current_ground_truth

    # Votes on one stimulus of an ambiguous face: its soft target is their distribution.
    gt = current_ground_truth(built_study).set_index("source_id")
    sid = int(gt.index[gt["status"] == "ambiguous"][0])
    with built_study.write() as con:
        for k, emotion in enumerate(["happiness", "happiness", "happiness", "sadness"]):
            con.execute("INSERT INTO participants VALUES (?, 'study', NULL)", [f"p{k}"])
            con.execute("INSERT INTO votes (participant_id, stimulus_id, emotion) VALUES (?, ?, ?)",
                        [f"p{k}", f"{sid}-original-0", emotion])
    pool = curated_pool(built_study, current_ground_truth(built_study), seed=0)
    both = {**dict(zip(pool.train.stimulus_ids, pool.train.labels.distribution, strict=True)),
            **dict(zip(pool.val.stimulus_ids, pool.val.labels.distribution, strict=True))}
    assert both[f"{sid}-original-0"].tolist() == pytest.approx([0, 0, 0, 0.75, 0, 0.25, 0])
    # Its versions without votes fall back to the curated weights (0.7 / 0.3).
    fallback = both[f"{sid}-gaussian_blur-1"]
    labels = gt.loc[sid, "labels"]
    assert [fallback[EMOTIONS.index(lab)] for lab in labels] == pytest.approx([0.7, 0.3])
    assert pool.summary["stimuli_with_votes"] == 1

    variant = finetune(built_study, "minixception", protocol="curated", targets="multi_target",
                       augment=True, **FAST)
    assert variant == "minixception-ft-curated-multi_target-aug"
    config = variant_config(built_study, variant)
    assert config["targets"] == "multi_target" and config["augment"] is True
    assert len(config["augment_with"]) == 3
    with built_study.read() as con:
        assert con.execute("SELECT count(*) FROM predictions WHERE model_id = ?", [variant]).fetchone()[0] == 280


@pytest.mark.parametrize("kwargs, message", [
    ({"model_id": "resnet9000", "distortion": "gaussian_blur"}, "unknown model 'resnet9000'"),
    ({"model_id": "minixception", "distortion": "jpeg"}, "unknown distortion 'jpeg'"),
    ({"model_id": "minixception"}, "give --distortion"),
    ({"model_id": "minixception", "protocol": "curated", "targets": "soft"}, "no curated labels yet"),
    ({"model_id": "minixception", "protocol": "curated", "targets": "hard"}, "unknown target scheme"),
    ({"model_id": "minixception", "distortion": "gaussian_blur", "epochs": 0}, "epochs must be"),
])
def test_bad_configurations_fail_before_training(built_study, kwargs, message):
    before = _counts(built_study)
    with pytest.raises(ConfigError, match=message):
        finetune(built_study, **{"device": "cpu", **kwargs})
    assert _counts(built_study) == before


def test_too_few_faces_per_emotion_for_a_split(built_study):
    with built_study.write() as con:
        con.execute("DELETE FROM playlists WHERE stimulus_id IN (SELECT stimulus_id FROM stimuli st "
                    "JOIN sources s USING (source_id) WHERE s.original_label = 'disgust' AND "
                    "s.source_id > (SELECT min(source_id) FROM sources WHERE original_label = 'disgust'))")
    with built_study.write() as con:
        con.execute("DELETE FROM stimuli WHERE source_id IN (SELECT source_id FROM sources "
                    "WHERE original_label = 'disgust') AND source_id > (SELECT min(s.source_id) FROM "
                    "sources s JOIN stimuli USING (source_id) WHERE s.original_label = 'disgust')")
    with pytest.raises(ConfigError, match="1 disgust face"):
        finetune(built_study, "minixception", distortion="gaussian_blur", device="cpu")


def test_cli_finetune_and_its_errors(built_study, capsys):
    db = str(built_study.path)
    code = main(["--db", db, "--quiet", "finetune", "--model", "minixception", "--protocol", "paper",
                 "--distortion", "gaussian_blur", "--epochs", "1", "--batches", "1", "--per-class", "2",
                 "--device", "cpu", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out[out.index("{"):])
    assert summary["variant"] == "minixception-ft-gaussian_blur" and summary["predictions"] == 280
    code = main(["--db", db, "finetune", "--model", "minixception", "--distortion", "fog"])
    assert code == 2
    assert "unknown distortion 'fog'" in capsys.readouterr().err
