"""DeepFace and RMN through the real loading code, with weight files made here (random weights,
right architecture and format), because the published files cannot be downloaded in tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.models import list_models, load_model
from disfer.models.deepface_net import WEIGHTS_FILE, deepface_weights_dir
from disfer.models.rmn_net import CHECKPOINT_FILE, HF_REPO, resmasking_module

FACES = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)


def deepface_network():
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    torch.manual_seed(0)
    return EmotionModel().eval()


@pytest.fixture
def deepface_file() -> Path:
    """deepface's emotion weights where DeepFace itself looks ($DEEPFACE_HOME is a temp folder)."""
    path = deepface_weights_dir() / WEIGHTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(deepface_network().state_dict(), path)
    return path


def info(name: str):
    return next(i for i in list_models() if i.name == name)


def test_deepface_missing_weights_say_where_to_put_them():
    entry = info("deepface")
    assert not entry.weights_present
    assert WEIGHTS_FILE in entry.hint and str(deepface_weights_dir()) in entry.hint
    with pytest.raises(ConfigError, match=WEIGHTS_FILE):
        load_model("deepface", device="cpu").predict_proba(FACES)


def test_deepface_matches_the_deepface_network(deepface_file):
    assert info("deepface").weights_present
    probs = load_model("deepface", device="cpu").predict_proba(FACES)
    assert probs.shape == (3, 7)
    # deepface's own module and loader on the same [0, 1] input, reordered by label name.
    from deepface.models.demography.DemographyUtils import EMOTION_LABELS
    from deepface.models.facial_recognition.pytorch.TorchFacialRecognition import load_model_weights

    theirs = load_model_weights(deepface_network(), str(deepface_file))
    with torch.no_grad():
        ref = theirs(torch.from_numpy(FACES[:, None].astype(np.float32) / 255)).numpy()
    names = {"angry": "anger", "happy": "happiness", "sad": "sadness"}
    order = [EMOTION_LABELS.index(next(k for k in EMOTION_LABELS if names.get(k, k) == e))
             for e in EMOTIONS]
    np.testing.assert_allclose(probs, ref[:, order], atol=1e-5)


def test_deepface_wrong_architecture_and_truncated_files_are_named(deepface_file, tmp_path):
    from disfer.models.minixception import MiniXceptionNet

    torch.save(MiniXceptionNet().state_dict(), deepface_file)
    with pytest.raises(ConfigError, match=f"{deepface_file}.*do not fit"):
        load_model("deepface", device="cpu").load()
    torch.save(deepface_network().state_dict(), deepface_file)
    deepface_file.write_bytes(deepface_file.read_bytes()[:100_000])
    with pytest.raises(ConfigError, match=f"{deepface_file}: not a readable PyTorch weights file"):
        load_model("deepface", device="cpu").load()


class Payload:
    """Stands in for code a malicious pickle would run."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_refused(deepface_file):
    torch.save({"conv_1.weight": Payload()}, deepface_file)
    with pytest.raises(ConfigError, match=str(deepface_file)):
        load_model("deepface", device="cpu").load()


@pytest.fixture(scope="module")
def rmn_cache(tmp_path_factory) -> Path:
    """An rmn checkpoint ({'net': state dict, ...} as rmn saves it) in a Hugging Face cache layout."""
    hub = tmp_path_factory.mktemp("hf") / "hub"
    snapshot = hub / ("models--" + HF_REPO.replace("/", "--")) / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    torch.manual_seed(0)
    net = resmasking_module().resmasking_dropout1(in_channels=3, num_classes=7)
    torch.save({"net": net.state_dict(), "best_val_acc": 0.7, "train_acc_list": [0.5, 0.6]},
               snapshot / CHECKPOINT_FILE)
    return hub


def test_rmn_loads_without_importing_rmn_or_torchvision(rmn_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(rmn_cache))
    entry = info("rmn")
    assert entry.weights_present and entry.weights_path.endswith(CHECKPOINT_FILE)
    model = load_model("rmn", device="cpu")
    probs = model.predict_proba(FACES[:2], batch=2)
    assert probs.shape == (2, 7) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    x = model.preprocess(FACES[:1])
    assert x.shape == (1, 3, 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    for name in ("rmn", "models", "torchvision", "pytorchcv"):
        assert name not in sys.modules, name


def test_rmn_missing_checkpoint_says_where(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    entry = info("rmn")
    assert not entry.weights_present
    assert CHECKPOINT_FILE in entry.hint and HF_REPO in entry.hint
    with pytest.raises(ConfigError, match=CHECKPOINT_FILE):
        load_model("rmn", device="cpu").predict_proba(FACES)


def test_rmn_checkpoint_without_net_entry_is_named(tmp_path, monkeypatch):
    bad = tmp_path / CHECKPOINT_FILE
    torch.save({"weights": {}}, bad)
    monkeypatch.setenv("DISFER_RMN_WEIGHTS", str(bad))
    with pytest.raises(ConfigError, match=f"{bad}: checkpoint has no 'net'"):
        load_model("rmn", device="cpu").load()
