"""Fine-tuning end to end with the offline mini-Xception on the small built study (280 stimuli).

Runs are cut to 1 epoch of 2 small batches so the whole file stays fast on 2 CPU cores; the code
path is the one a full run takes.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from disfer.cli import main
from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.finetune import finetune, variant_config, weights_file
from disfer.finetune.checkpoints import store_id, write_checkpoint
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

    # The checkpoint is a safetensors file in the store's own folder under models/, named after
    # the variant and its content, with the parent's architecture and its sha256 recorded.
    path = weights_file(built_study, variant)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path == (Path(built_study.path).parent / "models" / store_id(built_study)
                    / f"{variant}.{sha[:16]}.safetensors")
    with built_study.read() as con:
        fingerprint, recorded = con.execute(
            "SELECT fingerprint, json_extract_string(config, '$.weights_sha256') FROM models "
            "WHERE model_id = ?", [variant]).fetchone()
    assert fingerprint == recorded == sha
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
    variant = finetune(built_study, "minixception", protocol="paper", distortion="salt_pepper", predict=False, **FAST)
    first = load_file(str(weights_file(built_study, variant)))
    again = finetune(built_study, "minixception", protocol="paper", distortion="salt_pepper", predict=False, **FAST)
    second = load_file(str(weights_file(built_study, again)))
    assert variant == again
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)
    other = finetune(built_study, "minixception", protocol="paper", distortion="salt_pepper", seed=1, predict=False, **FAST)
    assert other == "minixception-ft-salt_pepper-s1"
    third = load_file(str(weights_file(built_study, other)))
    assert not all(np.array_equal(first[k].numpy(), third[k].numpy()) for k in first)


def test_a_rerun_redefines_the_variant_and_predicting_keeps_its_definition(built_study):
    variant = finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur", predict=False, **FAST)
    assert variant_config(built_study, variant)["epochs"] == 1
    again = finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur",
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
    assert (family, parent) == ("minixception", "minixception")
    assert path == weights_file(built_study, variant).relative_to(Path(built_study.path).parent).as_posix()
    assert path.startswith(f"models/{store_id(built_study)}/{variant}.")
    assert runs == [("done", variant), ("done", variant)]


def test_a_failed_training_marks_its_run_failed(built_study, monkeypatch):
    import disfer.finetune as ft

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(ft, "train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur", **FAST)
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
    ({"model_id": "minixception", "protocol": "paper"}, "give --distortion"),
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
        finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur", device="cpu")


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


# -- issue 13: a kill leaves a whole store; stores in one folder keep their own checkpoints --------

def _run_rows(store) -> list:
    from disfer.runs import read_runs

    with store.read() as con:
        return read_runs(con, "finetune")


def test_a_killed_fine_tune_is_shown_interrupted_and_leaves_no_variant(built_study):
    """Issue 13, item 7: kill -9 during training; its 'running' row is then shown 'interrupted'."""
    disfer = Path(sys.executable).with_name("disfer")
    proc = subprocess.Popen([str(disfer), "--quiet", "--db", str(built_study.path), "finetune", "--model",
                             "minixception", "--distortion", "gaussian_blur", "--epochs", "50",
                             "--batches", "200", "--per-class", "1", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _run_rows(built_study):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the fine-tune never started its run"
            time.sleep(0.2)
        (run,) = _run_rows(built_study)
        assert run.status == "running" and run.config["process"]["pid"] == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    (run,) = _run_rows(built_study)
    assert (run.stored_status, run.status) == ("running", "interrupted")
    with built_study.read() as con:
        assert con.execute("SELECT count(*) FROM models WHERE parent_id IS NOT NULL").fetchone()[0] == 0


def test_a_variant_registered_before_its_predictions_is_completed_by_the_next_predict(built_study, monkeypatch):
    """Killed while predicting: the variant and its finished run are whole, and predict completes it."""
    import disfer.models.predict as P

    real = P.predict_store

    def die(fraction, text=""):
        if fraction > 0.3:   # the variant's first batch of 100 is stored
            raise KeyboardInterrupt

    def dies_in_the_variant(store, model_id, **kwargs):
        if model_id != "minixception":
            kwargs.update(batch=100, progress=die)
        return real(store, model_id, **kwargs)

    monkeypatch.setattr(P, "predict_store", dies_in_the_variant)
    with pytest.raises(KeyboardInterrupt):
        finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur", **FAST)
    monkeypatch.undo()
    variant = "minixception-ft-gaussian_blur"
    (run,) = _run_rows(built_study)
    assert run.status == "done" and run.result["variant"] == variant

    def predicted() -> int:
        with built_study.read() as con:
            return con.execute("SELECT count(*) FROM predictions WHERE model_id = ?", [variant]).fetchone()[0]

    assert predicted() == 100
    assert main(["--db", str(built_study.path), "--quiet", "predict", "--model", variant, "--device", "cpu"]) == 0
    assert predicted() == 280


def test_two_stores_in_one_folder_keep_their_own_checkpoints(tmp_path, _built_study_template):
    """Issue 13, item 9: the same variant fine-tuned in two stores of one folder, differently."""
    import shutil

    from disfer.models.predict import predict_store
    from disfer.store import Store

    a, b = (Store(shutil.copyfile(_built_study_template, tmp_path / name)) for name in ("a.duckdb", "b.duckdb"))
    variant = finetune(a, "minixception", protocol="paper", distortion="salt_pepper", **FAST)
    a_file, a_bytes = weights_file(a, variant), weights_file(a, variant).read_bytes()
    a_pred = _predictions(a, variant)
    assert finetune(b, "minixception", protocol="paper", distortion="salt_pepper", **{**FAST, "lr": 1e-2}) == variant
    b_file = weights_file(b, variant)
    assert store_id(a) != store_id(b) and a_file.parent != b_file.parent
    assert a_file.read_bytes() == a_bytes != b_file.read_bytes()
    # A's variant still loads A's weights: its predictions, re-made from scratch, are the same.
    with a.write() as con:
        con.execute("DELETE FROM predictions WHERE model_id = ?", [variant])
    predict_store(a, variant, device="cpu")
    assert np.allclose(_predictions(a, variant), a_pred)
    assert not np.allclose(_predictions(b, variant), a_pred)


def _predictions(store, model_id) -> np.ndarray:
    with store.read() as con:
        return np.array(con.execute(f"SELECT {', '.join(EMOTIONS)} FROM predictions WHERE model_id = ? "
                                    "ORDER BY stimulus_id", [model_id]).fetchall())


def test_a_rerun_killed_before_registering_leaves_the_old_variant_whole(built_study, monkeypatch):
    """The new weights go to a new file, so the registered variant keeps its own until the new
    registration commits (here the re-run dies just before it)."""
    import disfer.finetune as ft

    variant = finetune(built_study, "minixception", protocol="paper", distortion="gaussian_noise", predict=False, **FAST)
    old, config = weights_file(built_study, variant), variant_config(built_study, variant)
    old_bytes = old.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ft, "_register", killed)
    with pytest.raises(KeyboardInterrupt):
        finetune(built_study, "minixception", protocol="paper", distortion="gaussian_noise", predict=False, **{**FAST, "lr": 1e-2})
    assert weights_file(built_study, variant) == old and old.read_bytes() == old_bytes
    assert variant_config(built_study, variant) == config
    assert len(list(old.parent.glob(f"{variant}.*.safetensors"))) == 2   # the new one, unregistered


@pytest.mark.parametrize("name", ["../escape", "/abs/path", ".hidden", "a/b", "x" * 101, "a\x00b", ""])
def test_the_checkpoint_writer_refuses_an_unsafe_variant_name(built_study, name):
    import torch

    with pytest.raises(ConfigError, match="variant name"):
        write_checkpoint(built_study, name, {"w": torch.zeros(2)})
    assert not any(p.is_file() for p in Path(built_study.path).parent.rglob("*.safetensors"))


def test_an_unsafe_model_id_is_refused_before_training(built_study, monkeypatch):
    import disfer.finetune as ft

    monkeypatch.setattr(ft, "variant_id", lambda *args: "../../minixception-ft-x")
    monkeypatch.setattr(ft, "train", lambda *a, **k: pytest.fail("trained with an unsafe name"))
    with pytest.raises(ConfigError, match="variant name"):
        finetune(built_study, "minixception", protocol="paper", distortion="gaussian_blur", **FAST)
    assert _run_rows(built_study) == []


def test_a_variant_whose_checkpoint_was_overwritten_refuses_to_run(built_study, capsys):
    variant = finetune(built_study, "minixception", "paper", distortion="gaussian_noise", seed=0, **FAST)
    path = Path(weights_file(built_study, variant))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # another store (or a person) wrote over the file
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="not the one registered"):
        load_model(variant, device="cpu", store=built_study)
    assert main(["--db", str(built_study.path), "predict", "--model", variant]) == 2
    assert "not the one registered" in capsys.readouterr().err
